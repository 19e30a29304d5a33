"""The paper's Section V management requirements, the metrics tied to each and their weights (data file)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vnflab.stats.ranking import MetricRef


@dataclass(frozen=True)
class Requirement:
    """A management requirement (Sections III-A and V), its metrics and their weights."""

    section: str
    name: str
    metrics: tuple[MetricRef, ...]
    weights: dict[str, float]

    def weights_text(self) -> str:
        return ", ".join(f"{m.name} x{self.weights[m.metric]:g}" for m in self.metrics)


@dataclass(frozen=True)
class RequirementSpec:
    """What ``requirements.json`` holds."""

    note: str
    requirements: tuple[Requirement, ...]
    source: str


def load_requirements(path: Path | None = None) -> RequirementSpec:
    """Read the requirement weights (default: the package's ``data/requirements.json``).

    Raises ValueError on a weight that is negative, not a number, or names an unknown metric.
    """
    if path is None:
        text = resources.files("vnflab").joinpath("data/requirements.json").read_text(encoding="utf-8")
        source = "data/requirements.json (package default)"
    else:
        text = Path(path).read_text(encoding="utf-8")
        source = str(path)
    raw: dict[str, Any] = json.loads(text)
    refs = {key: MetricRef(str(spec["metric"]), str(spec["quantity"]), str(spec["name"]))
            for key, spec in raw["metrics"].items()}
    requirements = []
    for entry in raw["requirements"]:
        weights: dict[str, float] = {}
        for key, weight in entry["weights"].items():
            if key not in refs:
                raise ValueError(f"{source}: requirement {entry['name']!r}: unknown metric {key!r}")
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise ValueError(f"{source}: requirement {entry['name']!r}: weight of {key} must be a number >= 0")
            weights[refs[key].metric] = float(weight)
        metrics = tuple(refs[key] for key in entry["weights"] if entry["weights"][key] > 0)
        if not metrics:
            raise ValueError(f"{source}: requirement {entry['name']!r} has no metric with a weight > 0")
        requirements.append(Requirement(str(entry["section"]), str(entry["name"]), metrics, weights))
    return RequirementSpec(str(raw.get("note", "")), tuple(requirements), source)
