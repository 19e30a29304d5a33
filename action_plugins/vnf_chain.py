# Copyright: vnflab contributors
# Apache License 2.0
"""Controller side of vnf_chain: ``part: record`` journals one chain; the other parts run the module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from vnflab.journal import Journal
from vnflab.records import PointKey, chain_records


class ActionModule(ActionBase):
    """``first_echo`` (asynchronously), ``rtt``, ``start`` and ``stop`` run the module on their host; ``record``
    writes the chain's samples into the run's ``samples.jsonl`` on the controller and runs no module."""

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
        length = int(args.get("length") or 0)
        if length < 1:
            raise AnsibleActionFail("length (k, the chain's length) must be at least 1")
        skipped_reason = args.get("skipped_reason") or (args.get("started") or {}).get("skipped_reason")
        echo, started, rtt = args.get("echo") or {}, args.get("started") or {}, args.get("rtt") or {}
        if not skipped_reason:
            for name, part in (("first_echo", echo), ("start", started), ("rtt", rtt)):
                if part.get("failed"):
                    raise AnsibleActionFail(f"the {name} part failed: {part.get('msg', 'no result')}")
        key = PointKey(run_id=str(journal["run_id"]), platform=str(journal["platform"]),
                       label=str(journal["label"]), metric="chain",
                       host=str((task_vars or {}).get("inventory_hostname", "")), mode=rtt.get("mode"))
        records = chain_records(key, length, {"echo": echo, "start": started, "rtt": rtt},
                                int(args.get("repetition") or 0), skipped_reason=skipped_reason)
        if self._task.check_mode:
            return {**result, "changed": False, "records": records}
        written = Journal(Path(journal["path"]) / "samples.jsonl").append(records)
        boot = next((r["value"] for r in records if r["quantity"] == "boot_chain_ms"), None)
        return {**result, "changed": False, "samples_written": written, "skipped_reason": skipped_reason,
                "boot_chain_ms": boot}
