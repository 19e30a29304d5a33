# Copyright: vnflab contributors
# Apache License 2.0
"""Controller side of vnf_migration: ``part: record`` journals one migration; the other parts run the module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from vnflab.journal import Journal
from vnflab.records import PointKey, longest_gap_outside, migration_records


class ActionModule(ActionBase):
    """``stream`` and ``move`` run the module on their host (``stream`` asynchronously); ``record`` writes the
    migration's samples into the run's ``samples.jsonl`` on the controller, and runs no module."""

    _supports_async = True
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if args.get("part") != "record":
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        journal = args.get("journal") or {}
        for key in ("path", "run_id", "platform", "label"):
            if not journal.get(key):
                raise AnsibleActionFail(f"journal.{key} is required")
        stream, move = args.get("stream") or {}, args.get("move") or {}
        if not move.get("skipped_reason"):
            for name, part in (("stream", stream), ("move", move)):
                if part.get("failed") or (name == "stream" and "downtime_ms" not in part):
                    raise AnsibleActionFail(f"the {name} part failed: {part.get('msg', 'no result')}")
            times = [int(part.get(name) or 0) for part, name in
                     ((stream, "start_ns"), (move, "start_ns"), (move, "end_ns"), (stream, "end_ns"))]
            if not times[0] < times[1] <= times[2] < times[3]:
                offsets = ", ".join(f"{(t - times[0]) / 1e9:.3f}" for t in times[1:])
                raise AnsibleActionFail(
                    "the migration did not run inside the stream (it must start after the stream's first request "
                    "and end before its last): the downtime is not covered (raise vnflab_migration.duration_s or "
                    f"lead_in_s); move start, move end, stream end, in s after the stream's start: {offsets}")
        if stream.get("gaps_ms") and not move.get("skipped_reason"):
            # the stream's noise floor: its longest gap away from the move (the downtime should stand out of it)
            stream = {**stream, "baseline_gap_ms": longest_gap_outside(
                stream["gaps_ms"], int(stream["start_ns"]), (int(move["start_ns"]), int(move["end_ns"])))}
        key = PointKey(run_id=str(journal["run_id"]), platform=str(journal["platform"]),
                       label=str(journal["label"]), metric="migration",
                       host=str((task_vars or {}).get("inventory_hostname", "")), mode=stream.get("mode"))
        records = migration_records(key, {"stream": stream, "move": move}, int(args.get("repetition") or 0))
        if self._task.check_mode:
            return {**result, "changed": False, "records": records}
        written = Journal(Path(journal["path"]) / "samples.jsonl").append(records)
        return {**result, "changed": False, "samples_written": written,
                "skipped_reason": move.get("skipped_reason"),
                "downtime_ms": stream.get("downtime_ms"), "total_ms": move.get("total_ms")}
