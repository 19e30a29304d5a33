"""Runs killed with kill -9 on a real local lab (Docker path only, quick profile, small N), then resumed or torn down.

- A run killed during a boot batch is resumed with ``vnflab_run_dir``: every point is then journaled once, no
  repetition id repeats, and every sample journaled before the kill is still there, byte for byte.
- ``kill -9`` of ansible-playbook during provisioning, during a boot batch and during a response batch, each
  followed by the teardown: nothing of the lab is left (namespaces, links, containers, QEMU, firewall rules,
  loop devices, mounts, pid files), the host settings are as found, and the samples measured before the kill are
  intact.
- An instance that never answers ends its batches at the probe's deadline, journaled as lost, the run goes on.
- A results directory that fills up stops the run cleanly, saying why.

Needs root and the packages of scripts/install.sh. The test process holds the lab's run lock throughout; the
playbooks inherit it. A kill -9 of ansible-playbook leaves the worker it forked running (it inherited the run lock
too): the measuring loop stops it before its next batch, and each test waits for it before going on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultlab import (
    has_sample,
    hold_run_lock,
    host_snapshot,
    journal_lines,
    leftovers,
    only_run_dir,
    run_playbook,
    start_playbook,
    wait_for,
)
from testkit import kill_run

from vnflab.measure.journal import read_jsonl
from vnflab.run import runlock

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local lab needs root"),
    pytest.mark.skipif(shutil.which("dockerd") is None, reason="Docker engine not installed (scripts/install.sh)"),
]

BOOT_COUNTS = [1, 2]


def overrides(results: Path, **extra: Any) -> str:
    """Docker only, small: boot N in {1, 2} (three batches each), memory N = 1, one size."""
    return json.dumps({
        "vnflab_platforms": ["docker"], "vnflab_boot_counts": BOOT_COUNTS, "vnflab_memory_counts": [1],
        "vnflab_response_sizes": [64], "vnflab_results_dir": str(results),
        "vnflab_repeat": {"boot": {"min_samples": 3, "max_samples": 3, "batch": 1},
                          "memory": {"min_samples": 2, "max_samples": 2, "batch": 1},
                          "response": {"min_samples": 40, "max_samples": 40, "batch": 20}},
        **extra})


@pytest.fixture(scope="module")
def host_as_found() -> dict[str, Any]:
    """The host settings before the first test: a teardown that failed in one test does not move the reference."""
    return host_snapshot()


@pytest.fixture(autouse=True)
def lab_lock_and_clean_host() -> Iterator[list[str]]:
    try:
        hold_run_lock()
    except runlock.Refused as refused:
        pytest.fail(str(refused))
    found = leftovers()
    assert found == [], f"the host is not clean before the test: {found}"
    yield found


def teardown(results: Path) -> None:
    done = run_playbook("site.yml", "--tags", "teardown", "-e", overrides(results), timeout=900)
    assert done.returncode == 0, done.stdout[-5000:]


def point_ids(samples: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter((s["platform"], s["metric"], s["host"], s["mode"], s["x"], s["quantity"], s["repetition"],
                    s["seq"], s["instance"]) for s in samples)


def test_a_run_killed_during_a_boot_batch_resumes_with_every_point_once_and_its_samples_intact(tmp_path: Path) -> None:
    results = tmp_path / "results"
    log = tmp_path / "first.log"
    proc = start_playbook("site.yml", "-e", "vnflab_profile=quick", "-e", overrides(results), log=log)
    try:
        wait_for("a boot sample of N = 2", lambda: has_sample(results, "boot", 2), proc, log)
        time.sleep(1.0)  # into the next boot batch: the kill falls while instances start
        kill_run(proc, str(results))
    finally:
        if proc.poll() is None:
            proc.kill()
    run_dir = only_run_dir(results)
    before = (run_dir / "samples.jsonl").read_bytes()
    points_before = journal_lines(run_dir / "points.jsonl")
    assert [(p["metric"], p["x"]) for p in points_before][:1] == [("boot", 1)]

    resumed = run_playbook("site.yml", "-e", "vnflab_profile=quick", "-e", overrides(results),
                           "-e", f"vnflab_run_dir={run_dir}")
    try:
        text = " ".join(resumed.stdout.split())
        assert resumed.returncode == 0, text[-6000:]
        assert f"resuming {run_dir.name}: {len(points_before)} finished point(s) kept and skipped" in text, text[-6000:]
    finally:
        teardown(results)
    assert leftovers() == []

    assert (run_dir / "samples.jsonl").read_bytes().startswith(before)  # nothing measured before the kill lost
    contents = read_jsonl(run_dir / "samples.jsonl")
    assert contents.torn_lines == 0
    duplicates = [key for key, count in point_ids(contents.records).items() if count > 1]
    assert duplicates == [], duplicates[:5]
    points = journal_lines(run_dir / "points.jsonl")
    assert sorted((p["metric"], p["x"]) for p in points) == sorted(
        [("boot", n) for n in BOOT_COUNTS] + [("memory", 1), ("response", 64)])  # every point once
    assert points[: len(points_before)] == points_before
    boot_2 = next(p for p in points if (p["metric"], p["x"]) == ("boot", 2))
    if boot_2 not in points_before:  # cut by the kill: continued, not started again
        assert boot_2["resumed_batches"] >= 1 and boot_2["batches"] == 3, boot_2
    repetitions = sorted({s["repetition"] for s in contents.records
                          if (s["metric"], s["x"], s["quantity"]) == ("boot", 2, "all_ms")})
    assert repetitions == [0, 1, 2]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert len(manifest["resumes"]) == 1 and manifest["hosts"], manifest.keys()
    assert (run_dir / "report.md").is_file()


def kill_then_teardown(tmp_path: Path, what: str, ready: Any, found: dict[str, Any]) -> tuple[Path, bytes]:
    results = tmp_path / "results"
    log = tmp_path / "run.log"
    proc = start_playbook("site.yml", "-e", "vnflab_profile=quick", "-e", overrides(results), log=log)
    try:
        wait_for(what, lambda: ready(results, log), proc, log)
        kill_run(proc, str(results))
    finally:
        if proc.poll() is None:
            proc.kill()
    samples = results.glob("*/samples.jsonl")
    journaled = {path: path.read_bytes() for path in samples}
    teardown(results)
    assert leftovers() == [], f"left after a kill -9 {what} and the teardown"
    assert host_snapshot() == found  # daemon.json, sysctls, modules, FORWARD policy, units: as found
    for path, data in journaled.items():
        assert path.read_bytes() == data
        assert read_jsonl(path).records or not data
    return results, b"".join(journaled.values())


def in_play(name: str) -> Any:
    return lambda results, log: f"PLAY [{name}" in log.read_text(errors="replace")


# CI (45 minutes on 2 cores) kills the run during a boot batch, the case a resume also covers; the kills during
# provisioning and during a response batch (two minutes each) are heavy: `scripts/test.sh --all`.
@pytest.mark.parametrize(("what", "ready", "kept"), [
    pytest.param("during provisioning", in_play("Provision the VNF servers"), None, marks=pytest.mark.heavy),
    ("during a boot batch", lambda results, log: has_sample(results, "boot", 1), "boot"),
    pytest.param("during a response batch", lambda results, log: has_sample(results, "response", 64), "response",
                 marks=pytest.mark.heavy),
], ids=["provisioning", "boot", "response"])
def test_kill_9_of_ansible_playbook_then_teardown_leaves_nothing_and_keeps_the_samples(
        tmp_path: Path, what: str, ready: Any, kept: str | None, host_as_found: dict[str, Any]) -> None:
    results, samples = kill_then_teardown(tmp_path, what, ready, host_as_found)
    if kept is not None:
        assert f'"metric":"{kept}"'.encode() in samples


def test_an_instance_that_never_answers_ends_each_batch_at_its_deadline_and_the_run_goes_on(tmp_path: Path) -> None:
    """The second instance of N = 2 (198.19.8.3, inventory/local: coreos) never answers the boot probe: its echo
    requests are dropped on the VNF server (here this machine)."""
    rule = ["OUTPUT", "-d", "198.19.8.3", "-m", "comment", "--comment", "vnflab-fault-never-boots", "-j", "DROP"]
    subprocess.run(["iptables", "-w", "-I", *rule], check=True)
    results = tmp_path / "results"
    try:
        started = time.monotonic()
        done = run_playbook("site.yml", "-e", "vnflab_profile=quick", "-e", overrides(
            results, vnflab_boot_counts=[2], vnflab_boot_timeout_s=8,
            vnflab_repeat={"boot": {"min_samples": 2, "max_samples": 2, "batch": 1},
                           "memory": {"min_samples": 1, "max_samples": 1, "batch": 1},
                           "response": {"min_samples": 20, "max_samples": 20, "batch": 20}}),
                            "--tags", "boot,report")
        seconds = time.monotonic() - started
    finally:
        subprocess.run(["iptables", "-w", "-D", *rule], check=True)
        teardown(results)
    assert leftovers() == []
    text = " ".join(done.stdout.split())
    run_dir = only_run_dir(results)
    assert (run_dir / "report.md").is_file(), text[-5000:]
    samples = journal_lines(run_dir / "samples.jsonl")
    second = [s for s in samples if s["quantity"] == "instance_ms" and s["instance"] == 1]
    first = [s for s in samples if s["quantity"] == "instance_ms" and s["instance"] == 0]
    assert [s["status"] for s in second] == ["lost", "lost"] and all(s["status"] == "ok" for s in first)
    batches = journal_lines(run_dir / "batches.jsonl")
    assert [b["probe"]["ended"] for b in batches] == ["deadline", "deadline"], batches
    assert seconds < 600


@pytest.fixture
def small_results(tmp_path: Path) -> Iterator[Path]:
    results = tmp_path / "results"
    results.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "vnflab-fault-full", str(results)],
                   check=True)
    try:
        yield results
    finally:
        subprocess.run(["umount", str(results)], check=False)


def test_a_full_results_disk_stops_the_run_cleanly_saying_why(small_results: Path, tmp_path: Path) -> None:
    """64 KiB of results: the run opens, journals its first points, then finds the disk full. (The validate play's
    free-space check would refuse such a disk before the run opens, tests/static/test_preflight_play.py; it is set
    to 0 here so that the disk fills mid-run.)"""
    done = run_playbook("site.yml", "-e", "vnflab_profile=quick", "-e", overrides(
        small_results, vnflab_preflight_results_mb=0,
        vnflab_repeat={"boot": {"min_samples": 3, "max_samples": 3, "batch": 1},
                       "memory": {"min_samples": 2, "max_samples": 2, "batch": 1},
                       "response": {"min_samples": 2000, "max_samples": 2000, "batch": 50}}),
                        "--tags", "response,report")
    try:
        text = " ".join(done.stdout.split())
        assert done.returncode != 0
        assert "No space left on device" in text and "cannot journal batch" in text, text[-6000:]
        assert "Traceback" not in done.stdout, text[-6000:]
    finally:
        subprocess.run(["umount", str(small_results)], check=False)
        teardown(tmp_path / "after")
    assert leftovers() == []


def census() -> dict[str, Any]:
    """What repeated runs could pile up: files the lab keeps between runs, temporary files, images, shared memory."""
    def entries(path: str) -> int:
        root = Path(path)
        return sum(1 for _ in root.rglob("*")) if root.is_dir() else 0
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    images = subprocess.run(["docker", "image", "ls", "--quiet"], capture_output=True, text=True, check=False).stdout
    return {
        "files": {path: entries(path) for path in ("/run/vnflab", "/var/lib/vnflab", "/var/cache/vnflab")},
        "tmp_vnflab": sorted(p.name for p in Path("/tmp").iterdir() if p.name.startswith("vnflab")),
        "images": len(images.split()),
        "shmem_kb": int(meminfo["Shmem"].split()[0]),
    }


@pytest.mark.heavy
def test_ten_quick_runs_in_a_row_leave_nothing_growing(tmp_path: Path) -> None:
    """Ten small Docker runs, each torn down: nothing is left after any of them, and the files the lab keeps, the
    temporary files, the images and shared memory (tmpfs) are no larger after the tenth than after the first."""
    censuses = []
    for number in range(10):
        results = tmp_path / f"results-{number}"
        done = run_playbook("site.yml", "-e", "vnflab_profile=quick", "-e", overrides(
            results, vnflab_boot_counts=[1], vnflab_repeat={
                "boot": {"min_samples": 2, "max_samples": 2, "batch": 1},
                "memory": {"min_samples": 1, "max_samples": 1, "batch": 1},
                "response": {"min_samples": 20, "max_samples": 20, "batch": 20}}))
        teardown(results)
        assert done.returncode == 0, " ".join(done.stdout.split())[-4000:]
        assert leftovers() == [], f"after run {number + 1}"
        censuses.append(census())
    first, last = censuses[0], censuses[-1]
    assert (last["files"], last["tmp_vnflab"], last["images"]) == (first["files"], first["tmp_vnflab"],
                                                                    first["images"]), censuses
    assert last["shmem_kb"] - first["shmem_kb"] < 16 * 1024, [c["shmem_kb"] for c in censuses]
