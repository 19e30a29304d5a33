"""Where a run's time goes: phases, Ansible's share and per-point times, from the vnflab_timing callback.

``scripts/bench.sh`` runs the main job with the ``vnflab_timing`` callback (callback_plugins/) writing one
JSON line per finished task and host; this module turns that file (and the run directory's points.jsonl)
into ``bench/<date>.json`` and a table. A phase's wall time is the union of its tasks' intervals (hosts run
in parallel within a play, so summed task times would overcount). Ansible's share is what the measuring
tasks took beyond their probe modules' own time (``probe_s``), over the run's wall time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vnflab.measure.rundir import RunPaths

# Task paths that are image or unikernel builds, whichever play runs them (first match wins).
BUILD_PHASES: Sequence[tuple[str, str]] = (
    (r"roles/emulated_server/", "build: emulated servers (image, boot)"),
    (r"roles/platform_xen/tasks/boot\.yml", "build: Xen install and reboot"),
    (r"roles/platform_xen/tasks/clickos-build\.yml", "build: ClickOS and clickos-ctl"),
    (r"roles/platform_kvm/tasks/osv\.yml", "build: OSv and Capstan"),
    (r"roles/platform_(kvm|xen)/tasks/(linux-pv|microvm)\.yml", "build: Linux guest images"),
)
MEASURE_STAGES = ("boot", "response", "memory")
PER_HOST_STAGES = ("provision", "proxy", *MEASURE_STAGES)


@dataclass(frozen=True)
class TaskTime:
    stage: str
    phase: str
    host: str
    start: float
    end: float
    probe_s: float

    @property
    def wall_s(self) -> float:
        return max(0.0, self.end - self.start)


def read_timing(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            records.append(json.loads(line))
    return records


def stage_of(record: Mapping[str, Any]) -> str:
    """The stage of a task: the playbook its play comes from (playbooks/boot.yml -> boot; site.yml imports one per
    stage). Plays defined elsewhere count under their file's name."""
    return str(record.get("play_file") or "unknown")


def phase_of(record: Mapping[str, Any]) -> str:
    """The phase a task counts in: a build by its task file, else its stage (per host where hosts differ)."""
    path = str(record.get("path", ""))
    for pattern, phase in BUILD_PHASES:
        if re.search(pattern, path):
            return phase
    stage = stage_of(record)
    if stage in PER_HOST_STAGES:
        return f"{stage}: {record.get('host', '')}"
    return stage


def task_times(records: Iterable[Mapping[str, Any]]) -> list[TaskTime]:
    return [TaskTime(stage=stage_of(r), phase=phase_of(r), host=str(r.get("host", "")), start=float(r["start"]),
                     end=float(r["end"]), probe_s=float(r.get("probe_s") or 0.0))
            for r in records if r.get("event") == "task"]


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals."""
    total = 0.0
    current: tuple[float, float] | None = None
    for start, end in sorted(intervals):
        if current is None or start > current[1]:
            if current is not None:
                total += current[1] - current[0]
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current is not None:
        total += current[1] - current[0]
    return total


def point_times(points: Iterable[Mapping[str, Any]], tasks: Sequence[TaskTime]) -> list[dict[str, Any]]:
    """Wall time of each measured point: from the previous point of its task (or the task's start) to its end."""
    from datetime import datetime

    starts = {(t.stage, t.host): t.start for t in tasks if t.stage in MEASURE_STAGES and t.probe_s > 0}
    previous: dict[tuple[str, str], float] = {}
    rows = []
    for point in sorted(points, key=lambda p: str(p.get("time", ""))):
        stamp = str(point.get("time", ""))
        if not stamp:
            continue
        end = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        key = (str(point.get("metric")), str(point.get("host")))
        begin = previous.get(key, starts.get(key, end))
        previous[key] = end
        rows.append({"platform": point.get("platform"), "host": point.get("host"), "metric": point.get("metric"),
                     "x": point.get("x"), "mode": point.get("mode"), "batches": point.get("batches"),
                     "reason": point.get("reason"), "wall_s": round(max(0.0, end - begin), 3)})
    return rows


def summarize(records: Sequence[Mapping[str, Any]], points: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    tasks = task_times(records)
    if not tasks:
        raise ValueError("no task records: did the run have VNFLAB_TIMING_FILE set "
                         "(the vnflab_timing callback, ansible.cfg)?")
    stamps = [float(r["time"]) for r in records if r.get("event") in ("playbook", "play", "end") and "time" in r]
    begin = min([t.start for t in tasks] + stamps)
    end = max([t.end for t in tasks] + stamps)
    wall = end - begin
    phases: dict[str, list[tuple[float, float]]] = {}
    first_seen: dict[str, float] = {}
    for t in tasks:
        phases.setdefault(t.phase, []).append((t.start, t.end))
        first_seen[t.phase] = min(first_seen.get(t.phase, t.start), t.start)
    measuring = [t for t in tasks if t.stage in MEASURE_STAGES and t.probe_s > 0]
    probe_s = sum(t.probe_s for t in measuring)
    ansible_in_measuring = sum(max(0.0, t.wall_s - t.probe_s) for t in measuring)
    return {
        "wall_s": round(wall, 3),
        "phases": [{"phase": name, "wall_s": round(union_length(phases[name]), 3)}
                   for name in sorted(phases, key=lambda n: first_seen[n])],
        "probe_s": round(probe_s, 3),
        "outside_probes_s": round(wall - probe_s, 3),
        "ansible_in_measurement_s": round(ansible_in_measuring, 3),
        "ansible_share": round(ansible_in_measuring / wall, 4) if wall > 0 else None,
        "points": point_times(points, tasks),
    }


def render_table(summary: Mapping[str, Any]) -> str:
    lines = ["| phase | wall (s) |", "|---|---:|"]
    lines += [f"| {p['phase']} | {p['wall_s']:.1f} |" for p in summary["phases"]]
    lines.append(f"| **run** | **{summary['wall_s']:.1f}** |")
    share = summary.get("ansible_share")
    lines += ["", f"Inside the probe modules: {summary['probe_s']:.1f} s; "
                  f"outside them: {summary['outside_probes_s']:.1f} s.",
              f"Ansible's own time in the measuring tasks: {summary['ansible_in_measurement_s']:.1f} s"
              + (f" ({100 * share:.1f}% of the run)." if share is not None else ".")]
    return "\n".join(lines) + "\n"


def read_points(run_dir: Path | None) -> list[dict[str, Any]]:
    if run_dir is None or not RunPaths(run_dir).points.is_file():
        return []
    return read_timing(RunPaths(run_dir).points)
