"""Resume a killed run: what the journals of a run directory already hold for one measurement point.

Running the lab again with ``vnflab_run_dir`` set to an existing run directory (``vnflab run --resume ID``)
measures only what is missing. For each point (run, platform, label, metric, host, mode, x) the measuring
loop (:mod:`vnflab.measure.ansible_measure`) asks :func:`read_point_progress`:

- a point with a line in ``points.jsonl`` finished: it is skipped, and its summary is returned as it was;
- a point with samples but no ``points.jsonl`` line was cut by the kill: its batches stay as journaled
  (every complete line of a batch the kill cut too), its next batch takes the next repetition number, and
  the stopping rule starts from its journaled values (the watched quantity of :mod:`vnflab.metrics`), its
  failed batches (``failures.jsonl``) and its time so far (first to last journaled sample of the point, a
  lower bound: the batch that was running when the run was killed is not counted);
- any other point is measured from repetition 0.

So no repetition number repeats within a point and no batch is measured twice. The journals are only read;
the next append repairs a torn last line (:class:`vnflab.measure.journal.Journal`).

Stdlib only (plus :mod:`vnflab.metrics` for the watched quantity), read by the action plugins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vnflab.measure.records import PointKey
from vnflab.measure.rundir import RunPaths
from vnflab.metrics import METRICS

#: The fields that name one point in samples.jsonl, points.jsonl and failures.jsonl.
POINT_FIELDS = ("run_id", "platform", "label", "metric", "host", "mode", "x", "x_unit")


@dataclass(frozen=True)
class PointProgress:
    """What a run directory already holds for one point."""

    finished: dict[str, Any] | None = None  # its points.jsonl line, when the point finished
    next_repetition: int = 0  # one more than the highest repetition journaled (0: none)
    values: list[float | None] = field(default_factory=list)  # watched values of the journaled batches, in order
    quantity: str = ""  # the watched quantity those values are of ("" when none)
    failed_batches: int = 0  # failures.jsonl lines of the point
    elapsed_s: float = 0.0  # first to last journaled sample of the point

    @property
    def batches(self) -> int:
        """Batches journaled (repetitions 0 .. next_repetition - 1)."""
        return self.next_repetition


def point_identity(key: PointKey, x: int, x_unit: str) -> dict[str, Any]:
    return {"run_id": key.run_id, "platform": key.platform, "label": key.label, "metric": key.metric,
            "host": key.host, "mode": key.mode, "x": int(x), "x_unit": x_unit}


def matching_records(path: Path, identity: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The complete lines of a journal whose fields equal ``identity`` (a point's, or fewer fields: every point of
    a metric on a host, :mod:`vnflab.measure.budget`). A torn last line is skipped; a line is parsed only when its bytes
    hold the identity's platform, metric and (when it names one) x, so a long journal is read quickly."""
    if not path.is_file():
        return
    needles = [json.dumps(identity[name], ensure_ascii=False).encode("utf-8") for name in ("platform", "metric")]
    x_field = (re.compile(rb'"x"\s*:\s*' + str(int(identity["x"])).encode() + rb"\s*[,}]")  # 5 is not 50
               if "x" in identity else None)
    with path.open("rb") as handle:
        for line in handle:
            if (not line.endswith(b"\n") or not all(needle in line for needle in needles)
                    or (x_field is not None and not x_field.search(line))):
                continue
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue  # a damaged line: the report's reader names it; it cannot belong to the point here
            if isinstance(record, dict) and all(record.get(name) == value for name, value in identity.items()):
                yield record


def _time(record: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(record.get("time", "")).replace("Z", "+00:00"))
    except ValueError:
        return None


def _watched(metric: str, records: list[dict[str, Any]]) -> tuple[str, dict[int, list[float | None]]]:
    """The watched quantity and its values by repetition, as the loop accumulated them (Metric.watched_values)."""
    quantity, source = METRICS[metric].watched_records(records)
    by_repetition: dict[int, list[float | None]] = {}
    for record in sorted(source, key=lambda r: (int(r["repetition"]), r.get("seq") or 0)):
        if record.get("quantity") == quantity:
            value = record.get("value")
            by_repetition.setdefault(int(record["repetition"]), []).append(None if value is None else float(value))
    return quantity, by_repetition


