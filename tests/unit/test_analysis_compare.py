"""``vnflab compare``: a known regression is found, unchanged points are not, the minimum detectable change
matches a simulation, CLI output and exit codes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from synthetic_run import INSTANCES, write_run

from vnflab.cli import main
from vnflab.stats.compare import CANNOT_TELL, WITHIN_SPREAD, CompareOptions, compare_runs, regressions
from vnflab.stats.load import load_run
from vnflab.stats.significance import minimum_detectable_change_pct

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
    assert found == {("docker", "rtt_proxy_us", 65507): "regression", ("xen", "rtt_proxy_us", 64): "improvement",
                     ("xen", "all_ms", 8): "improvement"}
    # 6 boot samples per side, tested exactly: the smallest two-sided p is 2/924, which Holm over the
    # 4 points of Xen's boot family keeps (0.0022 * 4 < 0.05), and Holm over all 56 rows could not
    boot = table[(table["platform"] == "xen") & (table["quantity"] == "all_ms") & (table["x"] == 8)].iloc[0]
    assert boot["test"] == "exact" and boot["p_value"] == pytest.approx(2 / 924)
    assert boot["family"] == "xen/boot" and boot["family_size"] == 4 and boot["p_adjusted"] == pytest.approx(8 / 924)
    assert 2 / 924 * len(table) > 0.05
    row = table[(table["platform"] == "docker") & (table["quantity"] == "rtt_proxy_us") & (table["x"] == 65507)].iloc[0]
    assert row["change_pct"] == pytest.approx(50.0) and row["cliffs_delta"] == 1.0 and row["p_adjusted"] < 0.05
    assert row["hl_shift"] > 0 and row["test"] == "asymptotic"
    assert row["reference"] == "rtt_direct_us" and row["reference_change_pct"] == pytest.approx(0.0)
    assert row["adjusted_change_pct"] == pytest.approx(50.0) and row["tolerance_pct"] == 25.0
    quiet = table[~table["verdict"].isin(["regression", "improvement"])]
    assert len(quiet) == len(table) - 3
    assert (table["mdc_pct"] < 20).all()  # offsets of +-2%: every point can tell a change of a few %
    # one run a side, the smallest change compare can flag is at least the run-to-run tolerance
    assert (quiet["detectable_pct"] == quiet[["mdc_pct", "tolerance_pct"]].max(axis=1)).all()
    # every quantity of this synthetic run has a default tolerance above 20% (boot 30%, MemAvailable delta
    # 2300%, proxied RTT beyond its direct path 25%, direct path 65%): one run a side cannot tell 20%
    assert (quiet["detectable_pct"] > 20).all() and set(quiet["verdict"]) == {CANNOT_TELL}
    assert (quiet["tolerance_pct"] >= 25).all()


@pytest.mark.parametrize("correction", ["holm", "bh"])
def test_boot_doubled_at_n6_is_flagged_at_every_point(tmp_path: Path, correction: str) -> None:
    doubled = {("docker", "all_ms", x): 2.0 for x in INSTANCES}
    a = load_run(write_run(tmp_path / RUN_A)).samples
    b = load_run(write_run(tmp_path / RUN_B, scale=doubled)).samples
    table = compare_runs(a, b, CompareOptions(correction=correction))  # type: ignore[arg-type]
    flagged = table[table["verdict"].isin(["regression", "improvement"])]
    assert set(zip(flagged["platform"], flagged["quantity"], flagged["x"], flagged["verdict"], strict=True)) == {
        ("docker", "all_ms", x, "regression") for x in INSTANCES}
    assert (flagged["n_a"] == 6).all() and list(flagged["change_pct"]) == pytest.approx([100.0] * len(INSTANCES))


@pytest.mark.parametrize("correction", ["holm", "bh"])
def test_identical_runs_flag_nothing(tmp_path: Path, correction: str) -> None:
    a = load_run(write_run(tmp_path / RUN_A)).samples
    table = compare_runs(a, a, CompareOptions(correction=correction))  # type: ignore[arg-type]
    assert not table["verdict"].isin(["regression", "improvement", WITHIN_SPREAD]).any()
    assert set(table["verdict"]) <= {"no significant change", CANNOT_TELL}
    # without run-to-run tolerances only the test's own power decides what can be told
    table = compare_runs(a, a, CompareOptions(correction=correction, tolerances={}))  # type: ignore[arg-type]
    assert (table["tolerance_pct"] == 0).all() and set(table["tolerance_source"]) == {"none declared"}
    if correction == "holm":
        assert set(table["verdict"]) == {"no significant change"}
    else:
        # BH over 56 rows: a change alone must reach p <= 0.05/56, which 6 against 6 cannot (2/924)
        small = table["n_a"] == 6
        assert set(table.loc[small, "verdict"]) == {CANNOT_TELL} and (table.loc[small, "mdc_pct"] == math.inf).all()
        assert set(table.loc[~small, "verdict"]) == {"no significant change"}


def _noisy_run(rng: np.random.Generator, n: int, xs: tuple[int, ...], scale: float = 1.0) -> pd.DataFrame:
    rows = [{"platform": "docker", "metric": "boot", "quantity": "all_ms", "mode": None, "x": x,
             "value": float(v), "unit": "ms", "label": "docker"}
            for x in xs for v in rng.normal(100.0 * x * scale, 10.0 * x, n)]
    return pd.DataFrame(rows)


def test_holm_family_false_flag_rate_stays_below_alpha() -> None:
    # two runs of the same process, 12 boot points of one family, 6 samples each: the chance that the
    # family holds any flag is at most alpha (the exact test is discrete, so it is well below)
    rng = np.random.default_rng(24)
    xs = tuple(range(1, 13))
    families_flagged = sum(
        not regressions(compare_runs(_noisy_run(rng, 6, xs), _noisy_run(rng, 6, xs))).empty for _ in range(200))
    assert families_flagged / 200 <= 0.05


def test_too_few_samples_cannot_tell() -> None:
    rng = np.random.default_rng(5)
    table = compare_runs(_noisy_run(rng, 3, (1, 2)), _noisy_run(rng, 3, (1, 2), scale=1.3))
    # 3 against 3: the smallest p is 0.1, no change can be found at alpha 0.05
    assert set(table["verdict"]) == {CANNOT_TELL} and (table["mdc_pct"] == math.inf).all()
    xs = (1, 2, 3, 4)
    noisy = compare_runs(_noisy_run(rng, 6, xs), _noisy_run(rng, 6, xs))  # 10% noise at n = 6, a family of 4
    assert (noisy["mdc_pct"] > 20).all() and set(noisy["verdict"]) == {CANNOT_TELL}
    relaxed = compare_runs(_noisy_run(rng, 6, xs), _noisy_run(rng, 6, xs), CompareOptions(cannot_tell_pct=80))
    assert set(relaxed["verdict"]) == {"no significant change"}


def _simulated_power(n: int, shift_pct: float, level: float, rng: np.random.Generator, draws: int,
                     method: str) -> float:
    hits = 0
    for _ in range(draws):
        a = rng.normal(100.0, 5.0, n)
        b = rng.normal(100.0 + shift_pct, 5.0, n)
        hits += scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue <= level
    return hits / draws


@pytest.mark.parametrize(("n", "level", "method"), [(6, 0.05 / 4, "exact"), (8, 0.05 / 12, "exact"),
                                                    (30, 0.05 / 22, "asymptotic")])
def test_minimum_detectable_change_matches_a_simulation(n: int, level: float, method: str) -> None:
    # the MDC of two samples whose noise is exactly 5% of 100: recomputed by an independent simulation
    # (scipy's own test, fresh draws), 80% power must lie between 0.9 and 1.1 times the MDC
    rng = np.random.default_rng(n)
    base = rng.normal(0.0, 1.0, n)
    base = 100.0 + 5.0 * (base - base.mean()) / base.std(ddof=1)
    mdc = minimum_detectable_change_pct(base, base, level)
    assert 0 < mdc < 100
    below = _simulated_power(n, 0.9 * mdc, level, rng, 1500, method)
    above = _simulated_power(n, 1.1 * mdc, level, rng, 1500, method)
    assert below < 0.8 < above, (mdc, below, above)


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
    assert "Correction: Holm-adjusted within each family of one platform and one metric" in out
    assert main(["compare", "--correction", "bh", a, b]) == 0
    assert "Correction: Benjamini-Hochberg-adjusted over all 56 rows" in capsys.readouterr().out
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
    from vnflab.measure.journal import Journal
    from vnflab.measure.records import PointKey, migration_records

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


def test_chain_rtt_per_size_and_boot_are_compared_and_skips_are_not(tmp_path: Path) -> None:
    from vnflab.measure.journal import Journal
    from vnflab.measure.records import PointKey, chain_records

    def run_with_hop_cost(name: str, per_hop_us: float) -> Path:
        run_dir = write_run(tmp_path / name)
        docker = PointKey(run_id=name, platform="docker", metric="chain", host="vnflab-a", mode="icmp",
                          label="docker/debian12-iptables (native, stand-in for CoreOS)")
        xen = PointKey(run_id=name, platform="xen", label="xen/clickos (tcg, real)", metric="chain", host="vnflab-a")
        records = []
        for k in (1, 2):
            rtts = [100.0 + k * per_hop_us + i for i in range(12)]
            records += chain_records(docker, k, {
                "echo": {"reply_ns": 2 * 10**9}, "start": {"start_ns": 10**9},
                "rtt": {"mode": "icmp", "results": [{"size": 64, "rtt_us": rtts}]}}, 0)
        records += chain_records(xen, 1, {}, 0, skipped_reason="not implemented: no chain key")
        Journal(run_dir / "samples.jsonl").append(records)
        return run_dir

    table = compare_runs(load_run(run_with_hop_cost("a", 20.0)).samples,
                         load_run(run_with_hop_cost("b", 200.0)).samples)
    chain = table[table["metric"] == "chain"]
    assert set(chain["platform"]) == {"docker"}, "a skipped chain is no sample to compare"
    rtt = chain[(chain["quantity"] == "rtt_chain_us") & (chain["x"] == 2)].iloc[0]
    assert rtt["mode"] == "icmp 64 B" and rtt["verdict"] == "regression"
    assert set(chain["quantity"]) == {"rtt_chain_us", "boot_chain_ms"}
