"""Controller side of the probe modules run in parts (vnf_migration, vnf_chain): every part but ``record`` runs the
module on its host (``async`` allowed); ``record`` builds the samples from the other parts' results and journals
them in the run's ``samples.jsonl``, running no module."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from vnflab.measure.journal import Journal
from vnflab.measure.records import PointKey
from vnflab.measure.rundir import RunPaths

JOURNAL_KEYS = ("path", "run_id", "platform", "label")
#: The point's key for a probe mode (the task's journal, metric and host filled in).
KeyOf = Callable[[str | None], PointKey]


def checked_journal(journal: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The task's ``journal`` argument, every key the records need present."""
    journal = journal or {}
    for key in JOURNAL_KEYS:
        if not journal.get(key):
            raise AnsibleActionFail(f"journal.{key} is required")
    return journal


class RecordPartAction(ActionBase):
    """Subclasses name their ``METRIC`` and build the part ``record``'s samples in :meth:`record`."""

    _supports_async = True
    _supports_check_mode = True
    METRIC = ""

    def record(self, args: dict[str, Any], key_of: KeyOf) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The samples of ``part: record`` and what the task returns beside them; ``key_of(mode)`` gives the
        point's key."""
        raise NotImplementedError

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if args.get("part") != "record":
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        journal = checked_journal(args.get("journal"))
        host = str((task_vars or {}).get("inventory_hostname", ""))

        def key_of(mode: str | None) -> PointKey:
            return PointKey(run_id=str(journal["run_id"]), platform=str(journal["platform"]),
                            label=str(journal["label"]), metric=self.METRIC, host=host, mode=mode)

        records, returned = self.record(args, key_of)
        if self._task.check_mode:
            return {**result, "changed": False, "records": records}
        written = Journal(RunPaths(Path(journal["path"])).samples).append(records)
        return {**result, "changed": False, "samples_written": written, **returned}
