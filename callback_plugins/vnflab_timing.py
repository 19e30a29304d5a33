# Copyright: vnflab contributors
# Apache License 2.0
"""Wall time of every task, per host, as JSON lines: where a run's time goes (scripts/bench.sh).

Enabled in ansible.cfg; it records only when ``VNFLAB_TIMING_FILE=<path>`` names a file. Each task's record
carries its play, role, task file and line, host, start and end (CLOCK_REALTIME seconds), status, and
``probe_s``: the probe modules' own wall time inside it (the measure action plugins' sum of the modules'
``module_s``). ``vnflab bench`` turns the file into phases.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: vnflab_timing
type: aggregate
short_description: Wall time of every task per host, as JSON lines, for vnflab's benchmark
description:
  - Writes one JSON object per playbook, play and finished task (per host) to the file named by the
    environment variable VNFLAB_TIMING_FILE (appended; nothing is written without it).
  - Task records include the probe modules' own time (probe_s) where a measure action plugin reports it.
requirements:
  - enabled in callbacks_enabled (ansible.cfg); VNFLAB_TIMING_FILE set
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "vnflab_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("VNFLAB_TIMING_FILE", "")
        self._play = ""
        self._play_file = ""
        self._play_tags: list[str] = []
        self._task_start: dict[str, float] = {}

    def _write(self, record: dict[str, Any]) -> None:
        if not self._path:
            return
        with open(self._path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._write({"event": "playbook", "file": str(getattr(playbook, "_file_name", "")), "time": time.time()})

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._play = play.get_name().strip()
        # The stage is the playbook the play comes from (playbooks/<stage>.yml): a play's tags come back in no
        # particular order (Ansible keeps them as a set).
        self._play_file = os.path.splitext(os.path.basename((play.get_path() or "").rsplit(":", 1)[0]))[0]
        self._play_tags = sorted(str(tag) for tag in (play.tags or []))
        self._write({"event": "play", "play": self._play, "play_file": self._play_file, "tags": self._play_tags,
                     "time": time.time()})

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._task_start[task._uuid] = time.time()

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._task_start[task._uuid] = time.time()

    def _task_done(self, result: Any, status: str) -> None:
        task = result._task
        started = self._task_start.get(task._uuid, time.time())
        payload = result._result if isinstance(result._result, dict) else {}
        probe_s = float(payload.get("probe_s") or 0.0)
        for item in payload.get("results", []) if isinstance(payload.get("results"), list) else []:
            if isinstance(item, dict):
                probe_s += float(item.get("probe_s") or 0.0)
        role = getattr(task, "_role", None)
        self._write({
            "event": "task", "play": self._play, "play_file": self._play_file, "play_tags": self._play_tags,
            "role": role.get_name() if role is not None else "",
            "task": task.get_name().strip(), "path": task.get_path() or "", "action": task.action,
            "host": result._host.get_name(), "start": started, "end": time.time(), "status": status,
            "probe_s": round(probe_s, 6),
        })

    def v2_runner_on_ok(self, result: Any) -> None:
        self._task_done(result, "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._task_done(result, "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._task_done(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._task_done(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._write({"event": "end", "time": time.time()})
