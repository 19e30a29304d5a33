"""Rank platforms per metric at the largest x that every platform measured (lower is better).

A platform's rank is 1 + the number of platforms that are better with certainty at that x: lower
mean and a 95% CI entirely below its own. Platforms whose CIs overlap share a rank (a tie), so a
difference the data do not resolve is never shown as an order. A requirement combines the ranks of
its metrics as a weighted mean (:func:`combine`; weights from ``data/requirements.json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class MetricRef:
    """A (metric, quantity) used to judge a requirement, with a human name."""

    metric: str
    quantity: str
    name: str


@dataclass(frozen=True)
class MetricRanking:
    """Ranks of the series of one (metric, quantity, mode) at one x.

    ``table`` columns: platform, label, mean, ci_low, ci_high, rank (1 = best; CI overlaps share).
    ``overlaps`` lists neighbours in mean order whose CIs overlap (order not resolved by the data).
    """

    ref: MetricRef
    mode: str
    x: int
    x_unit: str
    unit: str
    table: pd.DataFrame
    overlaps: tuple[tuple[str, str], ...]

    @property
    def column(self) -> str:
        mode = f" [{self.mode}]" if self.mode else ""
        return f"{self.ref.name}{mode} ({self.unit}) @ x={self.x} {self.x_unit}"


def ci_ranks(table: pd.DataFrame) -> pd.Series:
    """1 + the number of rows whose CI lies entirely below this row's CI (NaN CI: overlaps all)."""
    highs = table["ci_high"].to_numpy(dtype="float64")
    lows = table["ci_low"].to_numpy(dtype="float64")
    ranks = [1 + sum(1 for other in range(len(table)) if other != me and highs[other] < lows[me])
             for me in range(len(table))]
    return pd.Series(ranks, index=table.index, dtype="int64")


def rank_metric(summary: pd.DataFrame, ref: MetricRef) -> tuple[list[MetricRanking], list[str]]:
    """Rankings for ``ref`` (one per probe mode present) and notes on what could not be ranked."""
    rows = summary[
        (summary["metric"] == ref.metric) & (summary["quantity"] == ref.quantity) & summary["mean"].notna()
    ]
    rankings: list[MetricRanking] = []
    notes: list[str] = []
    if rows.empty:
        return rankings, [f"{ref.name}: no samples with a value in this run"]
    for mode in sorted(rows["mode"].unique()):
        mode_rows = rows[rows["mode"] == mode]
        series = mode_rows.groupby(["platform", "label"], sort=True)["x"].apply(lambda xs: {int(x) for x in xs})
        common = set.intersection(*series.tolist())
        if not common:
            notes.append(f"{ref.name}{f' [{mode}]' if mode else ''}: the platforms share no x value; not ranked")
            continue
        x = max(common)
        at_x = mode_rows[mode_rows["x"] == x].sort_values(["mean", "platform", "label"], kind="stable")
        table = at_x[["platform", "label", "mean", "ci_low", "ci_high"]].reset_index(drop=True)
        table["rank"] = ci_ranks(table)
        overlaps = []
        for (_, better), (_, worse) in zip(table.iloc[:-1].iterrows(), table.iloc[1:].iterrows(), strict=True):
            if any(math.isnan(v) for v in (better["ci_high"], worse["ci_low"])) or better["ci_high"] >= worse["ci_low"]:
                overlaps.append((str(better["platform"]), str(worse["platform"])))
        rankings.append(MetricRanking(
            ref=ref, mode=str(mode), x=x, x_unit="|".join(sorted(set(at_x["x_unit"]))),
            unit="|".join(sorted(set(at_x["unit"]))), table=table, overlaps=tuple(overlaps),
        ))
    return rankings, notes


def combine(rankings: list[MetricRanking], weights: dict[str, float] | None = None) -> pd.DataFrame:
    """Platforms ranked by the weighted mean of their per-metric ranks; those missing a metric are left out.

    ``weights`` maps a metric (``boot``, ``response``, ``memory``) to its weight (default 1 each);
    a ranking of a metric with weight 0 does not count. Columns: platform, label, one
    ``rank <column>`` per ranking, mean_rank (the weighted mean), overall (1 = best; equal scores tie).
    """
    if not rankings:
        return pd.DataFrame(columns=["platform", "label", "mean_rank", "overall"])
    combined: pd.DataFrame | None = None
    for ranking in rankings:
        part = ranking.table[["platform", "label", "rank"]].rename(columns={"rank": f"rank {ranking.column}"})
        combined = part if combined is None else combined.merge(part, on=["platform", "label"], how="inner")
    assert combined is not None
    rank_columns = [f"rank {r.column}" for r in rankings]
    factors = [float((weights or {}).get(r.ref.metric, 1.0)) for r in rankings]
    total = sum(factors)
    if total <= 0:
        raise ValueError("the weights of a requirement's metrics must not all be 0")
    score = sum(combined[column] * factor for column, factor in zip(rank_columns, factors, strict=True))
    combined["mean_rank"] = (score / total).round(9)
    combined = combined.sort_values(["mean_rank", "platform", "label"], kind="stable").reset_index(drop=True)
    combined["overall"] = combined["mean_rank"].rank(method="min").astype("int64")
    return combined
