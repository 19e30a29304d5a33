"""The three panels of the paper's Fig. 2 and how series (lines/columns) are named in them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: Identity of one line in a panel: (platform, label, mode); mode is "" when not applicable.
SeriesKey = tuple[str, str, str]


@dataclass(frozen=True)
class Panel:
    """One panel of Fig. 2: which quantity is drawn against which x."""

    key: str
    slug: str
    title: str
    metric: str
    quantity: str
    floor_quantity: str | None
    x_label: str
    y_label: str
    x_unit: str


PANELS: tuple[Panel, ...] = (
    Panel(
        key="a",
        slug="fig2a_boot",
        title="(a) Boot time until all instances answer",
        metric="boot",
        quantity="all_ms",
        floor_quantity=None,
        x_label="Instances started concurrently",
        y_label="Boot time, all instances (ms)",
        x_unit="instances",
    ),
    Panel(
        key="b",
        slug="fig2b_response",
        title="(b) Response time through the proxy VNF",
        metric="response",
        quantity="rtt_proxy_us",
        floor_quantity="rtt_direct_us",
        x_label="Payload size (bytes)",
        y_label="Round-trip time (µs)",
        x_unit="B",
    ),
    Panel(
        key="c",
        slug="fig2c_memory",
        title="(c) VNF-server memory used",
        metric="memory",
        quantity="server_used_mb",
        floor_quantity=None,
        x_label="Instances running",
        y_label="Server memory used (MB = 2^20 B)",
        x_unit="instances",
    ),
)


def panel_rows(summary: pd.DataFrame, panel: Panel, quantity: str | None = None) -> pd.DataFrame:
    """Summary rows of ``panel`` for ``quantity`` (default: the panel's main quantity)."""
    wanted = quantity or panel.quantity
    return summary[(summary["metric"] == panel.metric) & (summary["quantity"] == wanted)]


def series_keys(rows: pd.DataFrame) -> list[SeriesKey]:
    """Distinct (platform, label, mode) of ``rows``, sorted."""
    keys = rows[["platform", "label", "mode"]].drop_duplicates().itertuples(index=False, name=None)
    return sorted((str(p), str(lab), str(m)) for p, lab, m in keys)


def short_names(keys: list[SeriesKey]) -> dict[SeriesKey, str]:
    """Column names for compact tables: the platform, disambiguated by mode and then label if needed."""
    names: dict[SeriesKey, str] = {}
    for key in keys:
        platform, label, mode = key
        same_platform = [k for k in keys if k[0] == platform]
        if len(same_platform) == 1:
            names[key] = platform
        elif len({k[2] for k in same_platform}) == len(same_platform):
            names[key] = f"{platform} {mode}".strip()
        else:
            names[key] = f"{platform} [{label}]" + (f" {mode}" if mode else "")
    return names


def legend_names(keys: list[SeriesKey]) -> dict[SeriesKey, str]:
    """Legend entries: the full platform label, plus the probe mode when a panel mixes modes."""
    modes = {k[2] for k in keys}
    return {k: k[1] + (f" [{k[2]}]" if len(modes) > 1 and k[2] else "") for k in keys}
