"""Host B's supervisor: a Host B that is a local network namespace never gets a systemd unit, whatever the
controller runs (its /run/systemd/system is the controller's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def choose(*extra: str) -> subprocess.CompletedProcess[str]:
    # The namespace does not exist: choosing must not need to reach it (it used to stat a path through it).
    inventory = "vnflab-no-such-ns,"
    return subprocess.run([PLAYBOOK, "-i", inventory, "tests/static/playbooks/host-b-supervisor.yml",
                           "-e", "ansible_connection=netns", "-e", "ansible_python_interpreter=/usr/bin/python3",
                           *extra], cwd=ROOT, env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
                          capture_output=True, text=True, check=False, timeout=120)


def test_a_namespace_host_b_gets_vnflab_supervise_without_being_reached() -> None:
    done = choose()
    assert done.returncode == 0, done.stdout[-3000:]
    assert "host_b_manager=vnflab_supervise" in done.stdout


@pytest.mark.parametrize("supervisor", ["systemd"])
def test_systemd_is_refused_for_a_namespace_host_b(supervisor: str) -> None:
    done = choose("-e", f"host_b_supervisor={supervisor}")
    assert done.returncode != 0
    assert "host_b_supervisor: systemd cannot supervise a Host B that is a network namespace" in \
        " ".join(done.stdout.split()), done.stdout[-3000:]
