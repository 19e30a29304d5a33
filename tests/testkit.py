"""What tests in several folders share (this folder is on pytest's path, beside the root conftest): a repository
file loaded as a module, and a kill -9 of an ansible-playbook run with the wait for the workers it leaves."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent


def load_file(directory: str, name: str) -> ModuleType:
    """<directory>/<name>.py of the repository (library, action_plugins, filter_plugins) as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"vnflab_{directory}_{name}", REPO / directory / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def processes_naming(marker: str) -> list[int]:
    """PIDs whose command line holds ``marker`` (a run's unique results directory or playbook): ansible-playbook and
    the workers it forked, which a kill -9 of it leaves running."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def kill_run(proc: subprocess.Popen[bytes], marker: str, timeout_s: float = 600, poll_s: float = 0.5) -> float:
    """``kill -9`` ansible-playbook itself, as an operator or the OOM killer would, then wait until the workers it
    left end (each stops before its next batch); return how long they took."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed = time.monotonic()
    while processes_naming(marker):
        if time.monotonic() - killed > timeout_s:
            raise AssertionError(f"workers of the killed run still alive after {timeout_s} s: "
                                 f"{processes_naming(marker)}")
        time.sleep(poll_s)
    return time.monotonic() - killed
