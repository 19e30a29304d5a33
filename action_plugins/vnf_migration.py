# Copyright: vnflab contributors
# Apache License 2.0
"""Controller side of vnf_migration: ``part: record`` journals one migration; the other parts run the module."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail

from vnflab.measure.ansible_record import KeyOf, RecordPartAction
from vnflab.measure.records import longest_gap_outside
from vnflab.metrics import MIGRATION


class ActionModule(RecordPartAction):
    """``stream`` and ``move`` run the module on their host (``stream`` asynchronously); ``record`` writes the
    migration's samples into the run's ``samples.jsonl`` on the controller, and runs no module."""

    METRIC = MIGRATION.name

    def record(self, args: dict[str, Any], key_of: KeyOf) -> tuple[list[dict[str, Any]], dict[str, Any]]:
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
        records = MIGRATION.build_records(key_of(stream.get("mode")), {"stream": stream, "move": move},
                                    int(args.get("repetition") or 0))
        return records, {"skipped_reason": move.get("skipped_reason"), "downtime_ms": stream.get("downtime_ms"),
                         "total_ms": move.get("total_ms")}
