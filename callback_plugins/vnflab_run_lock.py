# Copyright: vnflab contributors
# Apache License 2.0
"""Take the lab's run lock in ansible-playbook's own process, so that it is held until the run (teardown
included) ends and dropped by the kernel if the run is killed."""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase

from vnflab.run import runlock

DOCUMENTATION = r"""
name: vnflab_run_lock
type: aggregate
short_description: Hold the vnflab run lock for the whole ansible-playbook run
description:
  - At the start of a play whose vars set C(vnflab_takes_run_lock=true) (the validate play of C(site.yml)),
    takes an exclusive C(flock) on the run lock (C($VNFLAB_RUN_LOCK), default C(/run/lock/vnflab-run.lock))
    without waiting, and keeps it until ansible-playbook exits. A descriptor inherited from C(scripts/lab.sh)
    or C(flock FILE ansible-playbook ...) is used when the parent took the lock for this run.
  - It never stops the run itself. It leaves the outcome in the environment of the task workers, and the
    C(vnflab_run_lock) action, the validate play's first task, fails there, naming the holder (PID, start
    time, run id), before anything changes.
requirements:
  - enabled in C(ansible.cfg) (C(callbacks_enabled = vnflab_run_lock)), as this repository's is
"""



class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "vnflab_run_lock"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock_fd: int | None = None

    def v2_playbook_on_play_start(self, play: Any) -> None:
        if self._lock_fd is not None or not _truthy(play.get_vars().get("vnflab_takes_run_lock")):
            return
        path = runlock.lock_path()
        try:
            self._lock_fd = runlock.take(path)
        except runlock.Refused as refused:
            state = {"held": False, "lock": str(path), "message": str(refused)}
        except OSError as exc:
            state = {"held": False, "lock": str(path), "message": f"cannot take the run lock {path}: {exc}"}
        else:
            state = {"held": True, "lock": str(path), "pid": os.getpid()}
        # Workers are forked from this process for every task, so they see this.
        os.environ[runlock.STATE_ENV] = json.dumps(state)


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "yes", "1")
