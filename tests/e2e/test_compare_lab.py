"""End to end: `vnflab compare` on real Docker boot runs finds a deliberately slowed boot path, and only that.

Three boot-only runs of the Docker platform on the local lab (N in {1, 2, 4}, a pilot of 6 batches per
point): A and A2 as they are, B with every `docker run` of the lab 0.2 s late. The delay is applied by a
`docker` wrapper first on the PATH of ansible-playbook (the driver runs `docker run` from the server's
PATH; on the local lab the server is this machine). A sleep in the container's entrypoint would not do:
Docker configures the container's network before the entrypoint starts, so the instance answers the
boot probe's echo requests whatever its entrypoint does.

Marked heavy: three lab runs take several minutes. Run under the lab lock:
`flock /run/vnflab-dev.lock .venv/bin/pytest -m heavy tests/e2e/test_compare_lab.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from vnflab.stats.compare import CompareOptions, compare_runs
from vnflab.stats.load import load_run

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "ansible-playbook")
DELAY_S = 0.2
COUNTS = [1, 2, 4]
EXTRA = {"vnflab_platforms": ["docker"], "vnflab_boot_counts": COUNTS,
         "vnflab_repeat": {
             "boot": {"min_samples": 6, "max_samples": 8, "rel_half_width": 0.05, "confidence": 0.95, "batch": 1,
                      "time_budget_s": 60},
             "response": {"min_samples": 20, "max_samples": 20, "rel_half_width": 0.05, "confidence": 0.95,
                          "batch": 20},
             "memory": {"min_samples": 2, "max_samples": 2, "rel_half_width": 0.1, "confidence": 0.95, "batch": 1}}}

pytestmark = [
    pytest.mark.lab,
    pytest.mark.heavy,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local lab needs root"),
    pytest.mark.skipif(shutil.which("dockerd") is None, reason="Docker engine not installed (scripts/install.sh)"),
]


def slow_docker(directory: Path) -> Path:
    """A `docker` that sleeps before every `run` and is the real one otherwise."""
    real = shutil.which("docker")
    assert real is not None
    wrapper = directory / "docker"
    wrapper.write_text(f'#!/bin/sh\n[ "$1" = run ] && sleep {DELAY_S}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return directory


def boot_run(results: Path, path_prefix: Path | None = None) -> Path:
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0")
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    before = set(results.iterdir())
    done = subprocess.run([PLAYBOOK, "site.yml", "--tags", "boot", "-e", f"vnflab_results_dir={results}",
                           "-e", json.dumps(EXTRA)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1500, check=False)
    if done.returncode != 0:
        pytest.fail(f"site.yml --tags boot failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}")
    (run_dir,) = set(results.iterdir()) - before
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    results = tmp_path_factory.mktemp("results")
    wrapper_dir = slow_docker(tmp_path_factory.mktemp("slow-docker"))
    try:
        a = boot_run(results)
        slowed = boot_run(results, wrapper_dir)
        a2 = boot_run(results)
        yield a, a2, slowed
    finally:
        subprocess.run([PLAYBOOK, "site.yml", "--tags", "teardown"], cwd=ROOT, capture_output=True, timeout=600,
                       check=False)


def boot_rows(table):  # type: ignore[no-untyped-def]
    return table[(table["platform"] == "docker") & (table["metric"] == "boot")]


def test_slowed_boot_path_is_flagged_at_every_docker_boot_point(runs: tuple[Path, Path, Path]) -> None:
    a, _, slowed = runs
    table = boot_rows(compare_runs(load_run(a).samples, load_run(slowed).samples))
    print(table[["quantity", "x", "n_a", "n_b", "median_a", "median_b", "change_pct", "p_adjusted", "mdc_pct",
                 "tolerance_pct", "verdict"]].to_string())
    assert set(table["x"]) == set(COUNTS) and set(table["quantity"]) == {"all_ms", "instance_ms"}
    # one run a side: significant within the runs and beyond the run-to-run tolerance (30% for boot)
    assert set(table["verdict"]) == {"regression"}, table["verdict"].tolist()
    assert (table["change_pct"] > table["tolerance_pct"]).all()
    # the medians moved by about the delay (the instances start concurrently, each 0.2 s late)
    shift_ms = table["median_b"] - table["median_a"]
    assert ((shift_ms > 0.5 * DELAY_S * 1000) & (shift_ms < 3 * DELAY_S * 1000)).all(), shift_ms.tolist()


def test_two_runs_of_the_same_lab_flag_nothing(runs: tuple[Path, Path, Path]) -> None:
    a, a2, _ = runs
    table = boot_rows(compare_runs(load_run(a).samples, load_run(a2).samples, CompareOptions()))
    print(table[["quantity", "x", "median_a", "median_b", "change_pct", "p_value", "p_adjusted", "mdc_pct",
                 "tolerance_pct", "verdict"]].to_string())
    assert not table["verdict"].isin(["regression", "improvement"]).any(), table["verdict"].tolist()


def test_the_slowed_run_against_two_plain_runs_as_units(runs: tuple[Path, Path, Path]) -> None:
    # A and A2 against the slowed run with the run as the unit: 2 v 1 runs is one degree of freedom, which
    # at Holm's level over Docker's boot family can flag only a shift many times the between-run spread;
    # the test checks that the run-level comparison runs on real runs and states what it can see
    a, a2, slowed = runs
    table = boot_rows(compare_runs([load_run(a).samples, load_run(a2).samples], [load_run(slowed).samples]))
    print(table[["quantity", "x", "runs_a", "runs_b", "change_pct", "run_spread_pct", "p_adjusted", "mdc_pct",
                 "verdict"]].to_string())
    assert (table["runs_a"] == 2).all() and (table["runs_b"] == 1).all()
    assert set(table["test"]) == {"t on log run medians"}
    assert (table["change_pct"] > 0).all()
    assert set(table["verdict"]) <= {"regression", "no significant change", "cannot tell at this n"}


def test_boot_points_converge_or_say_why(runs: tuple[Path, Path, Path]) -> None:
    for run_dir in runs:
        points = load_run(run_dir).points
        print(run_dir.name, points[["x", "reason", "batches", "needed", "elapsed_s", "rel_half_width"]].to_string())
        assert set(points["reason"]) <= {"converged", "cap", "budget"}
        assert (points["batches"] >= 6).all()  # the pilot always completes
        stopped_early = points[points["reason"] != "converged"]
        assert stopped_early["needed"].notna().all()  # a point that did not converge says how many it needed
