"""The three panels of the paper's Fig. 2 (declared with their metrics, :mod:`vnflab.metrics`) and how series
(lines/columns) are named in them."""

from __future__ import annotations

import pandas as pd

from vnflab.metrics import PANELS, Panel

__all__ = ["PANELS", "Panel", "SeriesKey", "legend_names", "panel_quantity", "panel_rows", "secondary_rows",
           "series_keys", "short_names"]

#: Identity of one line in a panel: (platform, label, mode); mode is "" when not applicable.
SeriesKey = tuple[str, str, str]


def panel_rows(summary: pd.DataFrame, panel: Panel, quantity: str | None = None) -> pd.DataFrame:
    """Rows of ``panel`` for ``quantity``; by default its main quantity, per series (platform and label)
    the fallback quantity where the series has none of the main one."""
    if quantity is not None:
        return summary[(summary["metric"] == panel.metric) & (summary["quantity"] == quantity)]
    rows = summary[(summary["metric"] == panel.metric) & (summary["quantity"] == panel.quantity)]
    if panel.fallback_quantity is None:
        return rows
    fallback = summary[(summary["metric"] == panel.metric) & (summary["quantity"] == panel.fallback_quantity)]
    have = set(zip(rows["platform"], rows["label"], strict=True))
    missing = [(p, lab) not in have for p, lab in zip(fallback["platform"], fallback["label"], strict=True)]
    return pd.concat([rows, fallback[missing]]) if any(missing) else rows


def panel_quantity(frame: pd.DataFrame, panel: Panel) -> str:
    """The quantity that compares platforms in ``panel``: the main one, or the fallback in a run without it."""
    present = frame[(frame["metric"] == panel.metric) & (frame["quantity"] == panel.quantity)]
    return panel.quantity if not present.empty or panel.fallback_quantity is None else panel.fallback_quantity


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


def secondary_rows(summary: pd.DataFrame, panel: Panel) -> pd.DataFrame:
    """Rows of the panel's secondary quantity, for the series whose main line is not already that quantity."""
    if panel.secondary_quantity is None:
        return summary.iloc[0:0]
    main = panel_rows(summary, panel)
    drawn_as_main = set(zip(main.loc[main["quantity"] == panel.secondary_quantity, "platform"],
                            main.loc[main["quantity"] == panel.secondary_quantity, "label"], strict=True))
    rows = panel_rows(summary, panel, panel.secondary_quantity)
    keep = [(p, lab) not in drawn_as_main for p, lab in zip(rows["platform"], rows["label"], strict=True)]
    return rows[keep]
