"""Deterministic LaTeX (booktabs) rendering of DataFrames, for pasting tables into papers."""

from __future__ import annotations

import math

import pandas as pd

from vnflab.markdown import fmt_num

_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "µ": r"\textmu{}",
    "±": r"$\pm$", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$", "…": r"\dots{}", "`": "",
}


def escape(text: str) -> str:
    """``text`` with LaTeX special characters escaped (backticks of Markdown code spans dropped)."""
    return "".join(_SPECIAL.get(char, char) for char in text)


def _cell(value: object) -> str:
    if isinstance(value, str):
        return escape(value)
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "--"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return fmt_num(value)
    return escape(str(value))


def latex_table(frame: pd.DataFrame, caption: str | None = None) -> str:
    """A ``tabular`` with booktabs rules (numbers right-aligned); wrapped in ``table`` with a caption."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(frame[c]) else "l" for c in frame.columns)
    lines = [r"\begin{tabular}{" + align + "}", r"\toprule",
             " & ".join(escape(str(c)) for c in frame.columns) + r" \\", r"\midrule"]
    for row in frame.itertuples(index=False, name=None):
        lines.append(" & ".join(_cell(v.item() if hasattr(v, "item") else v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption is None:
        return "\n".join(lines) + "\n"
    return "\n".join([r"\begin{table}", r"\centering", r"\caption{" + escape(caption) + "}", *lines,
                      r"\end{table}"]) + "\n"
