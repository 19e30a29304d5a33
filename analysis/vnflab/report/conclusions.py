"""The paper's kinds of conclusions, recomputed from the samples with their confidence.

Three products:

- :func:`pairwise_statements`: for every pair of measured platforms and every Fig. 2 quantity, the
  paper's kind of sentence ("A boots N% faster than B in the best case", "A responds K times faster
  than B at 64 KB", "A uses M% less memory than B at 128 instances"), with a seeded bootstrap 95% CI
  of the ratio of means and a Mann-Whitney U test on the raw samples at that x.
- :func:`paper_comparisons`: the paper's own relative statements (``data/paper.json``) recomputed for
  the measured platforms that stand for the paper's rows, beside the published value.
- :func:`paper_figures`: the paper's absolute numbers beside the measured mean at the nearest x.

All three quantities are "lower is better". The x the paper names is used when measured; otherwise
the nearest measured x (on a log scale) and the table says so.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vnflab.markdown import fmt_num, fmt_p
from vnflab.metrics import METRICS, Comparison
from vnflab.report.paper import PaperData, RowMatch, match_rows
from vnflab.stats.bootstrap import statistic_ci
from vnflab.stats.panels import PANELS, Panel, panel_quantity
from vnflab.stats.significance import mann_whitney

#: Significance level for "significant" in the tables' verdicts.
ALPHA = 0.05

#: How a panel's metric without a declared comparison is phrased (percent lower, at the largest x).
_PLAIN = Comparison(verb="is {v}% lower than")


@dataclass(frozen=True)
class Contrast:
    """``subject`` against ``reference`` on one quantity at one x (means over the samples that arrived)."""

    x: int
    mean_subject: float
    mean_reference: float
    ratio: float
    ratio_ci: tuple[float, float]
    p_value: float
    cliffs_delta: float
    n_subject: int
    n_reference: int


def _ok(samples: pd.DataFrame) -> pd.DataFrame:
    return samples.assign(mode=samples["mode"].fillna("").astype("str"))


def _values(rows: pd.DataFrame, platform: str, label: str, x: int) -> np.ndarray:
    mine = rows[(rows["platform"] == platform) & (rows["label"] == label) & (rows["x"] == x)]
    return mine["value"].dropna().to_numpy(dtype="float64")


def contrast(rows: pd.DataFrame, subject: tuple[str, str], reference: tuple[str, str], x: int) -> Contrast:
    """Ratio ``mean(subject) / mean(reference)`` at ``x`` with its CI and a Mann-Whitney test."""
    a = _values(rows, *subject, x)
    b = _values(rows, *reference, x)
    mean_a = float(a.mean()) if a.size else math.nan
    mean_b = float(b.mean()) if b.size else math.nan
    test = mann_whitney(a, b)
    ratio = mean_a / mean_b if mean_b else math.nan
    return Contrast(x, mean_a, mean_b, ratio, statistic_ci(a, b, how="ratio"), test.p_value, test.cliffs_delta,
                    int(a.size), int(b.size))


def common_xs(rows: pd.DataFrame, series: list[tuple[str, str]]) -> list[int]:
    """x values at which every series has at least one value."""
    sets = []
    for platform, label in series:
        mine = rows[(rows["platform"] == platform) & (rows["label"] == label) & rows["value"].notna()]
        sets.append({int(x) for x in mine["x"]})
    return sorted(set.intersection(*sets)) if sets else []


def nearest_x(available: list[int], wanted: int) -> int:
    """The available x closest to ``wanted`` on a log scale (ties: the larger)."""
    return min(available, key=lambda x: (abs(math.log(x / wanted)), -x))


def _percent(ratio: float) -> float:
    return 100.0 * (1.0 - ratio)


def _sig(p: float) -> str:
    if math.isnan(p):
        return "no test (too few samples)"
    return f"Mann-Whitney p = {fmt_p(p)}" + ("" if p < ALPHA else ", not significant")


def _panel_rows(samples: pd.DataFrame, panel: Panel) -> pd.DataFrame:
    frame = _ok(samples)
    return frame[(frame["metric"] == panel.metric) & (frame["quantity"] == panel_quantity(frame, panel))]


def _x_text(panel: Panel, x: int) -> str:
    if panel.x_unit == "B":
        return f"{x // 1024} KiB" if x >= 1024 and x % 1024 == 0 else f"{x} B"
    return f"{x} {panel.x_unit}"


def pairwise_statements(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per (quantity, mode, pair of platforms): the paper's kind of sentence, computed.

    Boot: the best case, i.e. the common x where the faster platform's advantage is largest.
    Response and memory: the largest common x. "Faster"/"less" is the platform with the lower mean there.
    """
    out = []
    for panel in PANELS:
        rows = _panel_rows(samples, panel)
        comparison = METRICS[panel.metric].comparison or _PLAIN
        for mode in sorted(rows["mode"].unique()):
            mode_rows = rows[rows["mode"] == mode]
            series = sorted({(str(p), str(lab)) for p, lab in zip(mode_rows["platform"], mode_rows["label"],
                                                                 strict=True)})
            for first, second in itertools.combinations(series, 2):
                xs = common_xs(mode_rows, [first, second])
                if not xs:
                    continue
                top = contrast(mode_rows, first, second, xs[-1])
                subject, reference = (first, second) if top.ratio <= 1 else (second, first)
                if comparison.best_case:
                    candidates = [contrast(mode_rows, subject, reference, x) for x in xs]
                    chosen = min(candidates, key=lambda c: (c.ratio, -c.x))
                    where = f"in the best case ({_x_text(panel, chosen.x)})"
                else:
                    chosen = contrast(mode_rows, subject, reference, xs[-1])
                    where = f"at {_x_text(panel, chosen.x)}"
                low, high = chosen.ratio_ci
                if comparison.measure == "times lower":
                    value, ci = 1.0 / chosen.ratio, (1.0 / high if high else math.nan, 1.0 / low if low else math.nan)
                else:
                    value, ci = _percent(chosen.ratio), (_percent(high), _percent(low))
                verb = comparison.verb
                text = (f"{subject[0]} {verb.format(v=fmt_num(value, 3))} {reference[0]} {where}"
                        f"{f' [{mode}]' if mode else ''}: 95% CI [{fmt_num(ci[0], 3)}, {fmt_num(ci[1], 3)}], "
                        f"{_sig(chosen.p_value)}, Cliff's delta {fmt_num(chosen.cliffs_delta, 2)}")
                out.append({
                    "metric": panel.metric, "quantity": panel_quantity(rows, panel), "mode": mode, "x": chosen.x,
                    "subject": subject[0], "reference": reference[0],
                    "measure": comparison.measure,
                    "value": value, "ci_low": ci[0], "ci_high": ci[1], "p_value": chosen.p_value,
                    "cliffs_delta": chosen.cliffs_delta, "n_subject": chosen.n_subject,
                    "n_reference": chosen.n_reference, "statement": text,
                })
    return pd.DataFrame(out, columns=["metric", "quantity", "mode", "x", "subject", "reference", "measure", "value",
                                      "ci_low", "ci_high", "p_value", "cliffs_delta", "n_subject", "n_reference",
                                      "statement"])


