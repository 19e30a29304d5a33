"""``vnflab compare RUN_A RUN_B``: per platform, quantity, mode and x, the change from A to B and its significance.

Each point present in both runs is tested with a two-sided Mann-Whitney U test on the raw samples
(no normality assumed), p-values adjusted over the whole table with Holm's method (many points are
compared at once; unadjusted, about 1 in 20 unchanged points would look significant). A point is a
``regression`` when B is worse (higher median: every compared quantity is lower-is-better), the
adjusted p is below ``alpha`` and the median changed by at least ``min_change_pct``; an
``improvement`` likewise the other way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from vnflab.significance import holm, mann_whitney

#: Quantities compared (lower is better for all). MemAvailable readings are inputs to server_used_mb.
COMPARED_QUANTITIES: tuple[str, ...] = (
    "all_ms", "instance_ms", "rtt_proxy_us", "rtt_direct_us", "server_used_mb", "instance_pss_mb",
    "instance_cgroup_mb", "instance_hypervisor_mb", "downtime_ms", "total_ms", "requests_lost",
)

KEYS: tuple[str, ...] = ("platform", "metric", "quantity", "mode", "x")

COLUMNS: tuple[str, ...] = (
    *KEYS, "n_a", "n_b", "median_a", "median_b", "change_pct", "hl_shift", "cliffs_delta", "p_value", "p_holm",
    "verdict", "unit", "label_a", "label_b",
)


@dataclass(frozen=True)
class CompareOptions:
    alpha: float = 0.05
    min_change_pct: float = 0.0


def _prepare(samples: pd.DataFrame) -> pd.DataFrame:
    frame = samples.assign(mode=samples["mode"].fillna("").astype("str"))
    # A skipped migration measured nothing: no sample to compare (it is no lost one either).
    return frame[frame["quantity"].isin(COMPARED_QUANTITIES) & (frame["status"] != "skipped")]


def _verdict(row: dict[str, object], options: CompareOptions) -> str:
    p = float(row["p_holm"])  # type: ignore[arg-type]
    change = float(row["change_pct"])  # type: ignore[arg-type]
    if math.isnan(p) or math.isnan(change):
        return "not testable"
    if p >= options.alpha or abs(change) < options.min_change_pct:
        return "no significant change"
    return "regression" if change > 0 else "improvement"


def compare_runs(a: pd.DataFrame, b: pd.DataFrame, options: CompareOptions | None = None) -> pd.DataFrame:
    """The comparison table of two runs' samples (rows only in one run say so in ``verdict``)."""
    opts = options or CompareOptions()
    left = _prepare(a)
    right = _prepare(b)
    groups_a = {key: group for key, group in left.groupby(list(KEYS), sort=True)}
    groups_b = {key: group for key, group in right.groupby(list(KEYS), sort=True)}
    rows: list[dict[str, object]] = []
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
        rows.append({
            **dict(zip(KEYS, (str(key[0]), str(key[1]), str(key[2]), str(key[3]), int(key[4])), strict=True)),
            "n_a": len(values_a), "n_b": len(values_b), "median_a": median_a, "median_b": median_b,
            "change_pct": 100.0 * (median_b / median_a - 1.0) if median_a else math.nan,
            "hl_shift": -test.hl_shift if not math.isnan(test.hl_shift) else math.nan,
            "cliffs_delta": -test.cliffs_delta if not math.isnan(test.cliffs_delta) else math.nan,
            "p_value": test.p_value, "p_holm": math.nan,
            "verdict": "only in A" if gb is None else "only in B" if ga is None else "",
            "unit": "|".join(sorted({str(u) for u in any_group["unit"]})),
            "label_a": "|".join(sorted({str(v) for v in ga["label"]})) if ga is not None else "",
            "label_b": "|".join(sorted({str(v) for v in gb["label"]})) if gb is not None else "",
        })
    adjusted = holm([float(r["p_value"]) for r in rows])  # type: ignore[arg-type]
    for row, p in zip(rows, adjusted, strict=True):
        row["p_holm"] = p
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
        f"Per point: medians, change of the median from A to B, Hodges-Lehmann shift (B - A), Cliff's delta "
        f"(B vs A), two-sided Mann-Whitney U p-value on the raw samples and the Holm-adjusted p over all "
        f"{len(table)} rows; `regression`/`improvement` when the adjusted p < {options.alpha:g}"
        + (f" and |change| >= {options.min_change_pct:g}%" if options.min_change_pct else "")
        + ".\n\n" + ", ".join(f"{name}: {int(counts[name])}" for name in sorted(counts.index)) + "\n\n"
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
