"""``vnflab compare A B`` / ``vnflab compare A1 A2 -- B1 B2``: per point, the change from A to B and whether it is real.

Two runs of the same code differ by more than their samples' spread: conditions (the machine's other
load, the emulated Xen server's state, caches) are shared by every sample of a run and change between
runs, so a whole row moves together (docs/statistics.md, the pair 20261207T133318Z-f2f877 /
20261207T142922Z-a09e50). A test that takes the samples of one run as independent draws of what a rerun
would give is anti-conservative across runs. So the unit of the comparison depends on what is given:

- **Several runs a side** (at least three runs in all): the run is the unit. Per point, each run is
  summarised by its median (on a log scale when every median is positive), and A's summaries are tested
  against B's with a two-sided pooled-variance Student t test (:func:`vnflab.stats.significance.run_level_t`):
  the spread between runs of one side (``run_spread_pct``) is the noise, runs - 2 degrees of freedom.
- **One run a side**: the between-run spread cannot be estimated from the data. The point's samples are
  tested with the two-sided Mann-Whitney U test (exact for small samples) *and* the change must exceed a
  declared run-to-run tolerance for its metric and quantity (:mod:`vnflab.stats.runspread`: the defaults, how
  they were calibrated, the options that override them); a significant change within it reads
  ``within run-to-run spread``.

In both, ``rtt_proxy_us`` is compared relative to its own direct path: the direct path (``rtt_direct_us``,
same platform, mode and size) is measured in the same point and crosses no VNF, so a proxied RTT that moves
exactly with it is a condition change, not the platform's. One run a side: B's proxied samples are divided
by the direct path's change of median before the test (``reference_change_pct``); several: each run's
summary is its proxied median over its direct median. ``change_pct`` is the raw change of the median,
``adjusted_change_pct`` the one tested (equal where there is no reference). Measured on the pair above, the
overhead ``proxied - direct`` moves as much as the proxied RTT itself (conditions scale the VNF's own
time too); the ratio does not.

p-values are adjusted by one of two corrections (``CompareOptions.correction``):

- ``holm`` (default): Holm's method within each family of one platform and one metric (Docker boot,
  KVM memory, ...): the chance that a family holds any false flag is at most ``alpha``.
- ``bh``: Benjamini-Hochberg over all rows: at most ``alpha`` of the flagged points expected false.

A point is a ``regression`` when B is worse (every compared quantity is lower-is-better), the adjusted
p is below ``alpha``, |adjusted change| >= ``min_change_pct`` and (one run a side) exceeds the tolerance;
an ``improvement`` likewise the other way. ``mdc_pct`` is the test's minimum detectable change (80%
power at the level a change alone in its family must reach); ``detectable_pct`` the smallest change the
comparison can flag: ``max(mdc_pct, tolerance_pct)`` with one run a side, ``mdc_pct`` with several. A
point not flagged whose ``detectable_pct`` exceeds ``cannot_tell_pct`` reads ``cannot tell at this n``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from vnflab.stats.runspread import NO_TOLERANCE, Tolerance, default_tolerances
from vnflab.stats.significance import (
    benjamini_hochberg,
    holm,
    mann_whitney,
    minimum_detectable_change_pct,
    run_level_detectable_shift_sd,
    run_level_t,
)

#: Quantities compared (lower is better for all). MemAvailable readings are inputs to server_used_mb.
COMPARED_QUANTITIES: tuple[str, ...] = (
    "all_ms", "instance_ms", "rtt_proxy_us", "rtt_direct_us", "exact_used_mb", "server_used_mb", "instance_pss_mb",
    "instance_cgroup_mb", "instance_hypervisor_mb", "downtime_ms", "total_ms", "requests_lost",
    "boot_chain_ms", "rtt_chain_us",
)

#: A quantity compared relative to another of the same point, measured alongside it (module doc).
REFERENCES: dict[str, str] = {"rtt_proxy_us": "rtt_direct_us"}

KEYS: tuple[str, ...] = ("platform", "metric", "quantity", "mode", "x")

COLUMNS: tuple[str, ...] = (
    *KEYS, "n_a", "n_b", "median_a", "median_b", "change_pct", "hl_shift", "cliffs_delta", "test", "p_value",
    "family", "family_size", "p_adjusted", "mdc_pct", "runs_a", "runs_b", "reference", "reference_change_pct",
    "adjusted_change_pct", "run_spread_pct", "tolerance_pct", "tolerance_source", "detectable_pct", "verdict",
    "unit", "label_a", "label_b",
)

Correction = Literal["holm", "bh"]
CORRECTIONS: tuple[Correction, ...] = ("holm", "bh")

CANNOT_TELL = "cannot tell at this n"
WITHIN_SPREAD = "within run-to-run spread"
FLAGGED: tuple[str, ...] = ("regression", "improvement")

RunSamples = pd.DataFrame | Sequence[pd.DataFrame]
_Key = tuple[str, str, str, str, int]
_Values = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CompareOptions:
    """``correction``: ``holm`` within each platform and metric, or ``bh`` over the run (module doc).

    ``tolerances``: ``metric/quantity`` -> run-to-run tolerance, used with one run a side; ``None`` for
    :func:`vnflab.stats.runspread.default_tolerances`, ``{}`` for none (a quantity without one has 0%).
    """

    alpha: float = 0.05
    min_change_pct: float = 0.0
    correction: Correction = "holm"
    cannot_tell_pct: float = 20.0
    tolerances: Mapping[str, Tolerance] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")

    def tolerance(self, metric: str, quantity: str) -> Tolerance:
        """The run-to-run tolerance of ``metric/quantity`` (one run a side)."""
        table = default_tolerances() if self.tolerances is None else self.tolerances
        return table.get(f"{metric}/{quantity}", NO_TOLERANCE)

    def describe(self, rows: int) -> str:
        """One sentence naming the correction family, for the CLI output and the report."""
        if self.correction == "holm":
            return (f"Holm-adjusted within each family of one platform and one metric (family-wise error "
                    f"<= {self.alpha:g} per family)")
        return f"Benjamini-Hochberg-adjusted over all {rows} rows (false discovery rate <= {self.alpha:g})"


def _prepare(samples: pd.DataFrame) -> pd.DataFrame:
    frame = samples.assign(mode=samples["mode"].fillna("").astype("str"))
    # A skipped migration measured nothing: no sample to compare (it is no lost one either).
    measured = frame["status"] != "skipped" if "status" in frame else True
    return frame[frame["quantity"].isin(COMPARED_QUANTITIES) & measured]


@dataclass(frozen=True)
class _Run:
    values: dict[_Key, _Values]
    units: dict[_Key, set[str]]
    labels: dict[_Key, set[str]]


def _run(samples: pd.DataFrame) -> _Run:
    frame = _prepare(samples)
    values: dict[_Key, _Values] = {}
    units: dict[_Key, set[str]] = {}
    labels: dict[_Key, set[str]] = {}
    for raw, group in frame.groupby(list(KEYS), sort=False):
        key: _Key = (str(raw[0]), str(raw[1]), str(raw[2]), str(raw[3]), int(raw[4]))
        values[key] = group["value"].dropna().to_numpy(dtype="float64")
        units[key] = {str(u) for u in group["unit"]}
        labels[key] = {str(v) for v in group["label"]}
    return _Run(values, units, labels)


def _as_runs(side: RunSamples) -> list[_Run]:
    runs = [side] if isinstance(side, pd.DataFrame) else list(side)
    if not runs:
        raise ValueError("each side of a comparison needs at least one run")
    return [_run(samples) for samples in runs]


def _median(values: _Values) -> float:
    return float(np.median(values)) if values.size else math.nan


def _reference_key(key: _Key) -> _Key | None:
    reference = REFERENCES.get(key[2])
    return (key[0], key[1], reference, key[3], key[4]) if reference else None


def _ratio_pct(new: float, old: float) -> float:
    return 100.0 * (new / old - 1.0) if old and not math.isnan(old) and not math.isnan(new) else math.nan


@dataclass
class _Point:
    row: dict[str, object]
    mdc: tuple[str, object]  # ("samples", (a, b)) or ("runs", (runs_a, runs_b, spread, log, center))


def _one_run_point(key: _Key, a: _Run, b: _Run) -> _Point:
    va = a.values.get(key, np.empty(0))
    vb = b.values.get(key, np.empty(0))
    median_a, median_b = _median(va), _median(vb)
    reference, reference_change, factor = "", math.nan, 1.0
    ref_key = _reference_key(key)
    if ref_key is not None and ref_key in a.values and ref_key in b.values:
        ref_a, ref_b = _median(a.values[ref_key]), _median(b.values[ref_key])
        if ref_a > 0 and ref_b > 0:
            reference, factor = ref_key[2], ref_b / ref_a
            reference_change = 100.0 * (factor - 1.0)
    adjusted_b = vb / factor
    test = mann_whitney(va, adjusted_b)
    row: dict[str, object] = {
        "n_a": int(va.size), "n_b": int(vb.size), "median_a": median_a, "median_b": median_b,
        "change_pct": _ratio_pct(median_b, median_a),
        "hl_shift": -test.hl_shift if not math.isnan(test.hl_shift) else math.nan,
        "cliffs_delta": -test.cliffs_delta if not math.isnan(test.cliffs_delta) else math.nan,
        "test": test.method if not math.isnan(test.p_value) else "", "p_value": test.p_value,
        "runs_a": 1 if va.size else 0, "runs_b": 1 if vb.size else 0, "reference": reference,
        "reference_change_pct": reference_change, "adjusted_change_pct": _ratio_pct(median_b / factor, median_a),
        "run_spread_pct": math.nan,
    }
    return _Point(row, ("samples", (va, adjusted_b)))


def _summaries(key: _Key, runs: list[_Run], use_reference: bool) -> list[float]:
    out = []
    for run in runs:
        if key not in run.values or not run.values[key].size:
            continue
        median = _median(run.values[key])
        ref_key = _reference_key(key)
        if use_reference and ref_key is not None:
            median /= _median(run.values[ref_key])
        out.append(median)
    return out


def _has_reference(key: _Key, runs: list[_Run]) -> bool:
    ref_key = _reference_key(key)
    return ref_key is not None and all(
        ref_key in run.values and _median(run.values[ref_key]) > 0 for run in runs if key in run.values)


def _centre(values: list[float], log: bool) -> float:
    if not values:
        return math.nan
    return float(np.exp(np.mean(np.log(values)))) if log else float(np.mean(values))


def _run_level_point(key: _Key, runs_a: list[_Run], runs_b: list[_Run]) -> _Point:
    use_reference = _has_reference(key, runs_a + runs_b)
    raw_a, raw_b = _summaries(key, runs_a, False), _summaries(key, runs_b, False)
    sa, sb = _summaries(key, runs_a, use_reference), _summaries(key, runs_b, use_reference)
    log = all(v > 0 for v in sa + sb)
    log_raw = all(v > 0 for v in raw_a + raw_b)
    test = run_level_t(np.log(sa) if log else sa, np.log(sb) if log else sb)
    centre_a, centre_b = _centre(sa, log), _centre(sb, log)
    if log:
        adjusted = 100.0 * math.expm1(test.shift) if not math.isnan(test.shift) else math.nan
        spread = 100.0 * math.expm1(test.spread) if not math.isnan(test.spread) else math.nan
    else:
        adjusted = _ratio_pct(centre_b, centre_a)
        spread = 100.0 * test.spread / abs(centre_a) if centre_a else math.nan
    median_a, median_b = _centre(raw_a, log_raw), _centre(raw_b, log_raw)
    reference_change = math.nan
    if use_reference:
        ref_key = _reference_key(key)
        assert ref_key is not None
        ref_a, ref_b = _summaries(ref_key, runs_a, False), _summaries(ref_key, runs_b, False)
        reference_change = _ratio_pct(_centre(ref_b, True), _centre(ref_a, True))
    pooled_a = np.concatenate([run.values[key] for run in runs_a if key in run.values] or [np.empty(0)])
    pooled_b = np.concatenate([run.values[key] for run in runs_b if key in run.values] or [np.empty(0)])
    descriptive = mann_whitney(pooled_a, pooled_b)  # effect sizes over the pooled samples, no test
    method = ("t on log run medians" if log else "t on run medians") + (" / direct path" if use_reference else "")
    row: dict[str, object] = {
        "n_a": int(pooled_a.size), "n_b": int(pooled_b.size), "median_a": median_a, "median_b": median_b,
        "change_pct": _ratio_pct(median_b, median_a),
        "hl_shift": -descriptive.hl_shift if not math.isnan(descriptive.hl_shift) else math.nan,
        "cliffs_delta": -descriptive.cliffs_delta if not math.isnan(descriptive.cliffs_delta) else math.nan,
        "test": method if not math.isnan(test.p_value) else "", "p_value": test.p_value,
        "runs_a": len(sa), "runs_b": len(sb), "reference": REFERENCES[key[2]] if use_reference else "",
        "reference_change_pct": reference_change, "adjusted_change_pct": adjusted, "run_spread_pct": spread,
    }
    return _Point(row, ("runs", (len(sa), len(sb), test.spread, log, centre_a)))


def _mdc(point: _Point, level: float) -> float:
    kind, data = point.mdc
    if kind == "samples":
        va, vb = data  # type: ignore[misc]
        return minimum_detectable_change_pct(va, vb, level)
    runs_a, runs_b, spread, log, centre = data  # type: ignore[misc]
    shift_sd = run_level_detectable_shift_sd(int(runs_a), int(runs_b), level)
    if math.isnan(shift_sd) or math.isnan(float(spread)):
        return math.nan
    if math.isinf(shift_sd):
        return math.inf
    shift = shift_sd * float(spread)
    if log:
        return 100.0 * math.expm1(shift)
    return 100.0 * shift / abs(float(centre)) if centre else math.nan


def _verdict(row: dict[str, object], options: CompareOptions) -> str:
    p = float(row["p_adjusted"])  # type: ignore[arg-type]
    change = float(row["adjusted_change_pct"])  # type: ignore[arg-type]
    detectable = float(row["detectable_pct"])  # type: ignore[arg-type]
    tolerance = float(row["tolerance_pct"])  # type: ignore[arg-type]
    if math.isnan(p) or math.isnan(change):
        return "not testable"
    if p < options.alpha and abs(change) >= options.min_change_pct:
        if tolerance > 0 and abs(change) <= tolerance:  # NaN (several runs a side) is not > 0
            return WITHIN_SPREAD
        return "regression" if change > 0 else "improvement"
    if not detectable <= options.cannot_tell_pct:  # NaN and inf included
        return CANNOT_TELL
    return "no significant change"


def _family(platform: str, metric: str, options: CompareOptions) -> str:
    return f"{platform}/{metric}" if options.correction == "holm" else "run"


def compare_runs(a: RunSamples, b: RunSamples, options: CompareOptions | None = None) -> pd.DataFrame:
    """The comparison table of A's and B's samples, one run or several a side (rows only in one side say so).

    ``a`` and ``b`` are one run's samples each, or a sequence of runs' samples (one frame per run): with at
    least three runs in all, the run is the unit (module doc).
    """
    opts = options or CompareOptions()
    runs_a, runs_b = _as_runs(a), _as_runs(b)
    run_level = len(runs_a) + len(runs_b) >= 3
    keys = sorted({key for run in runs_a + runs_b for key in run.values}, key=lambda k: (*k[:4], k[4]))
    points: list[_Point] = []
    for key in keys:
        in_a = any(key in run.values for run in runs_a)
        in_b = any(key in run.values for run in runs_b)
        point = _run_level_point(key, runs_a, runs_b) if run_level else _one_run_point(key, runs_a[0], runs_b[0])
        platform, metric, quantity = key[:3]
        tolerance = NO_TOLERANCE if run_level else opts.tolerance(metric, quantity)
        units = set().union(*(run.units.get(key, set()) for run in runs_a + runs_b))
        point.row.update({
            **dict(zip(KEYS, key, strict=True)),
            "family": _family(platform, metric, opts), "family_size": 0, "p_adjusted": math.nan,
            "mdc_pct": math.nan, "detectable_pct": math.nan,
            "tolerance_pct": math.nan if run_level else tolerance.pct,
            "tolerance_source": "" if run_level else tolerance.source,
            "verdict": "only in A" if not in_b else "only in B" if not in_a else "",
            "unit": "|".join(sorted(units)),
            "label_a": "|".join(sorted(set().union(*(run.labels.get(key, set()) for run in runs_a))))
            if in_a else "",
            "label_b": "|".join(sorted(set().union(*(run.labels.get(key, set()) for run in runs_b))))
            if in_b else "",
        })
        points.append(point)
    adjust = holm if opts.correction == "holm" else benjamini_hochberg
    rows = [point.row for point in points]
    for family in sorted({str(r["family"]) for r in rows}):
        members = [i for i, r in enumerate(rows) if r["family"] == family]
        testable = [i for i in members if not math.isnan(float(rows[i]["p_value"]))]  # type: ignore[arg-type]
        adjusted = adjust([float(rows[i]["p_value"]) for i in members])  # type: ignore[arg-type]
        for i, p in zip(members, adjusted, strict=True):
            rows[i]["p_adjusted"] = p
            rows[i]["family_size"] = len(testable)
            if i in testable:
                # the level a change alone in its family must reach: Holm's first step, BH's first rank
                mdc = _mdc(points[i], opts.alpha / len(testable))
                rows[i]["mdc_pct"] = mdc
                tolerance = float(rows[i]["tolerance_pct"])  # type: ignore[arg-type]
                rows[i]["detectable_pct"] = mdc if math.isnan(tolerance) or math.isnan(mdc) else max(mdc, tolerance)
    for row in rows:
        if not row["verdict"]:
            row["verdict"] = _verdict(row, opts)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def regressions(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that regressed."""
    return table[table["verdict"] == "regression"]


