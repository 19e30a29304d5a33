"""Report sections added to report.md beyond Fig. 2: the summary, outliers, overhead, conclusions, Section V.

Each function returns the Markdown lines of its section and the tables it shows, which
:func:`vnflab.report.build.build_report` also writes as CSV, Markdown and LaTeX under ``tables/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from vnflab.markdown import fmt_num, fmt_p, markdown_table
from vnflab.measure.schema import parse_label
from vnflab.report.conclusions import contrast, pairwise_statements, paper_comparisons, paper_figures
from vnflab.report.paper import PaperData, match_rows
from vnflab.report.plots import save_figure
from vnflab.report.requirements import RequirementSpec
from vnflab.stats.overhead import OverheadView
from vnflab.stats.panels import PANELS, panel_quantity
from vnflab.stats.ranking import MetricRanking, MetricRef, combine, rank_metric


@dataclass
class Section:
    """Markdown lines and the tables (file stem -> (frame, caption)) of one section."""

    lines: list[str]
    tables: dict[str, tuple[pd.DataFrame, str]] = field(default_factory=dict)


def figure_table_section(heading: str, intro: str, table: pd.DataFrame, figure: Figure | None, slug: str,
                         alt: str, caption: str, figures_dir: Path, run_dir: Path) -> tuple[Section, list[Path]]:
    """A section of one figure (saved as ``figures/<slug>.*``) and its table (``tables/<slug>.*``): the heading, the
    intro paragraph, the figure's PNG and the table; no lines when the table is empty (the figure files stay)."""
    paths = save_figure(figure, figures_dir / slug) if figure is not None else []
    if table.empty:
        return Section(lines=[]), paths
    lines = [heading, "", intro, ""]
    if paths:
        png = next((path for path in paths if path.suffix == ".png"), paths[0])
        lines += [f"![{alt}]({png.relative_to(run_dir).as_posix()})", ""]
    lines += [markdown_table(table), ""]
    return Section(lines=lines, tables={slug: (table, caption)}), paths


_HEADLINE_COLUMNS = ("panel", "quantity", "mode", "x", "x_unit", "unit", "lowest", "lowest_label", "mean", "ci_low",
                     "ci_high", "next", "next_label", "next_mean", "next_ci_low", "next_ci_high", "ratio",
                     "ratio_ci_low", "ratio_ci_high", "p_value", "resolved")


def _lowest_row(ranking: MetricRanking, samples: pd.DataFrame) -> dict[str, object]:
    """Who is lowest in one ranking, and how much higher the next platform is (ratio of means, CI, p)."""
    table = ranking.table
    first = table.iloc[0]
    row: dict[str, object] = {
        "panel": ranking.ref.name, "quantity": ranking.ref.quantity, "mode": ranking.mode, "x": ranking.x,
        "x_unit": ranking.x_unit, "unit": ranking.unit, "lowest": str(first["platform"]),
        "lowest_label": str(first["label"]), "mean": first["mean"], "ci_low": first["ci_low"],
        "ci_high": first["ci_high"], "next": "", "next_label": "", "resolved": False,
    }
    if len(table) < 2:
        return row
    second = table.iloc[1]
    rows = samples[(samples["metric"] == ranking.ref.metric) & (samples["quantity"] == ranking.ref.quantity)
                   & (samples["mode"].fillna("").astype("str") == ranking.mode)]
    found = contrast(rows, (str(second["platform"]), str(second["label"])),
                     (str(first["platform"]), str(first["label"])), ranking.x)
    return {**row, "next": str(second["platform"]), "next_label": str(second["label"]),
            "next_mean": second["mean"], "next_ci_low": second["ci_low"], "next_ci_high": second["ci_high"],
            "ratio": found.ratio, "ratio_ci_low": found.ratio_ci[0], "ratio_ci_high": found.ratio_ci[1],
            "p_value": found.p_value, "resolved": bool(int(first["rank"]) < int(second["rank"]))}


