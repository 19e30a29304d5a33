"""Progress of a lab run from ansible-runner events and the run's journals (pure logic, no Ansible).

Runner events say which play and task runs (the measure tasks are ``Boot time of N instances``,
``Response time ...``, ``Memory ...``) and return, when a measure task's item ends, the ``points``
its action plugin journaled. Within one task the repetition loop runs on the controller and writes
``samples.jsonl`` and ``points.jsonl`` batch by batch, so the current point and repetition are read
from the journals' last lines. Remaining time = elapsed measuring time / points done x points left.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnflab.measure.rundir import RunPaths
from vnflab.metrics import METRICS

METRICS_BY_PROFILE_KEY: dict[str, str] = {
    metric.sweep_variable: name for name, metric in METRICS.items() if metric.sweep_variable is not None}


@dataclass(frozen=True)
class Server:
    """A VNF server to be measured: its platform and the largest instance count it accepts."""

    platform: str
    max_instances: int | None = None


def planned_points(profile: Mapping[str, Any], servers: list[Server], metrics: set[str] | None = None) -> int:
    """Points the run will measure: every profile x per metric per server (instance counts capped per server)."""
    total = 0
    for key, metric in METRICS_BY_PROFILE_KEY.items():
        if metrics and metric not in metrics:
            continue
        xs = [int(x) for x in profile.get(key, [])]
        for server in servers:
            capped = METRICS[metric].capped_by_instances and server.max_instances is not None
            total += len([x for x in xs if not capped or x <= int(server.max_instances or 0)])
    return total


def last_record(path: Path, chunk: int = 8192) -> dict[str, Any] | None:
    """The last complete JSON line of a journal (``None`` when there is none yet)."""
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - chunk))
        tail = handle.read().decode("utf-8", errors="replace")
    for line in reversed(tail.splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            return record
    return None


def count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.endswith(b"\n"))


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class Progress:
    """Folds runner events and journal reads into one status line."""

    run_dir: Path
    planned: int
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    measuring_since: float | None = None
    play: str = ""
    task: str = ""
    host: str = ""
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def on_event(self, event: Mapping[str, Any]) -> None:
        """Take one ansible-runner event."""
        kind = str(event.get("event", ""))
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self.play = str(data.get("play", ""))
        elif kind == "playbook_on_task_start":
            self.task = str(data.get("task", ""))
        elif kind in ("runner_on_start", "runner_on_ok", "runner_item_on_ok"):
            self.host = str(data.get("host", self.host))
            res = data.get("res") or {}
            if self.measuring_since is None and isinstance(res, Mapping) and "points" in res:
                self.measuring_since = self.started
        elif kind in ("runner_on_failed", "runner_item_on_failed", "runner_on_unreachable"):
            if not data.get("ignore_errors"):
                res = data.get("res") or {}
                message = res.get("msg", "") if isinstance(res, Mapping) else ""
                self.failures.append(f"{data.get('host', '?')}: {data.get('task', self.task)}: {message}".strip())

    def points_done(self) -> int:
        return count_lines(RunPaths(self.run_dir).points)

    def status(self) -> str:
        """One line: stage, current platform/metric/point/repetition, points done, elapsed, remaining."""
        now = self.clock()
        elapsed = now - self.started
        sample = last_record(RunPaths(self.run_dir).samples)
        done = self.points_done()
        if sample is not None and self.measuring_since is None:
            self.measuring_since = now
        parts = [f"[{format_seconds(elapsed)}]"]
        if sample is not None and self.task.lower().startswith(("boot", "response", "memory")):
            mode = f" {sample['mode']}" if sample.get("mode") else ""
            parts.append(f"{sample.get('platform')} {sample.get('metric')}{mode} x={sample.get('x')} "
                         f"{sample.get('x_unit', '')} repetition {int(sample.get('repetition') or 0) + 1}")
        else:
            parts.append(f"{self.task or self.play or 'starting'}" + (f" ({self.host})" if self.host else ""))
        parts.append(f"points {done}/{self.planned}")
        if done and self.measuring_since is not None and self.planned > done:
            per_point = (now - self.measuring_since) / done
            parts.append(f"~{format_seconds(per_point * (self.planned - done))} of measuring left (estimate)")
        return " | ".join(parts)
