"""Deterministic Markdown rendering of numbers and DataFrames (no tabulate dependency)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

MISSING = "n/a"


def fmt_num(value: object, significant: int = 4) -> str:
    """A number with ``significant`` digits in plain (never scientific) notation; NaN -> ``n/a``."""
    if value is None or value is pd.NA:
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number):
        return MISSING
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if number.is_integer() and abs(number) >= 10 ** (significant - 1):
        return f"{number:.0f}"
    if number == 0:
        return "0"
    exponent = math.floor(math.log10(abs(number)))
    decimals = max(0, significant - 1 - exponent)
    return f"{number:.{decimals}f}"


def _cell(value: object) -> str:
    if isinstance(value, str):
        return value.replace("|", "\\|").replace("\n", " ")
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, int | float):
        return fmt_num(value)
    return str(value).replace("|", "\\|")


def markdown_table(frame: pd.DataFrame, headers: Sequence[str] | None = None) -> str:
    """GitHub-flavoured Markdown table of ``frame`` (index ignored); numbers via :func:`fmt_num`."""
    titles = list(headers) if headers is not None else [str(c) for c in frame.columns]
    if len(titles) != len(frame.columns):
        raise ValueError("headers must match the frame's columns")
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = [
        "| " + " | ".join(_cell(t) for t in titles) + " |",
        "|" + "|".join("---:" if is_num else "---" for is_num in numeric) + "|",
    ]
    for row in frame.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(_cell(v.item() if hasattr(v, "item") else v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def fmt_p(value: float) -> str:
    """A p-value: two significant digits, scientific below 0.001 (``n/a`` for NaN)."""
    if math.isnan(value):
        return MISSING
    return f"{value:.2g}" if value < 0.001 else fmt_num(value, 2)
