"""Summary tables computed from the raw samples: one row per point, and the compact Fig. 2 tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vnflab.markdown import fmt_num, markdown_table
from vnflab.measure.memory import SOURCES, exact_source
from vnflab.measure.schema import METRICS, QUANTITY_UNITS
from vnflab.report.latex import latex_table
from vnflab.stats.panels import PANELS, Panel, SeriesKey, panel_rows, secondary_rows, series_keys, short_names
from vnflab.stats.summary import SUMMARY_FIELDS, summarize

#: One summary row per distinct combination of these (mode is "" where it does not apply).
SUMMARY_KEYS: tuple[str, ...] = ("platform", "label", "metric", "quantity", "mode", "x")

SUMMARY_COLUMNS: tuple[str, ...] = (*SUMMARY_KEYS, "x_unit", *SUMMARY_FIELDS, "unit", "stop")

#: The Markdown summary shows these (all of SUMMARY_COLUMNS are in the CSV).
_MARKDOWN_COLUMNS: dict[str, str] = {
    "platform": "platform", "label": "label", "metric": "metric", "quantity": "quantity", "mode": "mode",
    "x": "x", "x_unit": "x unit", "n": "n", "n_lost": "lost", "n_outliers": "outliers", "mean": "mean",
    "ci_low": "CI low", "ci_high": "CI high", "stdev": "stdev", "median": "median", "median_ci_low": "median CI low",
    "median_ci_high": "median CI high", "min": "min", "max": "max", "p95": "p95", "p99": "p99", "unit": "unit",
    "stop": "stop",
}


def _one(values: pd.Series) -> str:
    distinct = sorted({str(v) for v in values.dropna()})
    return "|".join(distinct)


def _stop_reasons(points: pd.DataFrame | None) -> dict[tuple[str, str, str, str, int], str]:
    """Why each point stopped, keyed by (platform, label, metric, mode, x); the last record wins.

    A point's batches carry every quantity of its metric, so the reason applies to all of them.
    """
    needed = {"platform", "label", "metric", "x", "reason"}
    if points is None or points.empty or not needed <= set(points.columns):
        return {}
    reasons: dict[tuple[str, str, str, str, int], str] = {}
    modes = points["mode"] if "mode" in points.columns else pd.Series([None] * len(points), index=points.index)
    for (_, row), mode in zip(points.iterrows(), modes, strict=True):
        mode_text = "" if mode is None or pd.isna(mode) else str(mode)
        key = (str(row["platform"]), str(row["label"]), str(row["metric"]), mode_text, int(row["x"]))
        reasons[key] = str(row["reason"])
    return reasons


def summary_table(samples: pd.DataFrame, points: pd.DataFrame | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """One row per (platform, label, metric, quantity, mode, x) with :class:`~vnflab.stats.summary.Summary` columns.

    ``stop`` is the reason from ``points.jsonl`` (``converged``/``cap``) or "" when not journaled.
    Rows are ordered by metric (boot, response, memory, others), quantity (design.md order, then
    others), platform, label, mode, x.
    """
    # A skipped sample measured nothing (no mechanism here): it is reported with its reason, not as a lost sample.
    measured = samples[samples["status"] != "skipped"]
    frame = measured.assign(mode=measured["mode"].fillna("").astype("str"))
    reasons = _stop_reasons(points)
    rows = []
    for key, group in frame.groupby(list(SUMMARY_KEYS), sort=False):
        platform, label, metric, quantity, mode, x = key
        stats = summarize(group["value"], confidence)
        rows.append({
            "platform": platform, "label": label, "metric": metric, "quantity": quantity, "mode": mode,
            "x": int(x), "x_unit": _one(group["x_unit"]), **stats.as_dict(), "unit": _one(group["unit"]),
            "stop": reasons.get((platform, label, metric, mode, int(x)), ""),
        })
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    if table.empty:
        return table.astype({"x": "int64", "n": "int64", "n_lost": "int64"})
    metric_order = {metric: index for index, metric in enumerate(METRICS)}
    quantity_order = {quantity: index for index, (_, quantity) in enumerate(QUANTITY_UNITS)}
    table["_m"] = table["metric"].map(lambda m: metric_order.get(m, len(metric_order)))
    table["_q"] = table["quantity"].map(lambda q: quantity_order.get(q, len(quantity_order)))
    keys = ["_m", "metric", "_q", "quantity", "platform", "label", "mode", "x"]
    return table.sort_values(keys, kind="stable").drop(columns=["_m", "_q"]).reset_index(drop=True)


def summary_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table; ``mode``/``stop`` columns only when some row has one."""
    columns = [c for c in _MARKDOWN_COLUMNS if c in summary.columns]
    for optional in ("mode", "stop"):
        if optional in columns and not (summary[optional] != "").any():
            columns.remove(optional)
    return markdown_table(summary[columns], [_MARKDOWN_COLUMNS[c] for c in columns])


