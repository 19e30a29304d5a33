"""``vnflab compare`` across runs: a between-run shift of the whole run is no regression.

One run a side, a declared run-to-run tolerance decides (and the proxied RTT is read relative to its own
direct path); several runs a side, the run is the unit (t test of run medians). Known answers on synthetic
runs, no lab; the measured same-code pair these mimic is in docs/statistics.md.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from synthetic_run import BOOT_MS_PER_INSTANCE, INSTANCES, SIZES, write_run

from vnflab.cli import main
from vnflab.stats.compare import CANNOT_TELL, WITHIN_SPREAD, CompareOptions, compare_runs, flagged
from vnflab.stats.load import load_run
from vnflab.stats.runspread import DEFAULT_TOLERANCES, calibrate, default_tolerances, rounded_up
from vnflab.stats.significance import run_level_detectable_shift_sd

RUN_A = "20250202T000000Z-aaaaaa"
RUN_B = "20250203T000000Z-bbbbbb"

#: Whole rows moving like the measured pair's (docs/statistics.md): response rows of Docker -20%, OSv (KVM)
#: -40%, ClickOS (Xen) +40%, each with its direct path (the proxied RTT up to 10% beyond it), native
#: unchanged; Docker boot -25% at every N.
ROW_FACTORS = {"docker": (0.80, 1.05), "kvm": (0.60, 0.92), "xen": (1.40, 1.10), "native": (1.0, 1.0)}


def _between_run_shift() -> dict[tuple[str, str, int], float]:
    scale: dict[tuple[str, str, int], float] = {}
    for platform, (row, beyond) in ROW_FACTORS.items():
        for size in SIZES:
            scale[(platform, "rtt_direct_us", size)] = row
            scale[(platform, "rtt_proxy_us", size)] = row * beyond
    for x in INSTANCES:
        scale[("docker", "all_ms", x)] = 0.75
    return scale


def test_a_between_run_shift_like_the_measured_pair_flags_nothing(tmp_path: Path) -> None:
    a = load_run(write_run(tmp_path / RUN_A)).samples
    b = load_run(write_run(tmp_path / RUN_B, scale=_between_run_shift())).samples
    table = compare_runs(a, b)
    assert flagged(table).empty
    moved = table[(table["quantity"].isin(["rtt_proxy_us", "rtt_direct_us"]) & (table["platform"] != "native"))
                  | ((table["platform"] == "docker") & (table["quantity"] == "all_ms"))]
    assert set(moved["verdict"]) == {WITHIN_SPREAD}  # the within-run test sees every one of them
    proxy = table[(table["platform"] == "xen") & (table["quantity"] == "rtt_proxy_us")]
    assert list(proxy["change_pct"]) == pytest.approx([54.0] * len(SIZES))  # 1.4 x 1.1
    assert list(proxy["reference_change_pct"]) == pytest.approx([40.0] * len(SIZES))
    assert list(proxy["adjusted_change_pct"]) == pytest.approx([10.0] * len(SIZES))
    # the test of within-run spread alone (no tolerance, no direct path) flags every row that moved:
    # what `compare` did before, 118 of 209 points on the measured pair
    naive = compare_runs(a.assign(quantity=a["quantity"].replace({"rtt_direct_us": "direct"})),
                         b.assign(quantity=b["quantity"].replace({"rtt_direct_us": "direct"})),
                         CompareOptions(tolerances={}))
    assert len(flagged(naive)) == len(moved) - 3 * len(SIZES)  # the direct rows were renamed away


@pytest.mark.parametrize(("delay_ms", "flagged_xs"), [(200.0, INSTANCES), (100.0, (1, 2, 4))])
def test_a_slowed_docker_boot_flags_every_docker_boot_point_beyond_the_tolerance(
        tmp_path: Path, delay_ms: float, flagged_xs: tuple[int, ...]) -> None:
    # each instance +delay_ms, started concurrently (the smallest effect on the batch: +delay_ms on all_ms).
    # Docker's largest boot median here is 8 x 50 = 400 ms, so with the 30% boot tolerance every point is
    # flagged once delay_ms > 0.30 x 400 = 120 ms; at 100 ms the N = 8 point (+25%) is within the spread
    tolerance = DEFAULT_TOLERANCES["boot/all_ms"]
    largest = BOOT_MS_PER_INSTANCE["docker"] * max(INSTANCES)
    assert (delay_ms > tolerance / 100 * largest) == (flagged_xs == INSTANCES)
    a = load_run(write_run(tmp_path / RUN_A)).samples
    b = a.copy()
    slowed = (b["platform"] == "docker") & (b["quantity"] == "all_ms")
    b.loc[slowed, "value"] += delay_ms
    table = compare_runs(a, b)
    boot = table[(table["platform"] == "docker") & (table["metric"] == "boot")]
    assert set(boot.loc[boot["x"].isin(flagged_xs), "verdict"]) == {"regression"}
    assert set(boot.loc[~boot["x"].isin(flagged_xs), "verdict"]) <= {WITHIN_SPREAD}
    assert set(flagged(table)["platform"]) == {"docker"} and (boot["family"] == "docker/boot").all()


def _run_frame(rng: np.random.Generator, row_sd: float, boot_scale: float = 1.0, n: int = 6) -> pd.DataFrame:
    """One run of Docker boot (N = 1..12) and response (3 sizes): a run-wide condition factor per row."""
    rows = []
    boot_row = math.exp(rng.normal(0.0, row_sd))
    response_row = math.exp(rng.normal(0.0, row_sd))
    for x in range(1, 13):
        for v in rng.normal(100.0 * x * boot_row * boot_scale, 5.0 * x, n):
            rows.append({"platform": "docker", "metric": "boot", "quantity": "all_ms", "mode": None, "x": x,
                         "value": float(v), "unit": "ms", "label": "docker"})
    for size in (64, 1024, 8192):
        for quantity, base in (("rtt_direct_us", 20.0), ("rtt_proxy_us", 60.0)):
            for v in rng.normal(base * response_row, 0.05 * base, 30):
                rows.append({"platform": "docker", "metric": "response", "quantity": quantity, "mode": "icmp",
                             "x": size, "value": float(v), "unit": "us", "label": "docker"})
    return pd.DataFrame(rows)


def test_several_runs_a_side_test_the_run_as_the_unit() -> None:
    rng = np.random.default_rng(7)
    runs_a = [_run_frame(rng, 0.15) for _ in range(3)]
    runs_b = [_run_frame(rng, 0.15) for _ in range(3)]
    table = compare_runs(runs_a, runs_b)
    assert set(table["test"]) == {"t on log run medians", "t on log run medians / direct path"}
    assert (table["runs_a"] == 3).all() and (table["runs_b"] == 3).all() and (table["n_a"] > 3).all()
    assert table["tolerance_pct"].isna().all() and set(table["tolerance_source"]) == {""}
    assert flagged(table).empty
    boot = table[table["quantity"] == "all_ms"]
    assert (boot["run_spread_pct"] > 5).all()  # the between-run spread (15% sd), not the within-run 5%
    # the same runs taken one a side with no tolerance: the within-run test flags the run's condition
    assert not flagged(compare_runs(runs_a[0], runs_b[0], CompareOptions(tolerances={}))).empty


def test_several_runs_a_side_find_a_doubled_boot_and_identical_runs_flag_nothing() -> None:
    rng = np.random.default_rng(11)
    runs_a = [_run_frame(rng, 0.03) for _ in range(3)]
    runs_b = [_run_frame(rng, 0.03, boot_scale=2.0) for _ in range(3)]
    table = compare_runs(runs_a, runs_b)
    boot = table[table["quantity"] == "all_ms"]
    assert set(boot["verdict"]) == {"regression"} and (boot["family_size"] == 12).all()
    assert list(boot["adjusted_change_pct"]) == pytest.approx([100.0] * 12, abs=15.0)
    assert set(table.loc[table["metric"] == "response", "verdict"]) <= {"no significant change", CANNOT_TELL}
    same = compare_runs([runs_a[0], runs_a[0]], [runs_a[0], runs_a[0]])
    assert flagged(same).empty and (same["p_value"] == 1.0).all() and (same["run_spread_pct"] == 0).all()
    assert set(same["verdict"]) == {"no significant change"}  # zero spread: any change would be seen


def test_run_level_false_flag_rate_stays_below_alpha_under_between_run_shifts() -> None:
    # 3 runs a side of the same process whose every run has its own condition (20% sd, whole rows move):
    # the run-level test keeps the family-wise rate; the within-run test (no tolerance) does not
    rng = np.random.default_rng(2024)
    reps = 60
    run_level = within = 0
    for _ in range(reps):
        runs_a = [_run_frame(rng, 0.2) for _ in range(3)]
        runs_b = [_run_frame(rng, 0.2) for _ in range(3)]
        boot_a = [r[r["metric"] == "boot"] for r in runs_a]
        boot_b = [r[r["metric"] == "boot"] for r in runs_b]
        run_level += not flagged(compare_runs(boot_a, boot_b)).empty
        within += not flagged(compare_runs(boot_a[0], boot_b[0], CompareOptions(tolerances={}))).empty
    assert run_level / reps <= 0.05 + 0.05  # alpha plus binomial slack at 60 repetitions
    assert within / reps > 0.5


@pytest.mark.parametrize(("runs_a", "runs_b", "level"), [(3, 3, 0.05 / 12), (5, 5, 0.05), (2, 4, 0.05)])
def test_run_level_minimum_detectable_change_matches_a_simulation(runs_a: int, runs_b: int, level: float) -> None:
    # an independent simulation (scipy's own t test, fresh draws): 80% power between 0.9 and 1.1 times the MDC
    mdc = run_level_detectable_shift_sd(runs_a, runs_b, level)
    assert 0 < mdc < math.inf
    rng = np.random.default_rng(runs_a * 10 + runs_b)
    draws = 4000

    def power(shift: float) -> float:
        x = rng.standard_normal((draws, runs_a))
        y = rng.standard_normal((draws, runs_b)) + shift
        return float(np.mean(scipy_stats.ttest_ind(x, y, axis=1).pvalue <= level))

    below, above = power(0.9 * mdc), power(1.1 * mdc)
    assert below < 0.8 < above, (mdc, below, above)


def test_calibrate_takes_the_largest_change_per_quantity_rounded_up(tmp_path: Path) -> None:
    a = load_run(write_run(tmp_path / RUN_A)).samples
    b = load_run(write_run(tmp_path / RUN_B, scale=_between_run_shift())).samples
    table = calibrate([(a, b)]).set_index("key")
    assert table.loc["boot/all_ms", "max_abs_change_pct"] == pytest.approx(25.0)
    assert table.loc["boot/all_ms", "tolerance_pct"] == 25.0
    assert table.loc["response/rtt_direct_us", "max_abs_change_pct"] == pytest.approx(40.0)
    assert table.loc["response/rtt_proxy_us", "max_abs_change_pct"] == pytest.approx(10.0)  # beyond direct
    assert table.loc["response/rtt_proxy_us", "where"].startswith("xen icmp x=")
    assert table.loc["memory/server_used_mb", "tolerance_pct"] == 5.0  # no change: the 5% floor
    assert [rounded_up(v) for v in (0.0, 5.0, 5.01, 64.07, -24.3)] == [5.0, 5.0, 10.0, 65.0, 25.0]
    assert set(default_tolerances()) == set(DEFAULT_TOLERANCES)
    assert all(t.source.startswith("default: vnflab calibrate") for t in default_tolerances().values())


def test_cli_several_runs_tolerances_and_calibrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a1, a2 = (str(write_run(tmp_path / name)) for name in (RUN_A, "20250202T010000Z-a2a2a2"))
    b1 = str(write_run(tmp_path / RUN_B, scale=_between_run_shift()))
    b2 = str(write_run(tmp_path / "20250203T010000Z-b2b2b2"))
    assert main(["compare", a1, a2, "--", b1, b2]) == 0
    out = capsys.readouterr().out
    assert f"A = `{RUN_A}, 20250202T010000Z-a2a2a2`" in out and "Test: The run is the unit" in out
    assert main(["compare", "--csv", "--a", a1, "--a", a2, "--b", b1, "--b", b2]) == 0
    csv = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert (csv["runs_a"] == 2).all() and not csv["verdict"].isin(["regression", "improvement"]).any()
    assert main(["compare", a1, b1]) == 0
    out = capsys.readouterr().out
    assert "Test: One run a side" in out and "`boot/all_ms` 30%" in out and "default: vnflab calibrate" in out
    assert f"{WITHIN_SPREAD}: " in out and "regression: " not in out and "improvement: " not in out
    # a tighter declared tolerance for Docker's -25% boot: now flagged, and the output names where it came from
    assert main(["compare", "--csv", "--tolerance", "boot/all_ms=10", a1, b1]) == 0
    csv = pd.read_csv(io.StringIO(capsys.readouterr().out))
    boot = csv[(csv["platform"] == "docker") & (csv["quantity"] == "all_ms")]
    assert set(boot["verdict"]) == {"improvement"} and set(boot["tolerance_source"]) == {"--tolerance boot/all_ms=10"}
    calibration = tmp_path / "tolerances.json"
    assert main(["calibrate", a1, b1, "--out", str(calibration)]) == 0
    assert "boot/all_ms" in capsys.readouterr().out
    body = json.loads(calibration.read_text())
    assert body["tolerances"]["boot/all_ms"] == 25.0 and RUN_A in body["source"]
    assert main(["compare", "--tolerances", str(calibration), a1, b1]) == 0
    assert f"{calibration} (vnflab calibrate on the same-code pairs" in capsys.readouterr().out
    assert main(["compare", a1]) == 1 and "expected RUN_A RUN_B" in capsys.readouterr().err
    assert main(["compare", "--a", a1, b1]) == 1
    assert main(["compare", "--tolerance", "boot=3", a1, b1]) == 1
    assert main(["calibrate", a1, b1, a2]) == 1
