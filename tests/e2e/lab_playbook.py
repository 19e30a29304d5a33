"""Run ansible-playbook from the repository for the lab tests, with the json callback; fail the test on error."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from lab_inventory import ROOT

PLAYBOOK = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "ansible-playbook")


def run_json_playbook(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """ansible-playbook ARGS (json stdout callback); the test fails with the tail of the output if it fails."""
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    done = subprocess.run([PLAYBOOK, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if done.returncode != 0:
        pytest.fail(f"ansible-playbook {' '.join(args)} failed:\n{done.stdout[-8000:]}\n{done.stderr[-3000:]}")
    return done
