"""The paper's published figures and comparisons (``data/paper.json``), and which measured platform is which row.

A measured platform maps to a paper row by its label: ``stand-in for <row>`` when the label says so,
else by its engine (``xen`` -> ClickOS, ``docker`` -> CoreOS, ``kvm`` -> OSv, from the data file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from vnflab.measure.schema import parse_label


@dataclass(frozen=True)
class PublishedFigure:
    """An absolute number the paper's text gives for one row, metric and x."""

    id: str
    row: str
    metric: str
    quantity: str
    x: int
    relation: str
    value: float
    unit: str
    section: str
    quote: str


@dataclass(frozen=True)
class PublishedComparison:
    """A relative statement of the paper: ``subject`` vs ``reference`` at ``x`` (an int or ``"best"``)."""

    id: str
    kind: str
    subject: str
    reference: str
    metric: str
    quantity: str
    x: int | str
    value: float
    section: str
    quote: str


@dataclass(frozen=True)
class PaperData:
    source: str
    row_engines: dict[str, str]
    figures: tuple[PublishedFigure, ...]
    comparisons: tuple[PublishedComparison, ...]
    remarks: tuple[str, ...]


@dataclass(frozen=True)
class RowMatch:
    """A measured platform standing for a paper row, and how it was matched."""

    platform: str
    label: str
    row: str
    stand_in: bool
    how: str


def load_paper(path: Path | None = None) -> PaperData:
    """Read ``data/paper.json`` (or ``path``)."""
    if path is None:
        text = resources.files("vnflab").joinpath("data/paper.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    raw: dict[str, Any] = json.loads(text)
    return PaperData(
        source=str(raw["source"]),
        row_engines={str(row): str(spec["engine"]) for row, spec in raw["rows"].items()},
        figures=tuple(PublishedFigure(**f) for f in raw["figures"]),
        comparisons=tuple(PublishedComparison(**c) for c in raw["comparisons"]),
        remarks=tuple(str(r) for r in raw.get("remarks", ())),
    )


def match_rows(samples: pd.DataFrame, paper: PaperData) -> list[RowMatch]:
    """Every measured (platform, label) that stands for a paper row, sorted by row then platform."""
    by_engine = {engine: row for row, engine in paper.row_engines.items()}
    matches = []
    for platform, label in sorted(samples[["platform", "label"]].drop_duplicates().itertuples(index=False, name=None)):
        parsed = parse_label(str(label))
        if parsed is None:
            continue
        if parsed.stands_in_for in paper.row_engines:
            matches.append(RowMatch(str(platform), str(label), parsed.stands_in_for, parsed.is_stand_in,
                                    f"label: stand-in for {parsed.stands_in_for}"))
        elif parsed.engine in by_engine:
            row = by_engine[parsed.engine]
            matches.append(RowMatch(str(platform), str(label), row, parsed.is_stand_in,
                                    f"engine {parsed.engine} ({'stand-in' if parsed.is_stand_in else 'real'})"))
    return sorted(matches, key=lambda m: (list(paper.row_engines).index(m.row), m.platform, m.label))