def read_point_progress(run_dir: Path, key: PointKey, x: int, x_unit: str) -> PointProgress:
    """What ``run_dir``'s journals hold for the point ``key`` at ``x``."""
    run_dir = Path(run_dir)
    identity = point_identity(key, x, x_unit)
    paths = RunPaths(run_dir)
    finished = next(iter(reversed(list(matching_records(paths.points, identity)))), None)
    samples = list(matching_records(paths.samples, identity))
    failed = sum(1 for _ in matching_records(paths.failures, identity))
    repetitions = [int(r["repetition"]) for r in samples if isinstance(r.get("repetition"), int)]
    if not repetitions:
        return PointProgress(finished=finished, failed_batches=failed)
    quantity, by_repetition = _watched(key.metric, samples)
    values = [value for repetition in sorted(by_repetition) for value in by_repetition[repetition]]
    times = sorted(t for t in (_time(r) for r in samples) if t is not None)
    elapsed = (times[-1] - times[0]).total_seconds() if times else 0.0
    return PointProgress(finished=finished, next_repetition=max(repetitions) + 1, values=values,
                         quantity=quantity, failed_batches=failed, elapsed_s=round(max(elapsed, 0.0), 6))


def _identity_of(record: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(record.get(name) for name in POINT_FIELDS)


def cut_points(samples: list[dict[str, Any]], points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points that have samples but no ``points.jsonl`` line (the run was killed there, or the point
    failed), each as its identity, in the order their first sample was journaled."""
    finished = {_identity_of(point) for point in points}
    cut: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in samples:
        identity = _identity_of(record)
        if identity not in finished and identity not in cut:
            cut[identity] = dict(zip(POINT_FIELDS, identity, strict=True))
    return list(cut.values())


def describe_point(identity: Mapping[str, Any]) -> str:
    """``docker boot x=2 instances on host-a`` (the mode of a response point after the size)."""
    mode = f" {identity['mode']}" if identity.get("mode") else ""
    return (f"{identity.get('platform')} {identity.get('metric')} x={identity.get('x')} "
            f"{identity.get('x_unit')}{mode} on {identity.get('host')}")


#: Run parameters that decide which points a run has and how each is measured: a resumed run keeps them.
SWEEP_PARAMETERS = ("profile", "boot_counts", "memory_counts", "response_sizes", "response_mode", "repeat")


def _as_measured(name: str, value: Any) -> Any:
    """A sweep parameter as the measuring loop applies it: ``batch: 1`` of a metric whose batch is one start of its
    instances, which older profiles gave and the loop never read, is the rule without it."""
    if name != "repeat" or not isinstance(value, Mapping):
        return value
    return {metric: {key: v for key, v in rule.items()
                     if not (key == "batch" and str(v) == "1" and metric in METRICS
                             and METRICS[metric].batch_samples is None)}
            if isinstance(rule, Mapping) else rule for metric, rule in value.items()}


def changed_parameters(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The sweep parameters a resumed run would change (its samples would pool two different sweeps)."""
    return [name for name in SWEEP_PARAMETERS
            if name in before and _as_measured(name, before.get(name)) != _as_measured(name, now.get(name))]


def _records(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a journal (a torn last line is skipped; the next append repairs it)."""
    if not path.is_file():
        return []
    out = []
    with path.open("rb") as handle:
        for line in handle:
            if line.endswith(b"\n") and line.strip():
                record = json.loads(line)
                if isinstance(record, dict):
                    out.append(record)
    return out


class ResumeRefused(ValueError):
    """The run directory cannot be resumed as asked."""


def resume_run(run_dir: Path, parameters: Mapping[str, Any] | None = None) -> str:
    """Check that ``run_dir`` can be resumed with ``parameters`` (the new run's, when given), record the resume
    in ``manifest.d/resume-<time>.json`` and return a sentence saying what is kept and what is left."""
    from vnflab.measure.journal import utc_timestamp

    paths = RunPaths(Path(run_dir))
    if not paths.run_dir.is_dir():
        raise ResumeRefused(f"{paths.run_dir}: no such run directory to resume")
    recorded = paths.manifest_parts / "parameters.json"
    if parameters is not None and recorded.is_file():
        before = json.loads(recorded.read_text(encoding="utf-8")).get("parameters", {})
        changed = changed_parameters(before, parameters)
        if changed:
            differences = "; ".join(f"{name}: {before.get(name)!r} then, {parameters.get(name)!r} now"
                                    for name in changed)
            raise ResumeRefused(f"{paths.run_dir} was measured with other {', '.join(changed)} ({differences}): "
                                "resuming would pool two sweeps; use the same profile and variables, or start a new "
                                "run")
    samples = _records(paths.samples)
    points = _records(paths.points)
    cut = cut_points(samples, points)
    now = utc_timestamp()
    part = paths.manifest_parts / f"resume-{now.replace(':', '').replace('-', '').replace('.', '')}.json"
    part.parent.mkdir(exist_ok=True)
    record = {"finished_points": len(points), "samples": len(samples),
              "cut_points": [describe_point(identity) for identity in cut]}
    part.write_text(json.dumps({"resumes": {now: record}}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return (f"resuming {paths.run_id}: {len(points)} finished point(s) kept and skipped, {len(samples)} sample(s) "
            f"kept; {len(cut)} point(s) cut by the kill continue from their next repetition"
            + (f" ({', '.join(record['cut_points'])})" if cut else ""))