def _matches_for(matches: list[RowMatch], row: str) -> list[RowMatch]:
    return [m for m in matches if m.row == row]


def _who(match: RowMatch) -> str:
    return f"{match.platform} ({'stand-in' if match.stand_in else 'real'} {match.row})"


def _comparison_value(kind: str, ratio: float) -> float:
    if kind == "percent_lower":
        return _percent(ratio)
    if kind == "times_lower":
        return 1.0 / ratio if ratio else math.nan
    if kind == "times_higher":
        return ratio
    raise ValueError(f"unknown comparison kind {kind!r}")


def _comparison_ci(kind: str, ci: tuple[float, float]) -> tuple[float, float]:
    low, high = ci
    values = sorted(_comparison_value(kind, v) if not math.isnan(v) and v else math.nan for v in (low, high))
    return (values[0], values[1])


_KIND_TEXT = {"percent_lower": "% lower", "times_lower": "x lower", "times_higher": "x higher"}


def paper_comparisons(samples: pd.DataFrame, paper: PaperData) -> pd.DataFrame:
    """The paper's relative statements, recomputed where both rows were measured."""
    matches = match_rows(samples, paper)
    frame = _ok(samples)
    out = []
    for claim in paper.comparisons:
        rows = frame[(frame["metric"] == claim.metric) & (frame["quantity"] == claim.quantity)]
        base = {"id": claim.id, "section": claim.section, "paper says": claim.quote,
                "paper value": f"{claim.value:g}{_KIND_TEXT.get(claim.kind, '')}"}
        pairs = [(s, r) for s in _matches_for(matches, claim.subject) for r in _matches_for(matches, claim.reference)]
        if not pairs:
            missing = [row for row in (claim.subject, claim.reference) if not _matches_for(matches, row)]
            out.append({**base, "measured with": "", "x": "", "measured": "",
                        "95% CI": "", "p": math.nan, "verdict": f"not measured: no platform for {', '.join(missing)}"})
            continue
        for subject, reference in pairs:
            for mode in sorted(rows["mode"].unique()):
                mode_rows = rows[rows["mode"] == mode]
                keys = [(subject.platform, subject.label), (reference.platform, reference.label)]
                xs = common_xs(mode_rows, keys)
                who = f"{_who(subject)} vs {_who(reference)}" + (f" [{mode}]" if mode else "")
                if not xs:
                    out.append({**base, "measured with": who, "x": "", "measured": "", "95% CI": "", "p": math.nan,
                                "verdict": "not measured at a common x"})
                    continue
                if claim.x == "best":
                    chosen = min((contrast(mode_rows, keys[0], keys[1], x) for x in xs), key=lambda c: (c.ratio, -c.x))
                    x_text = f"{chosen.x} (best case)"
                else:
                    x_used = nearest_x(xs, int(claim.x))
                    chosen = contrast(mode_rows, keys[0], keys[1], x_used)
                    x_text = str(x_used) if x_used == claim.x else f"{x_used} (paper: {claim.x}; not measured)"
                value = _comparison_value(claim.kind, chosen.ratio)
                low, high = _comparison_ci(claim.kind, chosen.ratio_ci)
                same_direction = (chosen.ratio < 1) == (claim.kind in ("percent_lower", "times_lower"))
                if math.isnan(chosen.p_value) or chosen.p_value >= ALPHA:
                    verdict = "no significant difference here"
                elif same_direction:
                    verdict = "same direction, significant"
                else:
                    verdict = "opposite direction, significant"
                out.append({**base, "measured with": who, "x": x_text,
                            "measured": f"{fmt_num(value, 3)}{_KIND_TEXT[claim.kind]}",
                            "95% CI": f"[{fmt_num(low, 3)}, {fmt_num(high, 3)}]", "p": chosen.p_value,
                            "verdict": verdict})
    return pd.DataFrame(out, columns=["id", "section", "paper says", "paper value", "measured with", "x", "measured",
                                      "95% CI", "p", "verdict"])