def _panel_columns(summary: pd.DataFrame, panel: Panel) -> list[tuple[str, SeriesKey, pd.DataFrame]]:
    """(column name, series, its summary rows indexed by x) for the panel's quantity, then its floor."""
    quantities: list[tuple[str | None, str]] = [(None, "")]
    if panel.floor_quantity:
        quantities.append((panel.floor_quantity, " direct"))
    if panel.secondary_quantity and not secondary_rows(summary, panel).empty:
        quantities.append((panel.secondary_quantity, " server"))

    def rows_of(quantity: str | None, suffix: str) -> pd.DataFrame:
        return secondary_rows(summary, panel) if suffix == " server" else panel_rows(summary, panel, quantity)

    all_rows = pd.concat([rows_of(q, suffix) for q, suffix in quantities])
    names = short_names(series_keys(all_rows))
    columns = []
    for quantity, suffix in quantities:
        rows = rows_of(quantity, suffix)
        for key in series_keys(rows):
            mine = rows[(rows["platform"] == key[0]) & (rows["label"] == key[1]) & (rows["mode"] == key[2])]
            columns.append((names[key] + suffix, key, mine.set_index("x")))
    return columns


def figure2_table(summary: pd.DataFrame, panel: Panel) -> pd.DataFrame:
    """Rows x, one column of means per platform (and ``<platform> direct`` for the panel's floor)."""
    columns = {name: rows["mean"] for name, _, rows in _panel_columns(summary, panel)}
    if not columns:
        return pd.DataFrame({"x": pd.Series(dtype="int64")})
    table = pd.DataFrame(columns).sort_index()
    table.index.name = "x"
    return table.reset_index()


def figure2_markdown(summary: pd.DataFrame, panel: Panel) -> str:
    """The Fig. 2 table as Markdown, cells ``mean ± CI half-width``, with a legend of platform labels."""
    columns = _panel_columns(summary, panel)
    if not columns:
        return f"{panel.title}: no `{panel.metric}/{panel.quantity}` samples in this run.\n"
    xs = sorted({int(x) for _, _, rows in columns for x in rows.index})
    cells = pd.DataFrame({"x": pd.Series(xs, dtype="int64")})
    legend: list[str] = []
    for name, key, rows in columns:
        texts = []
        for x in xs:
            if x not in rows.index:
                texts.append("")
                continue
            row = rows.loc[x]
            half = (row["ci_high"] - row["ci_low"]) / 2
            texts.append(fmt_num(row["mean"]) + ("" if pd.isna(half) else f" ± {fmt_num(half)}"))
        cells[name] = texts
        entry = (f"- `{name.removesuffix(' direct').removesuffix(' server')}`: {key[1]}"
                 + (f", mode {key[2]}" if key[2] else ""))
        if panel.fallback_quantity and not name.endswith(" server"):
            quantity = _one(rows["quantity"])
            entry += "; `" + quantity + "`: " + (exact_source(summary, key[0], key[1])
                                                 if quantity == panel.quantity else SOURCES.get(quantity, quantity))
        if entry not in legend and not name.endswith(" server"):
            legend.append(entry)
    unit = _one(pd.concat([rows["unit"] for _, _, rows in columns]))
    shown = _one(pd.concat([rows["quantity"] for name, _, rows in columns
                            if not name.endswith((" direct", " server"))]))
    header = f"{panel.title}: mean ± 95% CI half-width of `{shown}` ({unit}) by x ({panel.x_unit})"
    if panel.floor_quantity:
        header += f"; `direct` columns are the `{panel.floor_quantity}` floor without the VNF"
    if any(name.endswith(" server") for name, _, _ in columns):
        header += (f"; `server` columns are `{panel.secondary_quantity}`, "
                   f"{SOURCES.get(str(panel.secondary_quantity), '')}")
    return header + ".\n\n" + markdown_table(cells) + "\n" + "\n".join(legend) + "\n"


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """CSV with full float precision and ``\\n`` line ends (byte-identical for identical data)."""
    return _write_text(path, frame.to_csv(index=False, lineterminator="\n"))


def write_tables(summary: pd.DataFrame, tables_dir: Path) -> dict[str, Path]:
    """Write ``summary.{csv,md,tex}`` and ``<panel slug>.{csv,md,tex}`` for each Fig. 2 panel."""
    written = {
        "summary.csv": write_csv(summary, tables_dir / "summary.csv"),
        "summary.md": _write_text(tables_dir / "summary.md", summary_markdown(summary)),
        "summary.tex": _write_text(tables_dir / "summary.tex", latex_table(summary, "Summary of every point")),
    }
    for panel in PANELS:
        frame = figure2_table(summary, panel)
        written[f"{panel.slug}.csv"] = write_csv(frame, tables_dir / f"{panel.slug}.csv")
        written[f"{panel.slug}.md"] = _write_text(tables_dir / f"{panel.slug}.md", figure2_markdown(summary, panel))
        written[f"{panel.slug}.tex"] = _write_text(tables_dir / f"{panel.slug}.tex",
                                                   latex_table(frame, f"Fig. 2{panel.key}: mean {panel.quantity}"))
    return written
