"""``vnflab compare``: a known regression is found, unchanged points are not, CLI output and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_run import write_run

from vnflab.cli import main
from vnflab.compare import CompareOptions, compare_runs, regressions
from vnflab.load import load_run

RUN_A = "20250202T000000Z-aaaaaa"
RUN_B = "20250203T000000Z-bbbbbb"
SLOWER = {("docker", "rtt_proxy_us", 65507): 1.5, ("xen", "rtt_proxy_us", 64): 0.5, ("xen", "all_ms", 8): 0.5}


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    return write_run(tmp_path / RUN_A), write_run(tmp_path / RUN_B, scale=SLOWER)


def test_known_regression_and_improvement_are_detected(runs: tuple[Path, Path]) -> None:
    table = compare_runs(load_run(runs[0]).samples, load_run(runs[1]).samples)
    flagged = table[table["verdict"].isin(["regression", "improvement"])]
    found = {(r.platform, r.quantity, r.x): r.verdict for r in flagged.itertuples()}
    assert found == {("docker", "rtt_proxy_us", 65507): "regression", ("xen", "rtt_proxy_us", 64): "improvement"}
    # 6 boot samples per side: the smallest two-sided p is 0.0022, which Holm over all rows cannot keep
    boot = table[(table["platform"] == "xen") & (table["quantity"] == "all_ms") & (table["x"] == 8)].iloc[0]
    assert boot["p_value"] < 0.01 and boot["p_holm"] > 0.05 and boot["verdict"] == "no significant change"
    row = table[(table["platform"] == "docker") & (table["quantity"] == "rtt_proxy_us") & (table["x"] == 65507)].iloc[0]
    assert row["change_pct"] == pytest.approx(50.0) and row["cliffs_delta"] == 1.0 and row["p_holm"] < 0.05
    assert row["hl_shift"] > 0
    unchanged = table[table["verdict"] == "no significant change"]
    assert len(unchanged) == len(table) - 2


def test_identical_runs_show_no_change(tmp_path: Path) -> None:
    a = load_run(write_run(tmp_path / RUN_A)).samples
    table = compare_runs(a, a)
    assert set(table["verdict"]) == {"no significant change"} and regressions(table).empty


def test_min_change_and_points_in_one_run_only(tmp_path: Path) -> None:
    a = load_run(write_run(tmp_path / RUN_A)).samples
    b = load_run(write_run(tmp_path / RUN_B, platforms=("xen", "docker"), scale=SLOWER)).samples
    table = compare_runs(a, b, CompareOptions(min_change_pct=60.0))
    assert regressions(table).empty  # +50% is below the 60% threshold
    assert set(table.loc[table["platform"] == "kvm", "verdict"]) == {"only in A"}


def test_cli_compare_outputs_and_exit_codes(runs: tuple[Path, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    a, b = (str(p) for p in runs)
    assert main(["compare", a, b]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# vnflab compare: A = `{RUN_A}`, B = `{RUN_B}`") and "regression: 1" in out
    assert main(["compare", "--fail-on-regression", a, b]) == 3
    assert "1 regression(s)" in capsys.readouterr().err
    assert main(["compare", "--fail-on-regression", a, a]) == 0
    capsys.readouterr()
    assert main(["compare", "--csv", "--out", str(tmp_path / "cmp"), a, b]) == 0
    csv = capsys.readouterr().out
    assert csv.splitlines()[0].startswith("platform,metric,quantity,mode,x,n_a,n_b,median_a,median_b,change_pct")
    assert (tmp_path / "cmp" / "compare.csv").read_text() == csv
    assert (tmp_path / "cmp" / "compare.tex").read_text().startswith("\\begin{table}")
    assert main(["compare", a, str(tmp_path / "missing")]) == 1


def test_migration_downtime_is_compared_and_skips_are_not(tmp_path: Path) -> None:
    from vnflab.journal import Journal
    from vnflab.records import PointKey, migration_records

    def run_with_downtimes(name: str, downtimes: list[float]) -> Path:
        run_dir = write_run(tmp_path / name)
        kvm = PointKey(run_id=name, platform="kvm", label="kvm/linux-microvm (tcg, stand-in for OSv)",
                       metric="migration", host="vnflab-a")
        docker = PointKey(run_id=name, platform="docker", metric="migration", host="vnflab-a",
                          label="docker/debian12-iptables (native, stand-in for CoreOS)")
        records = [record for repetition, downtime in enumerate(downtimes) for record in migration_records(
            kvm, {"stream": {"downtime_ms": downtime, "lost": 1, "sent": 9000, "recovered": True},
                  "move": {"total_ms": 500.0}}, repetition)]
        records += migration_records(docker, {"move": {"skipped_reason": "criu check failed"}}, 0)
        Journal(run_dir / "samples.jsonl").append(records)
        return run_dir

    a = run_with_downtimes("a", [50.0 + i for i in range(12)])
    b = run_with_downtimes("b", [500.0 + i for i in range(12)])
    table = compare_runs(load_run(a).samples, load_run(b).samples)
    migration = table[table["metric"] == "migration"]
    downtime = migration[migration["quantity"] == "downtime_ms"].iloc[0]
    assert downtime["platform"] == "kvm" and downtime["verdict"] == "regression"
    assert set(migration["platform"]) == {"kvm"}
