"""The chain metric in the report: RTT vs chain length per platform and size (figure and table), the boot time of
the whole chain, each against k times the single VNF's figure, and why a platform was skipped."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vnflab.report.sections import Section, figure_table_section

METRIC = "chain"
SLUG = "chain_rtt"
COLUMNS = ("platform", "label", "status", "size_b", "k", "n", "rtt_us_median", "rtt_us_mean", "rtt_lost",
           "per_hop_us", "k_times_single_us", "ratio_to_k_times_single", "boot_chain_ms", "k_times_single_boot_ms",
           "reason")
_SIZE = re.compile(r"(\d+) B$")


def size_of(mode: object) -> int | None:
    """The payload size a chain RTT sample's ``mode`` names (``icmp 64 B`` -> 64)."""
    match = _SIZE.search(str(mode or ""))
    return int(match.group(1)) if match else None


def chain_table(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per platform, size and k: the RTT through the chain (median, mean, lost), the per-hop share
    ``(median(k) - median(1)) / (k - 1)``, ``k x`` the single VNF's median and the ratio of the two (above 1: the
    hops cost more than k single VNFs; below 1: less), the chain's boot time (mean) beside ``k x`` the single
    hop's; a skipped platform is one row with the reason."""
    rows: list[dict[str, object]] = []
    frame = samples[samples["metric"] == METRIC]
    for (platform, label), group in frame.groupby(["platform", "label"], sort=True):
        measured = group[group["status"] != "skipped"]
        if measured.empty:
            reasons = group["reason"].dropna().astype(str).unique() if "reason" in group else []
            rows.append({"platform": platform, "label": label, "status": "skipped",
                         "reason": "; ".join(sorted(reasons))})
            continue
        boot = measured[measured["quantity"] == "boot_chain_ms"].groupby("x")["value"].mean()
        rtt = measured[measured["quantity"] == "rtt_chain_us"].assign(size_b=lambda f: f["mode"].map(size_of))
        for size, by_size in rtt.groupby("size_b", sort=True):
            medians = by_size.groupby("x")["value"].median()
            single = medians.get(1, np.nan)
            single_boot = boot.get(1, np.nan)
            for k, values in by_size.groupby("x", sort=True):
                median = values["value"].median()
                rows.append({
                    "platform": platform, "label": label, "status": "measured", "size_b": int(size), "k": int(k),
                    "n": int(len(values)), "rtt_us_median": median, "rtt_us_mean": values["value"].mean(),
                    "rtt_lost": int(values["value"].isna().sum()),
                    "per_hop_us": (median - single) / (k - 1) if k > 1 else np.nan,
                    "k_times_single_us": k * single, "ratio_to_k_times_single": median / (k * single),
                    "boot_chain_ms": boot.get(k, np.nan), "k_times_single_boot_ms": k * single_boot, "reason": ""})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def plot_chain_rtt(table: pd.DataFrame) -> Figure | None:
    """Median RTT vs chain length k, one line per platform and size; dotted: k times the single VNF's median."""
    measured = table[table["status"] == "measured"]
    if measured.empty:
        return None
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for (platform, size), line in measured.groupby(["platform", "size_b"], sort=True):
        line = line.sort_values("k")
        drawn = ax.plot(line["k"], line["rtt_us_median"], marker="o", label=f"{platform}, {int(size)} B")
        ax.plot(line["k"], line["k_times_single_us"], linestyle=":", color=drawn[0].get_color())
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(measured["k"].unique()), [str(int(k)) for k in sorted(measured["k"].unique())])
    ax.set_xlabel("Chain length k (proxy VNFs in series)")
    ax.set_ylabel("Response time, median (us)")
    ax.set_title("RTT vs service chain length (dotted: k x one VNF)")
    ax.legend(fontsize="small")
    return figure


def chain_section(samples: pd.DataFrame, figures_dir: Path, run_dir: Path) -> tuple[Section, list[Path]]:
    """The report's chain section, its table (``tables/chain_rtt.*``) and figure files."""
    table = chain_table(samples)
    return figure_table_section(
        "## Service chains (beyond the paper)",
        "k proxy VNFs in series on one server, A -> VNF1 -> ... -> VNFk -> B, their links bridges on the "
        "server. RTT = Host A's echo through the whole chain (median of its samples per size); per hop = "
        "(median(k) - median(1)) / (k - 1); ratio = median(k) / (k x median(1)) (below 1: a chain costs less "
        "than k single VNFs, because Host A's and Host B's own share is paid once). Boot = Host A's first "
        "reply through all k minus the server's first start command. A platform that cannot chain here is "
        "listed as skipped, with the reason.",
        table, plot_chain_rtt(table), SLUG, "RTT vs chain length", "Service chains: RTT and boot time vs chain length",
        figures_dir, run_dir)
