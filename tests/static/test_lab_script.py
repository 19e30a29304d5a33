"""scripts/lab.sh: the teardown gets the user's inventory (never their tags), run with a fake ansible-playbook."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def lab_sh_copy(tmp_path: Path) -> Path:
    """scripts/lab.sh and the run lock's helper in a scratch checkout."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "lab.sh", tmp_path / "scripts" / "lab.sh")
    shutil.copy(ROOT / "scripts" / "run-lock.sh", tmp_path / "scripts" / "run-lock.sh")
    (tmp_path / "analysis" / "vnflab" / "run").mkdir(parents=True)
    shutil.copy(ROOT / "analysis" / "vnflab" / "run" / "runlock.py",
                tmp_path / "analysis" / "vnflab" / "run" / "runlock.py")
    return tmp_path / "scripts" / "lab.sh"


def run_lab_sh(tmp_path: Path, *args: str) -> list[str]:
    lab_sh = lab_sh_copy(tmp_path)
    (tmp_path / "scripts" / "install.sh").write_text("exit 0\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "activate").write_text(f'PATH="{bin_dir}:$PATH"\n')
    log = tmp_path / "calls"
    fake = bin_dir / "ansible-playbook"
    fake.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >> "{log}"\n')
    fake.chmod(0o755)
    done = subprocess.run(["bash", str(lab_sh), *args], capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "VNFLAB_RUN_LOCK": str(tmp_path / "run.lock")})
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines()


@pytest.mark.parametrize(("args", "teardown"), [
    ((), "site.yml --tags teardown"),
    (("-i", "inventory/example-real", "--tags", "response"), "site.yml -i inventory/example-real --tags teardown"),
    (("--inventory=inv/x", "-e", "vnflab_profile=quick"), "site.yml --inventory=inv/x --tags teardown"),
    (("-iinv/y",), "site.yml -iinv/y --tags teardown"),
])
def test_teardown_gets_the_users_inventory_and_nothing_else(tmp_path: Path, args: tuple[str, ...],
                                                            teardown: str) -> None:
    calls = run_lab_sh(tmp_path, *args)
    assert calls == [" ".join(("site.yml", *args)), teardown]


def test_lab_sh_is_refused_before_installing_anything_while_another_run_holds_the_lock(tmp_path: Path) -> None:
    lab_sh = lab_sh_copy(tmp_path)
    installed = tmp_path / "installed"
    (tmp_path / "scripts" / "install.sh").write_text(f'touch "{installed}"\n')
    lock = tmp_path / "run.lock"
    holder = subprocess.Popen(["flock", "-n", str(lock), "sleep", "60"])
    try:
        time.sleep(0.5)
        done = subprocess.run(["bash", str(lab_sh)], capture_output=True, text=True, timeout=30, check=False,
                              env={**os.environ, "VNFLAB_RUN_LOCK": str(lock)})
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 75, done.stderr
    assert f"another lab run holds the run lock {lock}: PID {holder.pid} (flock -n {lock} sleep 60)" in done.stderr
    assert not installed.exists()


def test_both_ansible_playbook_runs_of_lab_sh_hold_the_lock(tmp_path: Path) -> None:
    """The fake ansible-playbook checks that the lock is held by its parent's descriptor (flock on fd 9 succeeds,
    a fresh descriptor is refused)."""
    lab_sh = lab_sh_copy(tmp_path)
    (tmp_path / "scripts" / "install.sh").write_text("exit 0\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "activate").write_text(f'PATH="{bin_dir}:$PATH"\n')
    log = tmp_path / "calls"
    lock = tmp_path / "run.lock"
    fake = bin_dir / "ansible-playbook"
    fake.write_text(f'#!/bin/bash\nflock -n 9 && ! flock -n "{lock}" true && echo held >> "{log}"\n')
    fake.chmod(0o755)
    done = subprocess.run(["bash", str(lab_sh)], capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "VNFLAB_RUN_LOCK": str(lock)})
    assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == ["held", "held"]
