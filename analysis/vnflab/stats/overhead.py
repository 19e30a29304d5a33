"""Overhead view: each platform's result minus and over a baseline platform, and response over its floor.

The baseline is the platform whose label engine (``engine/image (...)``) is ``baseline`` (default
``native``), or else the platform of that name. For every headline quantity of Fig. 2 and every x,
each other platform's mean is compared to the baseline's mean at the same x (and probe mode):
``minus`` = mean - baseline mean, with a Welch 95% CI; ``over`` = mean / baseline mean, with a
seeded bootstrap 95% CI. For response time each platform's proxied RTT is also compared with the
direct A-B floor it measured in turn (``rtt_direct_us``): the time the VNF path adds.
No platform name is assumed beyond the baseline's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

from vnflab.measure.schema import parse_label
from vnflab.stats.bootstrap import statistic_ci
from vnflab.stats.panels import PANELS, Panel, panel_quantity

DEFAULT_BASELINE = "native"

OVERHEAD_COLUMNS: tuple[str, ...] = (
    "metric", "quantity", "mode", "x", "x_unit", "platform", "label", "reference", "mean", "reference_mean",
    "minus", "minus_ci_low", "minus_ci_high", "over", "over_ci_low", "over_ci_high", "unit",
)


@dataclass(frozen=True)
class OverheadView:
    """Both tables of the view and what could not be computed."""

    baseline: str
    baseline_platforms: tuple[str, ...]
    versus_baseline: pd.DataFrame
    versus_floor: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def welch_ci(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Welch CI of ``mean(a) - mean(b)``; NaN when either side has fewer than two values."""
    if a.size < 2 or b.size < 2:
        return (math.nan, math.nan)
    va = float(a.var(ddof=1)) / a.size
    vb = float(b.var(ddof=1)) / b.size
    diff = float(a.mean() - b.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return (diff, diff)
    df = (va + vb) ** 2 / ((va**2 / (a.size - 1)) + (vb**2 / (b.size - 1)))
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2.0, df)) * se
    return (diff - half, diff + half)


def baseline_platforms(samples: pd.DataFrame, baseline: str) -> list[str]:
    """Platforms whose label engine is ``baseline``; if none, a platform named ``baseline``."""
    pairs = samples[["platform", "label"]].drop_duplicates().itertuples(index=False, name=None)
    by_engine = sorted({str(p) for p, lab in pairs if (parsed := parse_label(str(lab))) and parsed.engine == baseline})
    if by_engine:
        return by_engine
    return [baseline] if baseline in set(samples["platform"].astype(str)) else []


def _values(frame: pd.DataFrame) -> np.ndarray:
    return frame["value"].dropna().to_numpy(dtype="float64")


def _row(panel: Panel, quantity: str, mode: str, x: int, mine: pd.DataFrame, reference_name: str,
         reference: pd.DataFrame) -> dict[str, object]:
    a = _values(mine)
    b = _values(reference)
    mean = float(a.mean()) if a.size else math.nan
    ref_mean = float(b.mean()) if b.size else math.nan
    low, high = welch_ci(a, b)
    r_low, r_high = statistic_ci(a, b, how="ratio")
    return {
        "metric": panel.metric, "quantity": quantity, "mode": mode, "x": x, "x_unit": panel.x_unit,
        "platform": str(mine["platform"].iloc[0]), "label": str(mine["label"].iloc[0]),
        "reference": reference_name, "mean": mean, "reference_mean": ref_mean,
        "minus": mean - ref_mean, "minus_ci_low": low, "minus_ci_high": high,
        "over": mean / ref_mean if ref_mean else math.nan, "over_ci_low": r_low, "over_ci_high": r_high,
        "unit": "|".join(sorted({str(u) for u in mine["unit"]})),
    }


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(OVERHEAD_COLUMNS))
    if table.empty:
        return table
    return table.sort_values(["metric", "quantity", "mode", "platform", "x"], kind="stable").reset_index(drop=True)


def _ok(samples: pd.DataFrame) -> pd.DataFrame:
    return samples.assign(mode=samples["mode"].fillna("").astype("str"))


def versus_baseline(samples: pd.DataFrame,
                    baseline: str = DEFAULT_BASELINE) -> tuple[pd.DataFrame, list[str], list[str]]:
    """(table, baseline platforms used, notes) of every platform against the baseline."""
    frame = _ok(samples)
    bases = baseline_platforms(frame, baseline)
    notes: list[str] = []
    if not bases:
        measured = ", ".join(sorted({str(p) for p in frame["platform"]})) or "none"
        notes.append(f"no baseline: no platform with engine or name `{baseline}` was measured "
                     f"(measured: {measured}); the overhead against a baseline is skipped")
        return _frame([]), [], notes
    base = bases[0]
    if len(bases) > 1:
        notes.append(f"several `{baseline}` platforms ({', '.join(bases)}); `{base}` is the baseline")
    rows: list[dict[str, object]] = []
    for panel in PANELS:
        quantity = panel_quantity(frame, panel)
        quantity_rows = frame[(frame["metric"] == panel.metric) & (frame["quantity"] == quantity)]
        reference = quantity_rows[quantity_rows["platform"] == base]
        for (platform, mode, x), mine in quantity_rows.groupby(["platform", "mode", "x"], sort=True):
            if platform == base:
                continue
            ref = reference[(reference["mode"] == mode) & (reference["x"] == x)]
            if ref.empty:
                notes.append(f"{panel.metric}/{quantity} x={x}{f' [{mode}]' if mode else ''}: "
                             f"`{base}` has no samples; {platform} not compared there")
                continue
            rows.append(_row(panel, quantity, str(mode), int(x), mine, base, ref))
    return _frame(rows), bases, notes


def versus_floor(samples: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(table, notes): each platform's proxied RTT against its own direct A-B floor at the same x and mode."""
    frame = _ok(samples)
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    for panel in PANELS:
        if not panel.floor_quantity:
            continue
        metric_rows = frame[frame["metric"] == panel.metric]
        proxied = metric_rows[metric_rows["quantity"] == panel.quantity]
        floor = metric_rows[metric_rows["quantity"] == panel.floor_quantity]
        for (platform, mode, x), mine in proxied.groupby(["platform", "mode", "x"], sort=True):
            ref = floor[(floor["platform"] == platform) & (floor["mode"] == mode) & (floor["x"] == x)]
            if ref.empty:
                notes.append(f"{platform} x={x}: no `{panel.floor_quantity}` floor measured")
                continue
            rows.append(_row(panel, panel.quantity, str(mode), int(x), mine, f"{platform} direct", ref))
    return _frame(rows), notes


def overhead_view(samples: pd.DataFrame, baseline: str = DEFAULT_BASELINE) -> OverheadView:
    """The whole view for the report."""
    against_base, bases, notes = versus_baseline(samples, baseline)
    against_floor, floor_notes = versus_floor(samples)
    return OverheadView(baseline, tuple(bases), against_base, against_floor, notes + floor_notes)
