"""Figures in the shape of the paper's Fig. 2, drawn from the summary table (Agg, no pyplot state).

Each panel: one line per platform label, mean with its Student-t 95% CI as a shaded band, log2 x
axis ticked at the measured x, log y axis when the means span more than :data:`LOG_Y_SPAN` (so a
microVM and a container fit one panel); panel (b) adds each platform's direct floor
(``rtt_direct_us``) dashed; panel (c) draws the exact memory of the instances (``exact_used_mb``,
:mod:`vnflab.measure.memory`) and the whole server's MemAvailable delta dotted beside it. PNG (for the
report), SVG and PDF (for papers) are written with fixed metadata (no dates, fixed Creator/Producer,
fixed SVG id salt) so that regenerating from the same data gives identical files with the same
matplotlib and fonts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from vnflab.measure.memory import SOURCES, exact_source
from vnflab.stats.panels import PANELS, Panel, SeriesKey, legend_names, panel_rows, secondary_rows, series_keys

_RC: dict[Any, Any] = {"svg.hashsalt": "vnflab", "svg.fonttype": "path", "path.simplify": True}
_METADATA: dict[str, dict[str, str | None]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"Creator": "vnflab", "Producer": "vnflab", "CreationDate": None},
}
FORMATS: tuple[str, ...] = ("png", "svg", "pdf")
#: A y axis whose positive values span more than this factor (max / min) is drawn on a log scale.
LOG_Y_SPAN = 30.0


def _x_tick_label(x: int, x_unit: str) -> str:
    if x_unit != "B":
        return str(x)
    if x >= 1024 and x % 1024 == 0:
        return f"{x // 1024} KiB"
    return f"{x} B"


def _series(rows: pd.DataFrame, key: SeriesKey) -> pd.DataFrame:
    mine = rows[(rows["platform"] == key[0]) & (rows["label"] == key[1]) & (rows["mode"] == key[2])]
    return mine.sort_values("x")


def _draw(ax: Axes, summary: pd.DataFrame, panel: Panel) -> None:
    rows = panel_rows(summary, panel)
    keys = series_keys(rows)
    floor_rows = panel_rows(summary, panel, panel.floor_quantity) if panel.floor_quantity else rows.iloc[0:0]
    all_keys = sorted(set(keys) | set(series_keys(floor_rows)))
    colours = dict(zip(all_keys, sns.color_palette("colorblind", len(all_keys)), strict=True))
    names = legend_names(all_keys)
    if panel.fallback_quantity:  # say which quantity each line is (the exact one, or the fallback)
        for key in keys:
            quantity = "|".join(sorted(set(_series(rows, key)["quantity"])))
            source = (exact_source(summary, key[0], key[1]).split(" (")[0] if quantity == panel.quantity
                      else SOURCES.get(quantity, quantity))
            names[key] = f"{names[key]}: {source}"

    row_keys = zip(rows["platform"], rows["label"], rows["mode"], strict=True)
    frame = rows.assign(series=[names[(p, lab, m)] for p, lab, m in row_keys])
    sns.lineplot(
        data=frame, x="x", y="mean", hue="series", hue_order=[names[k] for k in keys],
        palette={names[k]: colours[k] for k in keys}, marker="o", errorbar=None, ax=ax,
    )
    for key in keys:
        mine = _series(rows, key)
        low = (mine["mean"] - mine["ci_low"]).fillna(0.0)
        high = (mine["ci_high"] - mine["mean"]).fillna(0.0)
        ax.fill_between(mine["x"], mine["mean"] - low, mine["mean"] + high, color=colours[key], alpha=0.2, lw=0)
    for key in series_keys(floor_rows):
        mine = _series(floor_rows, key)
        ax.plot(mine["x"], mine["mean"], linestyle="--", color=colours[key], lw=1,
                label=f"{key[0]}: direct, no VNF ({panel.floor_quantity})")
    beside = secondary_rows(summary, panel)
    for key in series_keys(beside):
        if key not in colours:
            continue
        mine = _series(beside, key)
        ax.plot(mine["x"], mine["mean"], linestyle=":", color=colours[key], lw=1,
                label=f"{key[0]}: whole server ({panel.secondary_quantity})")

    xs = sorted({int(x) for x in pd.concat([rows["x"], floor_rows["x"]])})
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [_x_tick_label(x, panel.x_unit) for x in xs], rotation=45 if len(xs) > 8 else 0)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(panel.x_label)
    ax.set_ylabel(panel.y_label)
    ax.set_title(panel.title)
    means = pd.concat([rows["mean"], floor_rows["mean"], beside["mean"]]).dropna()
    apply_y_scale(ax, means)
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()


def apply_y_scale(ax: Axes, values: pd.Series) -> None:
    """Log y when the positive ``values`` span more than :data:`LOG_Y_SPAN`, else linear from 0."""
    positive = values[values > 0]
    if len(positive) == len(values) and len(positive) and positive.max() / positive.min() > LOG_Y_SPAN:
        ax.set_yscale("log")
        return
    bottom, _ = ax.get_ylim()
    ax.set_ylim(bottom=min(0.0, bottom))


def plot_panel(summary: pd.DataFrame, panel: Panel) -> Figure | None:
    """The figure for ``panel``, or ``None`` when the run has no samples for it."""
    if panel_rows(summary, panel).empty:
        return None
    with mpl.rc_context(_RC), sns.axes_style("whitegrid"), sns.plotting_context("paper"):
        figure = Figure(figsize=(6.0, 4.2), layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
        _draw(ax, summary, panel)
        handles, labels = ax.get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", fontsize="small", frameon=False)
    return figure


def save_figure(figure: Figure, stem: Path) -> list[Path]:
    """Write ``stem.png``, ``stem.svg`` and ``stem.pdf`` with fixed metadata; return the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with mpl.rc_context(_RC):
        for fmt in FORMATS:
            path = stem.with_suffix(f".{fmt}")
            figure.savefig(path, format=fmt, dpi=150, metadata=_METADATA[fmt])
            paths.append(path)
    return paths


def write_figures(summary: pd.DataFrame, figures_dir: Path) -> dict[str, list[Path]]:
    """Write every Fig. 2 panel; a panel without data gets no files (stale ones are removed)."""
    written: dict[str, list[Path]] = {}
    for panel in PANELS:
        stem = figures_dir / panel.slug
        figure = plot_panel(summary, panel)
        if figure is None:
            for fmt in FORMATS:
                stem.with_suffix(f".{fmt}").unlink(missing_ok=True)
            written[panel.slug] = []
            continue
        written[panel.slug] = save_figure(figure, stem)
    return written
