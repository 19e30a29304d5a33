"""``vnflab compare RUN_A RUN_B``: per platform, quantity, mode and x, the change from A to B and its significance.

Each point present in both runs is tested with a two-sided Mann-Whitney U test on the raw samples
(no normality assumed; exact, by enumerating every relabelling, for small samples such as boot and
memory points, see :mod:`vnflab.stats.significance`). Many points are compared at once, so p-values are
adjusted, by one of two deliberate corrections (``CompareOptions.correction``):

- ``holm`` (default): Holm's method within each family of one platform and one metric (Docker boot,
  KVM memory, ...). The chance that a family holds any false flag is at most ``alpha``. A family is
  what a regression is claimed about ("Docker's boot regressed"), and its size (about a dozen rows)
  lets a 6-against-6 exact test (smallest p 0.0022) reach ``alpha / size``; over the whole run
  (150 rows: 0.00033) it never could.
- ``bh``: Benjamini-Hochberg over all rows of the run: at most ``alpha`` of the flagged points are
  expected to be false. More lenient when many points change together, blind at small n to a
  change alone.

A point is a ``regression`` when B is worse (higher median: every compared quantity is
lower-is-better), the adjusted p is below ``alpha`` and the median changed by at least
``min_change_pct``; an ``improvement`` likewise the other way. Every point also gets its minimum
detectable change (``mdc_pct``): the shift of the median, in %, that the test would find with 80%
probability at the point's sample sizes, its noise and the level a change alone in its family must
reach (``alpha / family size`` for Holm, ``alpha / rows`` for BH). A point not flagged whose ``mdc_pct``
exceeds ``cannot_tell_pct`` reads ``cannot tell at this n``, not ``no significant change``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from vnflab.stats.significance import benjamini_hochberg, holm, mann_whitney, minimum_detectable_change_pct

#: Quantities compared (lower is better for all). MemAvailable readings are inputs to server_used_mb.
COMPARED_QUANTITIES: tuple[str, ...] = (
    "all_ms", "instance_ms", "rtt_proxy_us", "rtt_direct_us", "exact_used_mb", "server_used_mb", "instance_pss_mb",
    "instance_cgroup_mb", "instance_hypervisor_mb", "downtime_ms", "total_ms", "requests_lost",
    "boot_chain_ms", "rtt_chain_us",
)

KEYS: tuple[str, ...] = ("platform", "metric", "quantity", "mode", "x")

COLUMNS: tuple[str, ...] = (
    *KEYS, "n_a", "n_b", "median_a", "median_b", "change_pct", "hl_shift", "cliffs_delta", "test", "p_value",
    "family", "family_size", "p_adjusted", "mdc_pct", "verdict", "unit", "label_a", "label_b",
)

Correction = Literal["holm", "bh"]
CORRECTIONS: tuple[Correction, ...] = ("holm", "bh")

CANNOT_TELL = "cannot tell at this n"


@dataclass(frozen=True)
class CompareOptions:
    """``correction``: ``holm`` within each platform and metric, or ``bh`` over the run (module doc)."""

    alpha: float = 0.05
    min_change_pct: float = 0.0
    correction: Correction = "holm"
    cannot_tell_pct: float = 20.0

    def __post_init__(self) -> None:
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")

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


def _verdict(row: dict[str, object], options: CompareOptions) -> str:
    p = float(row["p_adjusted"])  # type: ignore[arg-type]
    change = float(row["change_pct"])  # type: ignore[arg-type]
    mdc = float(row["mdc_pct"])  # type: ignore[arg-type]
    if math.isnan(p) or math.isnan(change):
        return "not testable"
    if p < options.alpha and abs(change) >= options.min_change_pct:
        return "regression" if change > 0 else "improvement"
    if not mdc <= options.cannot_tell_pct:  # NaN and inf included
        return CANNOT_TELL
    return "no significant change"


def _family(platform: str, metric: str, options: CompareOptions) -> str:
    return f"{platform}/{metric}" if options.correction == "holm" else "run"


def compare_runs(a: pd.DataFrame, b: pd.DataFrame, options: CompareOptions | None = None) -> pd.DataFrame:
    """The comparison table of two runs' samples (rows only in one run say so in ``verdict``)."""
    opts = options or CompareOptions()
    left = _prepare(a)
    right = _prepare(b)
    groups_a = {key: group for key, group in left.groupby(list(KEYS), sort=True)}
    groups_b = {key: group for key, group in right.groupby(list(KEYS), sort=True)}
    rows: list[dict[str, object]] = []
    values: list[tuple[object, object]] = []
    for key in sorted(set(groups_a) | set(groups_b), key=lambda k: tuple(str(v) for v in k[:4]) + (int(k[4]),)):
        ga = groups_a.get(key)
        gb = groups_b.get(key)
        values_a = ga["value"].dropna() if ga is not None else pd.Series(dtype="float64")
        values_b = gb["value"].dropna() if gb is not None else pd.Series(dtype="float64")
        test = mann_whitney(values_a.to_numpy(), values_b.to_numpy())
        median_a = float(values_a.median()) if len(values_a) else math.nan
        median_b = float(values_b.median()) if len(values_b) else math.nan
        any_group = ga if ga is not None else gb
        assert any_group is not None
        platform, metric = str(key[0]), str(key[1])
        rows.append({
            **dict(zip(KEYS, (platform, metric, str(key[2]), str(key[3]), int(key[4])), strict=True)),
            "n_a": len(values_a), "n_b": len(values_b), "median_a": median_a, "median_b": median_b,
            "change_pct": 100.0 * (median_b / median_a - 1.0) if median_a else math.nan,
            "hl_shift": -test.hl_shift if not math.isnan(test.hl_shift) else math.nan,
            "cliffs_delta": -test.cliffs_delta if not math.isnan(test.cliffs_delta) else math.nan,
            "test": test.method if not math.isnan(test.p_value) else "",
            "p_value": test.p_value, "family": _family(platform, metric, opts), "family_size": 0,
            "p_adjusted": math.nan, "mdc_pct": math.nan,
            "verdict": "only in A" if gb is None else "only in B" if ga is None else "",
            "unit": "|".join(sorted({str(u) for u in any_group["unit"]})),
            "label_a": "|".join(sorted({str(v) for v in ga["label"]})) if ga is not None else "",
            "label_b": "|".join(sorted({str(v) for v in gb["label"]})) if gb is not None else "",
        })
        values.append((values_a.to_numpy(), values_b.to_numpy()))
    adjust = holm if opts.correction == "holm" else benjamini_hochberg
    for family in sorted({str(r["family"]) for r in rows}):
        members = [i for i, r in enumerate(rows) if r["family"] == family]
        testable = [i for i in members if not math.isnan(float(rows[i]["p_value"]))]  # type: ignore[arg-type]
        adjusted = adjust([float(rows[i]["p_value"]) for i in members])  # type: ignore[arg-type]
        for i, p in zip(members, adjusted, strict=True):
            rows[i]["p_adjusted"] = p
            rows[i]["family_size"] = len(testable)
            if i in testable:
                # the level a change alone in its family must reach: Holm's first step, BH's first rank
                level = opts.alpha / len(testable)
                rows[i]["mdc_pct"] = minimum_detectable_change_pct(*values[i], level)  # type: ignore[arg-type]
    for row in rows:
        if not row["verdict"]:
            row["verdict"] = _verdict(row, opts)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def regressions(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that regressed."""
    return table[table["verdict"] == "regression"]


def compare_markdown(table: pd.DataFrame, run_a: str, run_b: str, options: CompareOptions) -> str:
    """The comparison as Markdown: a header with the counts, then one row per point."""
    from vnflab.markdown import markdown_table

    counts = table["verdict"].value_counts()
    header = (
        f"# vnflab compare: A = `{run_a}`, B = `{run_b}`\n\n"
        f"Correction: {options.describe(len(table))}.\n\n"
        f"Per point: medians, change of the median from A to B, Hodges-Lehmann shift (B - A), Cliff's delta "
        f"(B vs A), two-sided Mann-Whitney U p-value on the raw samples (`test`: exact permutation for small "
        f"samples, else normal approximation), the adjusted p within `family`; `regression`/`improvement` "
        f"when the adjusted p < {options.alpha:g}"
        + (f" and |change| >= {options.min_change_pct:g}%" if options.min_change_pct else "")
        + ". `mdc_pct`: the minimum detectable change, the shift of the median (in %) the test finds with "
        f"80% probability at the point's n and noise, alone in its family; a point not flagged whose "
        f"`mdc_pct` exceeds {options.cannot_tell_pct:g}% reads `{CANNOT_TELL}`.\n\n"
        + ", ".join(f"{name}: {int(counts[name])}" for name in sorted(counts.index)) + "\n\n"
    )
    labels_changed = table[(table["label_a"] != table["label_b"]) & (table["label_a"] != "")
                           & (table["label_b"] != "")]
    note = ""
    if not labels_changed.empty:
        pairs = sorted({(p, la, lb) for p, la, lb in labels_changed[["platform", "label_a", "label_b"]]
                       .itertuples(index=False, name=None)})
        note = "".join(f"- `{p}` changed label: `{la}` -> `{lb}`\n" for p, la, lb in pairs) + "\n"
    shown = table.drop(columns=["label_a", "label_b"])
    return header + note + markdown_table(shown)