def _headline_display(table: pd.DataFrame) -> pd.DataFrame:
    def ci(mean: object, low: object, high: object, digits: int = 4) -> str:
        return "" if pd.isna(mean) else f"{fmt_num(mean, digits)} [{fmt_num(low, digits)}, {fmt_num(high, digits)}]"

    def verdict(row: pd.Series) -> str:
        if row["next"] == "":
            return "one platform measured"
        return "lower (95% CIs apart)" if row["resolved"] else "tie (95% CIs overlap)"

    return pd.DataFrame({
        "Fig. 2": [f"{panel} [{mode}]" if mode else str(panel) for panel, mode in
                   zip(table["panel"], table["mode"], strict=True)],
        "x": [f"{x} {unit}" for x, unit in zip(table["x"], table["x_unit"], strict=True)],
        "unit": table["unit"],
        "lowest": table["lowest"],
        "mean [95% CI]": [ci(*v) for v in zip(table["mean"], table["ci_low"], table["ci_high"], strict=True)],
        "next": table["next"],
        "next mean [95% CI]": [ci(*v) for v in zip(table["next_mean"], table["next_ci_low"], table["next_ci_high"],
                                                   strict=True)],
        "next / lowest [95% CI]": [ci(*v, digits=3) for v in zip(table["ratio"], table["ratio_ci_low"],
                                                                 table["ratio_ci_high"], strict=True)],
        "Mann-Whitney p": ["" if pd.isna(p) else fmt_p(float(p)) for p in table["p_value"]],
        "verdict": [verdict(row) for _, row in table.iterrows()],
    })


def summary_section(summary: pd.DataFrame, samples: pd.DataFrame) -> Section:
    """The report's opening: per Fig. 2 panel, which platform is lowest and by how much, with CIs."""
    lines = ["## Summary", "",
             "Per panel of Fig. 2 (lower is better): the platform with the lowest mean at the largest x that every "
             "platform measured, and the next one; `next / lowest` is the ratio of their means with a seeded "
             "bootstrap 95% CI, and the Mann-Whitney p is on the raw samples at that x. Where the two 95% CIs of "
             "the means overlap, the data do not resolve the order: a tie.", ""]
    # Each panel's comparing quantity, as Fig. 2 draws it (the memory panel's exact figure, else its fallback).
    found = [_lowest_row(ranking, samples) for panel in PANELS
             for ranking in rank_metric(summary, MetricRef(panel.metric, panel_quantity(summary, panel),
                                                           panel.title))[0]]
    if not found:
        return Section(lines + ["_No Fig. 2 quantity has samples with a value in this run._", ""])
    table = pd.DataFrame(found, columns=list(_HEADLINE_COLUMNS))
    lines += [markdown_table(_headline_display(table))]
    stand_ins = sorted({str(label) for label in samples["label"].unique()
                        if (parsed := parse_label(str(label))) is not None and parsed.is_stand_in})
    if stand_ins:
        lines += ["Stand-ins (a different system in a paper row's place; compare shapes, not absolute numbers): "
                  + ", ".join(f"`{label}`" for label in stand_ins) + ".", ""]
    lines += ["Every pair of platforms, the paper's own statements beside this run's, and the Section V ranking "
              "follow the figure; definitions, statistics and the run manifest come last.", ""]
    return Section(lines, {"headline": (table, "Which platform is lowest in each panel of Fig. 2, and by how much")})