def flagged(table: pd.DataFrame) -> pd.DataFrame:
    """The rows flagged either way (regression or improvement)."""
    return table[table["verdict"].isin(FLAGGED)]


def describe_test(table: pd.DataFrame, options: CompareOptions) -> str:
    """How the points were tested (the run as unit, or one run a side with tolerances), for output and report."""
    run_level = bool(len(table)) and (int(table["runs_a"].max()) + int(table["runs_b"].max()) >= 3)
    if run_level:
        return ("The run is the unit: per point, each run's median (`rtt_proxy_us`: over the same run's direct "
                "path median), on a log scale where every median is positive, and a two-sided pooled-variance "
                "Student t test of A's run summaries against B's (`run_spread_pct`: the between-run spread, "
                f"runs - 2 degrees of freedom). Flagged when the adjusted p < {options.alpha:g}"
                + (f" and |adjusted change| >= {options.min_change_pct:g}%" if options.min_change_pct else "")
                + ". `median_a`/`median_b`: geometric means of the run medians; `hl_shift` and `cliffs_delta` "
                "describe the pooled samples (no test).")
    return ("One run a side: the between-run spread cannot be estimated from the data, so each point is "
            "tested within the runs (two-sided Mann-Whitney U on the raw samples, `test`: exact permutation "
            "for small samples, else normal approximation; `rtt_proxy_us`: B's samples divided by the change "
            "of the same point's direct path, `reference_change_pct`) and flagged only when the adjusted p < "
            f"{options.alpha:g} and |`adjusted_change_pct`| exceeds the declared run-to-run tolerance "
            f"`tolerance_pct`" + (f" and {options.min_change_pct:g}%" if options.min_change_pct else "")
            + f"; a significant change within it reads `{WITHIN_SPREAD}`. Several runs a side "
            "(`vnflab compare A1 A2 -- B1 B2`) test with the run as the unit instead.")


