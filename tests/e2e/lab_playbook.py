"""Run ansible-playbook from the repository for the lab tests, with the json callback; fail the test on error.

Every lab playbook runs under the lab's run lock (analysis/vnflab/run/runlock.py), taken by this test process at its
first lab playbook and held until it ends, so the set-up, the checks and the teardown of a suite are one run to
the outside: a site.yml, scripts/lab.sh or Molecule run beside it is refused, and a suite started while one of
those runs fails at once, naming it. The playbooks inherit the descriptor (``pass_fds``) and use it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from lab_inventory import ROOT

from vnflab.run import runlock

PLAYBOOK = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "ansible-playbook")


def run_lock_fds() -> tuple[int, ...]:
    """The run lock's descriptor for pass_fds, taken at the first call; the test fails at once if another run holds
    it."""
    try:
        return (runlock.hold_for_process(),)
    except runlock.Refused as refused:
        pytest.fail(str(refused))


def run_json_playbook(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """ansible-playbook ARGS (json stdout callback); the test fails with the tail of the output if it fails."""
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    done = subprocess.run([PLAYBOOK, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, pass_fds=run_lock_fds())
    if done.returncode != 0:
        pytest.fail(f"ansible-playbook {' '.join(args)} failed:\n{done.stdout[-8000:]}\n{done.stderr[-3000:]}")
    return done