def outliers_section(summary: pd.DataFrame) -> Section:
    flagged = summary[summary["n_outliers"] > 0]
    lines = ["## Outliers", "",
             "Values outside Tukey's fences (Q1 - 1.5 IQR, Q3 + 1.5 IQR) of their point are flagged here and "
             "kept in every statistic: nothing is dropped.", ""]
    if flagged.empty:
        return Section(lines + ["No point has a value outside its fences.", ""])
    columns = ["platform", "metric", "quantity", "mode", "x", "n", "n_outliers", "median", "min", "max", "unit"]
    table = flagged[columns].reset_index(drop=True)
    lines += [f"{len(flagged)} of {len(summary)} points have flagged values ({int(flagged['n_outliers'].sum())} "
              "values in all):", "", markdown_table(table)]
    return Section(lines, {"outliers": (table, "Points with values outside Tukey's fences (kept, flagged)")})


def _overhead_display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "metric": table["metric"], "quantity": table["quantity"], "mode": table["mode"], "x": table["x"],
        "platform": table["platform"], "reference": table["reference"], "mean": table["mean"],
        "reference mean": table["reference_mean"],
        "minus [95% CI]": [f"{fmt_num(m)} [{fmt_num(lo)}, {fmt_num(hi)}]" for m, lo, hi in
                           zip(table["minus"], table["minus_ci_low"], table["minus_ci_high"], strict=True)],
        "over [95% CI]": [f"{fmt_num(m, 3)} [{fmt_num(lo, 3)}, {fmt_num(hi, 3)}]" for m, lo, hi in
                          zip(table["over"], table["over_ci_low"], table["over_ci_high"], strict=True)],
        "unit": table["unit"],
    })


def overhead_section(view: OverheadView, figure: list[Path], run_dir: Path) -> Section:
    lines = ["## Overhead", "",
             f"Each platform's mean minus and divided by the baseline's at the same x (baseline: the platform whose "
             f"label engine is `{view.baseline}`; `vnflab report --baseline ENGINE` selects another), and for "
             "response time the proxied RTT minus and over the direct A-B floor the same platform measured in turn. "
             "`minus`: Welch 95% CI; `over`: seeded bootstrap 95% CI of the ratio of means.", ""]
    tables: dict[str, tuple[pd.DataFrame, str]] = {}
    png = next((p for p in figure if p.suffix == ".png"), None)
    if png is not None:
        lines += [f"![Overhead]({png.relative_to(run_dir).as_posix()})", ""]
    lines += [f"### Against the baseline `{view.baseline}`", ""]
    if view.versus_baseline.empty:
        lines += ["_Skipped: " + (view.notes[0] if view.notes else "nothing to compare") + "._", ""]
    else:
        lines += [f"Baseline platform: `{view.baseline_platforms[0]}`.", "",
                  markdown_table(_overhead_display(view.versus_baseline))]
        tables["overhead_baseline"] = (view.versus_baseline, f"Overhead over the {view.baseline} baseline")
    lines += ["### Response time over the direct A-B floor", ""]
    if view.versus_floor.empty:
        lines += ["_No response samples with a direct floor in this run._", ""]
    else:
        lines += [markdown_table(_overhead_display(view.versus_floor))]
        tables["overhead_floor"] = (view.versus_floor, "Response time over the direct A-B floor")
    other = view.notes[1:] if view.versus_baseline.empty else view.notes
    if other:
        lines += [f"- {note}" for note in other] + [""]
    return Section(lines, tables)


