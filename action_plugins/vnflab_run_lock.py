# Copyright: vnflab contributors
# Apache License 2.0
"""Action vnflab_run_lock: fail unless this ansible-playbook holds the lab's run lock; record the run id."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

from vnflab.run import runlock

DOCUMENTATION = r"""
module: vnflab_run_lock
short_description: Check that this run holds the vnflab run lock, and record its run id in the lock
description:
  - The C(vnflab_run_lock) callback plugin takes the run lock in ansible-playbook's own process at the start of
    the validate play. This action, run on the controller as that play's first task, fails when it could not,
    naming the run that holds it (PID, command, start time, run id), before anything changes.
  - With I(run_id), writes the run id into the lock's record, so that a refused run can name it.
options:
  run_id:
    description: The run id to record (C(results/<run-id>)).
    type: str
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Take the run lock
  vnflab_run_lock:

- name: Name this run in the lock
  vnflab_run_lock:
    run_id: "{{ vnflab_run_id }}"
"""

RETURN = r"""
lock:
  description: Path of the lock file.
  returned: always
  type: str
  sample: /run/lock/vnflab-run.lock
holder_pid:
  description: PID of the ansible-playbook process that holds the lock.
  returned: success
  type: int
  sample: 4242
"""



class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("run_id",))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        result["changed"] = False
        raw = os.environ.get(runlock.STATE_ENV)
        if not raw:
            return {**result, "failed": True, "lock": str(runlock.lock_path()),
                    "msg": "the run lock was not taken: enable the vnflab_run_lock callback (ansible.cfg: "
                           "callbacks_enabled = vnflab_run_lock) and set vnflab_takes_run_lock: true on the first play"}
        state = json.loads(raw)
        result["lock"] = state["lock"]
        if not state["held"]:
            return {**result, "failed": True, "msg": state["message"]}
        run_id = self._task.args.get("run_id")
        if run_id and not self._play_context.check_mode:
            runlock.write_record(Path(state["lock"]), run_id=str(run_id))
        return {**result, "holder_pid": state["pid"]}
