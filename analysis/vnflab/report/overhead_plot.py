"""Figure of the overhead view: ratio over the baseline (and over the direct floor) against x, per quantity."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from vnflab.report.plots import _RC, FORMATS, apply_y_scale, save_figure
from vnflab.stats.overhead import OverheadView

SLUG = "overhead"


def _panels(view: OverheadView) -> list[tuple[str, pd.DataFrame]]:
    panels = []
    table = view.versus_baseline
    for (metric, quantity), rows in table.groupby(["metric", "quantity"], sort=False):
        panels.append((f"{metric}/{quantity} over `{view.baseline_platforms[0]}`", rows))
    for (metric, quantity), rows in view.versus_floor.groupby(["metric", "quantity"], sort=False):
        panels.append((f"{metric}/{quantity} over the direct floor", rows))
    return panels


def plot_overhead(view: OverheadView) -> Figure | None:
    """One subplot per (quantity, reference) with one line per platform; ``None`` when the view is empty."""
    panels = _panels(view)
    if not panels:
        return None
    with mpl.rc_context(_RC), sns.axes_style("whitegrid"), sns.plotting_context("paper"):
        figure = Figure(figsize=(6.0, 3.4 * len(panels)), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
        for ax, (title, rows) in zip(axes, panels, strict=True):
            series = sorted({(str(p), str(m)) for p, m in zip(rows["platform"], rows["mode"], strict=True)})
            colours = dict(zip(series, sns.color_palette("colorblind", len(series)), strict=True))
            for key in series:
                mine = rows[(rows["platform"] == key[0]) & (rows["mode"] == key[1])].sort_values("x")
                name = key[0] + (f" [{key[1]}]" if key[1] else "")
                ax.plot(mine["x"], mine["over"], marker="o", color=colours[key], label=name)
                ax.fill_between(mine["x"], mine["over_ci_low"].fillna(mine["over"]),
                                mine["over_ci_high"].fillna(mine["over"]), color=colours[key], alpha=0.2, lw=0)
            xs = sorted({int(x) for x in rows["x"]})
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [str(x) for x in xs], rotation=45 if len(xs) > 8 else 0)
            ax.xaxis.set_minor_locator(NullLocator())
            ax.axhline(1.0, color="grey", lw=0.8, linestyle=":")
            ax.set_xlabel(f"x ({'|'.join(sorted(set(rows['x_unit'])))})")
            ax.set_ylabel("ratio (platform / reference)")
            ax.set_title(title)
            apply_y_scale(ax, rows["over"].dropna())
            ax.legend(fontsize="small", frameon=False)
    return figure


def write_overhead_figure(view: OverheadView, figures_dir: Path) -> list[Path]:
    """``figures/overhead.{png,svg,pdf}``, or nothing (stale files removed) when the view is empty."""
    stem = figures_dir / SLUG
    figure = plot_overhead(view)
    if figure is None:
        for fmt in FORMATS:
            stem.with_suffix(f".{fmt}").unlink(missing_ok=True)
        return []
    return save_figure(figure, stem)