def _tolerance_lines(table: pd.DataFrame) -> str:
    used = table[table["tolerance_source"].astype(str) != ""]
    if used.empty:
        return ""
    pairs = sorted({(f"{m}/{q}", float(t), str(s)) for m, q, t, s in used[
        ["metric", "quantity", "tolerance_pct", "tolerance_source"]].itertuples(index=False, name=None)})
    by_source: dict[str, list[str]] = {}
    for key, pct, source in pairs:
        by_source.setdefault(source, []).append(f"`{key}` {pct:g}%")
    return "Tolerances: " + "; ".join(f"{', '.join(keys)} ({source})" for source, keys in by_source.items()) + ".\n\n"


def compare_markdown(table: pd.DataFrame, run_a: str, run_b: str, options: CompareOptions) -> str:
    """The comparison as Markdown: a header with the test, the tolerances and the counts, then one row per point."""
    from vnflab.markdown import markdown_table

    counts = table["verdict"].value_counts()
    header = (
        f"# vnflab compare: A = `{run_a}`, B = `{run_b}`\n\n"
        f"Correction: {options.describe(len(table))}.\n\n"
        f"Test: {describe_test(table, options)}\n\n"
        + _tolerance_lines(table)
        + "`mdc_pct`: the minimum detectable change of the test, the shift of the median (in %) it finds with "
        "80% probability at the point's n and noise, alone in its family; `detectable_pct`: the smallest "
        "change this comparison can flag (with one run a side at least the tolerance); a point not flagged "
        f"whose `detectable_pct` exceeds {options.cannot_tell_pct:g}% reads `{CANNOT_TELL}`.\n\n"
        + ", ".join(f"{name}: {int(counts[name])}" for name in sorted(counts.index)) + "\n\n"
    )
    labels_changed = table[(table["label_a"] != table["label_b"]) & (table["label_a"] != "")
                           & (table["label_b"] != "")]
    note = ""
    if not labels_changed.empty:
        pairs = sorted({(p, la, lb) for p, la, lb in labels_changed[["platform", "label_a", "label_b"]]
                       .itertuples(index=False, name=None)})
        note = "".join(f"- `{p}` changed label: `{la}` -> `{lb}`\n" for p, la, lb in pairs) + "\n"
    shown = table.drop(columns=["label_a", "label_b", "tolerance_source"])
    return header + note + markdown_table(shown)