def _relation_holds(relation: str, measured: float, published: float) -> str:
    if math.isnan(measured):
        return ""
    if relation == "<":
        return "holds here" if measured < published else "does not hold here"
    if relation == ">":
        return "holds here" if measured > published else "does not hold here"
    return f"measured / paper = {fmt_num(measured / published, 3)}"


def paper_figures(samples: pd.DataFrame, paper: PaperData, confidence: float = 0.95) -> pd.DataFrame:
    """The paper's absolute figures beside the measured mean (Student-t CI) of each matching platform."""
    from vnflab.stats.summary import summarize

    matches = match_rows(samples, paper)
    frame = _ok(samples)
    out = []
    for figure in paper.figures:
        base = {"id": figure.id, "section": figure.section, "paper says": figure.quote,
                "paper value": f"{figure.relation} {figure.value:g} {figure.unit}".replace("~ ", "~")}
        found = _matches_for(matches, figure.row)
        if not found:
            out.append({**base, "measured with": "", "x": "", "measured mean": "", "95% CI": "",
                        "comparison": f"not measured: no platform for {figure.row}"})
            continue
        rows = frame[(frame["metric"] == figure.metric) & (frame["quantity"] == figure.quantity)]
        for match in found:
            mine = rows[(rows["platform"] == match.platform) & (rows["label"] == match.label)]
            for mode in sorted(mine["mode"].unique()):
                mode_rows = mine[mine["mode"] == mode]
                xs = sorted({int(x) for x in mode_rows.loc[mode_rows["value"].notna(), "x"]})
                who = _who(match) + (f" [{mode}]" if mode else "")
                if not xs:
                    continue
                x_used = nearest_x(xs, figure.x)
                stats = summarize(mode_rows.loc[mode_rows["x"] == x_used, "value"], confidence)
                unit = "|".join(sorted({str(u) for u in mode_rows["unit"]}))
                x_text = str(x_used) if x_used == figure.x else f"{x_used} (paper: {figure.x}; not measured)"
                out.append({**base, "measured with": who, "x": x_text,
                            "measured mean": f"{fmt_num(stats.mean)} {unit}",
                            "95% CI": f"[{fmt_num(stats.ci_low)}, {fmt_num(stats.ci_high)}]",
                            "comparison": _relation_holds(figure.relation, stats.mean, figure.value)
                            + ("" if x_used == figure.x else " (at another x)")})
    return pd.DataFrame(out, columns=["id", "section", "paper says", "paper value", "measured with", "x",
                                      "measured mean", "95% CI", "comparison"])
