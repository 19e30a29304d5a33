"""Load a run directory into a tidy DataFrame (one row per sample, design.md columns).

The memory quantities derived per batch (:mod:`vnflab.measure.memory`: ``exact_used_mb`` and the sums it is
made of) are added as rows of their own; ``samples.jsonl`` itself is never changed.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vnflab.measure.journal import read_jsonl
from vnflab.measure.memory import derived_memory_records
from vnflab.measure.resume import cut_points, describe_point
from vnflab.measure.rundir import RunPaths
from vnflab.measure.schema import SAMPLE_FIELDS, validate_sample

_STR_FIELDS = ("run_id", "platform", "label", "metric", "quantity", "x_unit", "unit", "status", "host", "mode")
_INT_FIELDS = ("repetition", "instance", "seq")


class SampleWarning(UserWarning):
    """A sample broke the status/value agreement of the contract and was treated as lost."""


@dataclass(frozen=True)
class Run:
    """Everything the report needs, read from the run directory alone."""

    paths: RunPaths
    manifest: dict[str, Any]
    samples: pd.DataFrame
    points: pd.DataFrame
    torn_lines: dict[str, int]
    notes: tuple[str, ...]
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    batches: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per batch, probe fields as probe.<name>

    @property
    def run_id(self) -> str:
        return self.paths.run_id


def samples_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Tidy DataFrame from sample records: design.md columns in order, then any extra fields sorted.

    Lost samples have ``value`` NaN. ``x`` is int64, ``repetition``/``instance``/``seq`` nullable
    Int64, ``time`` a UTC timestamp (NaT if unparsable), text fields ``str`` with NaN for null.
    """
    extras = sorted({key for record in records for key in record} - set(SAMPLE_FIELDS))
    columns = [*SAMPLE_FIELDS, *extras]
    frame = pd.DataFrame.from_records(records, columns=columns) if records else pd.DataFrame(columns=columns)
    for name in _STR_FIELDS:
        frame[name] = frame[name].astype("str")  # pandas 3: None becomes NaN, not "None"
    frame["x"] = frame["x"].astype("int64")
    frame["value"] = pd.to_numeric(frame["value"], errors="raise").astype("float64")
    for name in _INT_FIELDS:
        frame[name] = pd.to_numeric(frame[name], errors="raise").astype("Int64")
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601", errors="coerce")
    return frame


def _normalise(records: list[dict[str, Any]], source: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Reject records that cannot be placed; make value and status agree (a disagreement = lost)."""
    notes: list[str] = []
    ok_without_value = 0
    lost_with_value = 0
    for number, record in enumerate(records, start=1):
        errors = validate_sample(record, consistency=False)
        if errors:
            raise ValueError(f"{source}: record {number}: " + "; ".join(errors))
        if record["status"] == "ok" and record["value"] is None:
            ok_without_value += 1
        if record["status"] == "lost" and record["value"] is not None:
            lost_with_value += 1
            record["value"] = None
    if ok_without_value:
        notes.append(f"{ok_without_value} sample(s) with status ok but a null value were counted as lost")
    if lost_with_value:
        notes.append(f"{lost_with_value} sample(s) with status lost carried a value; it was ignored")
    for note in notes:
        warnings.warn(f"{source}: {note}", SampleWarning, stacklevel=3)
    return records, notes


def load_run(run_dir: Path) -> Run:
    """Read ``samples.jsonl`` (required); ``manifest.json``, ``points.jsonl``, ``failures.jsonl`` and
    ``batches.jsonl`` when present."""
    paths = RunPaths(Path(run_dir))
    if not paths.samples.is_file():
        raise FileNotFoundError(f"no samples.jsonl in {paths.run_dir}")
    notes: list[str] = []
    torn: dict[str, int] = {}

    contents = read_jsonl(paths.samples)
    torn[paths.samples.name] = contents.torn_lines
    records, sample_notes = _normalise(contents.records, paths.samples)
    notes.extend(sample_notes)
    samples = samples_frame(records + derived_memory_records(records))

    point_records: list[dict[str, Any]] = []
    if paths.points.is_file():
        points_contents = read_jsonl(paths.points)
        torn[paths.points.name] = points_contents.torn_lines
        point_records = points_contents.records
        points = pd.DataFrame.from_records(point_records)
    else:
        points = pd.DataFrame()

    failures = pd.DataFrame()
    if paths.failures.is_file():
        failures_contents = read_jsonl(paths.failures)
        torn[paths.failures.name] = failures_contents.torn_lines
        failures = pd.DataFrame.from_records(failures_contents.records)

    batches = pd.DataFrame()
    if paths.batches.is_file():
        batches_contents = read_jsonl(paths.batches)
        torn[paths.batches.name] = batches_contents.torn_lines
        if batches_contents.records:
            batches = pd.json_normalize(batches_contents.records, max_level=1)

    if paths.manifest.is_file():
        manifest = json.loads(paths.manifest.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError(f"{paths.manifest}: expected a JSON object")
    else:
        manifest = {}
        notes.append("manifest.json is missing: versions, hosts and parameters are unknown")
    cut = cut_points(records, point_records)
    if cut:
        notes.append(f"{len(cut)} point(s) have samples but no summary in points.jsonl (the run was killed there, "
                     f"or the point failed): {', '.join(describe_point(identity) for identity in cut)}")
    for name, count in torn.items():
        if count:
            notes.append(f"{name}: skipped {count} torn last line(s) from an interrupted write")
    recorded_id = manifest.get("run_id")
    if recorded_id is not None and recorded_id != paths.run_id:
        notes.append(f"manifest run_id {recorded_id!r} differs from the directory name {paths.run_id!r}")
    return Run(paths=paths, manifest=manifest, samples=samples, points=points, torn_lines=torn, notes=tuple(notes),
               failures=failures, batches=batches)
