"""The repository's modules and action plugins outside ansible: loaded from their files, an action plugin built on
mock task, connection and play context, a journal's lines read back. Shared by the tests of the probe modules, the
measuring loop and resume."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest.mock import MagicMock

from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from testkit import load_file

from vnflab.measure.ansible_measure import MeasureAction

LABEL = "docker/debian12-iptables (native, stand-in for CoreOS)"
TASK_VARS = {"inventory_hostname": "host-a"}


def load_action(name: str) -> ModuleType:
    """action_plugins/<name>.py."""
    return load_file("action_plugins", name)


def make_action(module: ModuleType, action: str, args: dict[str, Any], check_mode: bool = False) -> MeasureAction:
    """The module's ActionModule for one task with ``args``; its ``_execute_module`` is the test's to replace."""
    task = MagicMock(Task)
    task.async_val = False
    task.check_mode = check_mode
    task.args = args
    task.action = action
    connection = MagicMock()
    connection._shell.tmpdir = "/tmp/remote"
    plugin = module.ActionModule(task, connection, MagicMock(PlayContext), loader=MagicMock(), templar=MagicMock(),
                                 shared_loader_obj=None)
    assert isinstance(plugin, MeasureAction)
    return plugin


def lines(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL journal; none when it does not exist."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
