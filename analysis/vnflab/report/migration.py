"""The migration metric in the report: downtime per platform (figure and table), and why a platform was skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vnflab.report.sections import Section, figure_table_section

METRIC = "migration"
SLUG = "migration_downtime"
#: Quantity -> column of the table (mean over the platform's migrations).
MEAN_COLUMNS = {"total_ms": "total_ms", "requests_sent": "requests_sent", "requests_lost": "requests_lost",
                "bytes_transferred": "bytes_mean", "platform_downtime_ms": "platform_downtime_ms",
                "baseline_gap_ms": "baseline_gap_ms"}
COLUMNS = ("platform", "label", "status", "n", "downtime_ms_mean", "downtime_ms_median", "downtime_ms_min",
           "downtime_ms_max", "downtime_lost", *MEAN_COLUMNS.values(), "reason")


def migration_table(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per platform: its migrations' downtime (mean, median, min, max; ``downtime_lost`` = migrations
    after which the path did not come back within the stream), the means of the other quantities, or
    ``status`` skipped with the reason."""
    rows = []
    frame = samples[samples["metric"] == METRIC]
    for (platform, label), group in frame.groupby(["platform", "label"], sort=True):
        skipped = group[group["status"] == "skipped"]
        measured = group[group["status"] != "skipped"]
        row: dict[str, object] = {"platform": platform, "label": label, "status": "measured", "n": 0, "reason": ""}
        if measured.empty:
            reasons = skipped["reason"].dropna().astype(str).unique() if "reason" in skipped else []
            row.update(status="skipped", reason="; ".join(sorted(reasons)))
            rows.append(row)
            continue
        downtime = measured[measured["quantity"] == "downtime_ms"]["value"]
        row.update(n=int(len(downtime)), downtime_lost=int(downtime.isna().sum()),
                   downtime_ms_mean=downtime.mean(), downtime_ms_median=downtime.median(),
                   downtime_ms_min=downtime.min(), downtime_ms_max=downtime.max())
        for quantity, column in MEAN_COLUMNS.items():
            values = measured[measured["quantity"] == quantity]["value"]
            row[column] = values.mean() if not values.empty else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def plot_downtime(table: pd.DataFrame) -> Figure | None:
    """Bars of the mean downtime per platform (whiskers: min to max); skipped platforms named, without a bar."""
    if table.empty:
        return None
    figure = Figure(figsize=(6.0, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    positions = np.arange(len(table))
    measured = table["status"] == "measured"
    means = table["downtime_ms_mean"].where(measured).astype("float64")
    low = (means - table["downtime_ms_min"].astype("float64")).clip(lower=0).fillna(0)
    high = (table["downtime_ms_max"].astype("float64") - means).clip(lower=0).fillna(0)
    ax.bar(positions[measured.to_numpy()], means[measured].to_numpy(),
           yerr=[low[measured].to_numpy(), high[measured].to_numpy()], capsize=4, color="tab:blue")
    for position, (_, row) in zip(positions, table.iterrows(), strict=True):
        if row["status"] != "measured":
            ax.text(position, 0, "skipped", ha="center", va="bottom", rotation=90, fontsize="small")
    ax.set_xticks(positions, [str(p) for p in table["platform"]])
    ax.set_ylabel("Downtime, longest gap without replies (ms)")
    ax.set_title("VNF migration downtime (Host A's 1 ms stream through the proxy)")
    return figure


def migration_section(samples: pd.DataFrame, figures_dir: Path, run_dir: Path) -> tuple[Section, list[Path]]:
    """The report's migration section, its table (``tables/migration_downtime.*``) and figure files."""
    table = migration_table(samples)
    return figure_table_section(
        "## VNF migration (beyond the paper)",
        "The proxy VNF is moved while Host A sends one echo request per interval through it (a fixed, "
        "bounded rate). Downtime = the longest time without a reply; total = the wall time of the platform's "
        "migrate command on the server; lost = requests without a reply; bytes = what the platform says it "
        "transferred. A platform without the mechanism here is listed as skipped, with the reason.",
        table, plot_downtime(table), SLUG, "Migration downtime per platform", "VNF migration: downtime per platform",
        figures_dir, run_dir)
