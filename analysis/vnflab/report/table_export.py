"""Write one table as CSV, Markdown and LaTeX with identical bytes for identical data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vnflab.markdown import markdown_table
from vnflab.report.latex import latex_table


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text with ``\\n`` line ends, creating the parent directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def write_table_files(frame: pd.DataFrame, stem: Path, caption: str) -> dict[str, Path]:
    """``stem.csv`` (full precision), ``stem.md`` and ``stem.tex``; returns ``{file name: path}``."""
    written = {
        f"{stem.name}.csv": write_text(stem.with_suffix(".csv"), frame.to_csv(index=False, lineterminator="\n")),
        f"{stem.name}.md": write_text(stem.with_suffix(".md"), markdown_table(frame) if len(frame.columns) else ""),
        f"{stem.name}.tex": write_text(stem.with_suffix(".tex"), latex_table(frame, caption)),
    }
    return written
