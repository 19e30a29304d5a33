# Copyright: vnflab contributors
# Apache License 2.0
"""Controller side of vnf_chain: ``part: record`` journals one chain; the other parts run the module."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail

from vnflab.measure.ansible_record import KeyOf, RecordPartAction
from vnflab.metrics import CHAIN


class ActionModule(RecordPartAction):
    """``first_echo`` (asynchronously), ``rtt``, ``start`` and ``stop`` run the module on their host; ``record``
    writes the chain's samples into the run's ``samples.jsonl`` on the controller and runs no module."""

    METRIC = CHAIN.name

    def record(self, args: dict[str, Any], key_of: KeyOf) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        length = int(args.get("length") or 0)
        if length < 1:
            raise AnsibleActionFail("length (k, the chain's length) must be at least 1")
        skipped_reason = args.get("skipped_reason") or (args.get("started") or {}).get("skipped_reason")
        echo, started, rtt = args.get("echo") or {}, args.get("started") or {}, args.get("rtt") or {}
        if not skipped_reason:
            for name, part in (("first_echo", echo), ("start", started), ("rtt", rtt)):
                if part.get("failed"):
                    raise AnsibleActionFail(f"the {name} part failed: {part.get('msg', 'no result')}")
        records = CHAIN.build_records(key_of(rtt.get("mode")), length, {"echo": echo, "start": started, "rtt": rtt},
                                int(args.get("repetition") or 0), skipped_reason=skipped_reason)
        boot = next((r["value"] for r in records if r["quantity"] == "boot_chain_ms"), None)
        return records, {"skipped_reason": skipped_reason, "boot_chain_ms": boot}