def conclusions_section(samples: pd.DataFrame, paper: PaperData) -> Section:
    matches = match_rows(samples, paper)
    lines = ["## Conclusions, recomputed", "",
             "The paper's kinds of statements, computed from this run's samples: means, a seeded bootstrap 95% CI "
             "of the ratio of means, and a two-sided Mann-Whitney U test on the raw samples at that x "
             "(Cliff's delta: -1 = every subject sample below every reference sample).", ""]
    statements = pairwise_statements(samples)
    if statements.empty:
        lines += ["_No two platforms share a measured x (one platform measured, or disjoint sweeps): "
                  "nothing to compare._", ""]
    else:
        lines += [f"- {text}" for text in statements["statement"]] + [""]
    lines += ["### Beside the paper", "",
              f"Paper rows and the measured platforms that stand for them (source: {paper.source}):", ""]
    if matches:
        mapping = pd.DataFrame({"paper row": [m.row for m in matches], "platform": [m.platform for m in matches],
                                "label": [m.label for m in matches],
                                "real or stand-in": ["stand-in" if m.stand_in else "real" for m in matches],
                                "matched by": [m.how for m in matches]})
        lines += [markdown_table(mapping)]
        if any(m.stand_in for m in matches):
            lines += ["A stand-in row measures a different system in the paper row's place: compare its shape "
                      "(ordering, growth with x), not its absolute numbers, with the paper's.", ""]
    else:
        lines += ["_No measured platform stands for a paper row._", ""]
    comparisons = paper_comparisons(samples, paper)
    figures = paper_figures(samples, paper)
    shown = comparisons.assign(p=[fmt_p(v) for v in comparisons["p"]])
    lines += ["#### The paper's comparisons", "", markdown_table(shown),
              "#### The paper's figures", "", markdown_table(figures),
              "#### Remarks on the paper's own numbers", ""]
    lines += [f"- {remark}" for remark in paper.remarks] + [""]
    tables = {"conclusions_pairwise": (statements, "Pairwise comparisons recomputed from the samples"),
              "conclusions_paper_comparisons": (comparisons, "The paper's comparisons beside this run"),
              "conclusions_paper_figures": (figures, "The paper's figures beside this run")}
    return Section(lines, tables)


def _requirement_table(rankings: list[MetricRanking], weights: Mapping[str, float]) -> pd.DataFrame:
    combined = combine(rankings, dict(weights))
    cells = {
        (r.column, str(p), str(lab)): f"{fmt_num(m)} [{fmt_num(lo)}, {fmt_num(hi)}] (#{rk})"
        for r in rankings
        for p, lab, m, lo, hi, rk in r.table[["platform", "label", "mean", "ci_low", "ci_high", "rank"]]
        .itertuples(index=False, name=None)
    }
    table = pd.DataFrame({"overall": combined["overall"], "platform": combined["platform"],
                          "label": combined["label"]})
    for r in rankings:
        table[f"{r.column}, weight {weights.get(r.ref.metric, 1.0):g}: mean [95% CI] (#rank)"] = [
            cells[(r.column, str(p), str(lab))] for p, lab in zip(combined["platform"], combined["label"], strict=True)
        ]
    table["score"] = combined["mean_rank"]
    return table


def requirements_section(summary: pd.DataFrame, spec: RequirementSpec) -> Section:
    lines = ["## Management requirements (paper Section V)", "",
             f"Metrics and weights per requirement (from `{spec.source}`; `vnflab report --weights FILE` "
             "changes them):", ""]
    for req in spec.requirements:
        lines.append(f"- {req.name} (Section {req.section}) <- " + " + ".join(m.name for m in req.metrics)
                     + f" (weights: {req.weights_text()})")
    lines += ["", spec.note, "",
              "Per metric, platforms are compared at the largest x that all of them measured (lower is better). "
              "A platform's rank is 1 + the number of platforms whose 95% CI lies entirely below its own, so "
              "platforms whose CIs overlap share a rank: a tie. A requirement's score is the weighted mean of its "
              "metrics' ranks; equal scores tie. The paper's qualitative factors (migration, tooling, image "
              "catalogues) are not part of it.", ""]
    tables: dict[str, tuple[pd.DataFrame, str]] = {}
    for req in spec.requirements:
        lines += [f"### {req.section} {req.name}", ""]
        rankings: list[MetricRanking] = []
        notes: list[str] = []
        for ref in req.metrics:
            found, why = rank_metric(summary, ref)
            rankings += found
            notes += why
        if rankings:
            table = _requirement_table(rankings, req.weights)
            lines += [markdown_table(table)]
            tables[f"requirement_{req.section}"] = (table, f"Section {req.section} {req.name}")
            ranked = set(zip(table["platform"], table["label"], strict=True))
            for r in rankings:
                missing = sorted(str(p) for p, lab in zip(r.table["platform"], r.table["label"], strict=True)
                                 if (p, lab) not in ranked)
                if missing:
                    notes.append(f"not ranked overall (missing another metric): {', '.join(missing)}")
                for better, worse in r.overlaps:
                    notes.append(f"{r.column}: 95% CIs of {better} and {worse} overlap: tied")
        else:
            lines += ["_No ranking: no usable samples for these metrics._", ""]
        if notes:
            lines += [f"- {note}" for note in dict.fromkeys(notes)] + [""]
    return Section(lines, tables)


def sensitivity_section(samples: pd.DataFrame) -> Section:
    """What ``vnflab compare`` of this run against a like one can tell: each point's smallest flaggable change."""
    from vnflab.stats.compare import CANNOT_TELL, WITHIN_SPREAD, CompareOptions, compare_runs
    from vnflab.stats.runspread import DEFAULT_SOURCE

    options = CompareOptions()
    lines = ["## What a comparison can tell", "",
             (f"`vnflab compare` of this run against another run like it, one run a side: two-sided Mann-Whitney "
              f"U (exact permutation test for small samples; the proxied RTT relative to its own direct path), "
              f"p-values Holm-adjusted within each family of one platform and one metric (family-wise error <= "
              f"{options.alpha:g} per family; `--correction bh` for Benjamini-Hochberg over the run instead). "
              f"`mdc_pct` is the test's minimum detectable change: the shift of the median, in %, it finds with "
              f"80% probability at this point's n and noise (both sides like this run, normal noise of the "
              f"pooled standard deviation: conservative for heavy-tailed response times), alone in its family. "
              f"Two runs of the same code differ by more than their samples' spread (the machine's conditions "
              f"are shared by a whole run), so with one run a side a change must also exceed the declared "
              f"run-to-run tolerance of its metric and quantity (`tolerance_pct`, {DEFAULT_SOURCE}; "
              f"`--tolerances`/`--tolerance` override it) or it reads `{WITHIN_SPREAD}`; several runs a side "
              f"(`vnflab compare A1 A2 -- B1 B2`) test the run medians instead. `detectable_pct` = the larger "
              f"of the two: points where it exceeds {options.cannot_tell_pct:g}% read `{CANNOT_TELL}`: more "
              "batches buy power against the test, more runs against the tolerance."), ""]
    if samples.empty:
        return Section(lines + ["No samples.", ""])
    table = compare_runs(samples, samples, options)
    table = table[table["family_size"] > 0]
    shown = pd.DataFrame({
        "platform": table["platform"], "metric": table["metric"], "quantity": table["quantity"],
        "mode": table["mode"], "x": table["x"], "n": table["n_a"], "test": table["test"],
        "family": table["family"], "family_size": table["family_size"], "mdc_pct": table["mdc_pct"],
        "tolerance_pct": table["tolerance_pct"], "detectable_pct": table["detectable_pct"],
        "can tell": [("no: " + CANNOT_TELL) if not detectable <= options.cannot_tell_pct else "yes"
                     for detectable in table["detectable_pct"]],
    }).reset_index(drop=True)
    blind = int((shown["can tell"] != "yes").sum())
    test_only = int((shown["mdc_pct"] <= options.cannot_tell_pct).sum())
    lines += [f"{len(shown) - blind} of {len(shown)} points can tell a change of {options.cannot_tell_pct:g}% "
              f"or less with one run a side; {blind} cannot ({test_only} could by their test's power alone, "
              "without the run-to-run tolerance).", "", markdown_table(shown)]
    return Section(lines, {"sensitivity": (shown, "Smallest change vnflab compare can flag per point (one run a "
                                                  "side: Holm within platform and metric, 80% power, "
                                                  "run-to-run tolerance)")})
