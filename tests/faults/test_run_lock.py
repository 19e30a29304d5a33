"""Two runs at once: the second fails at once, before anything changes, naming the first (PID, start time,
run id); the lock goes with its holder, even a holder killed with SIGKILL.

The runs are the real validate play (site.yml's first play, where the lock is taken) on a lock file of the test's
own ($VNFLAB_RUN_LOCK), so the suite needs no lab and may run beside one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOK = str(BIN / "ansible-playbook")
HOLD = str(Path(__file__).parent / "playbooks" / "hold.yml")


def lab_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "VNFLAB_RESULTS_DIR": str(tmp_path / "results"),
            "VNFLAB_RUN_LOCK": str(tmp_path / "run.lock"), "ANSIBLE_NOCOLOR": "1"}


def overrides(**extra: object) -> str:
    return json.dumps({"vnflab_platforms": ["docker"], **extra})


def start_holder(tmp_path: Path) -> subprocess.Popen[str]:
    """A run that takes the lock in the validate play and stays in the next playbook until released."""
    return subprocess.Popen([PLAYBOOK, "playbooks/validate.yml", HOLD, "-e", overrides(),
                             "-e", f"hold_release_file={tmp_path / 'release'}"],
                            cwd=ROOT, env=lab_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def wait_for_run_id(lock: Path, holder: subprocess.Popen[str], timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert holder.poll() is None, holder.communicate()[0]
        try:
            run_id = json.loads(lock.read_text()).get("run_id")
        except (OSError, ValueError):
            run_id = None
        if run_id:
            return str(run_id)
        time.sleep(0.2)
    raise AssertionError(f"the first run never named itself in {lock}")


def validate(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([PLAYBOOK, "playbooks/validate.yml", "-e", overrides()], cwd=ROOT, env=lab_env(tmp_path),
                          capture_output=True, text=True, check=False, timeout=120)
    return done, time.monotonic() - started


def run_dirs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "results").glob("*/"))


def test_a_second_run_fails_at_once_naming_the_first_and_the_lock_goes_with_it(tmp_path: Path) -> None:
    first = start_holder(tmp_path)
    try:
        run_id = wait_for_run_id(tmp_path / "run.lock", first)
        second, seconds = validate(tmp_path)
        assert second.returncode != 0, second.stdout
        assert "another lab run holds the run lock" in second.stdout, second.stdout
        assert f"PID {first.pid} " in second.stdout, second.stdout
        assert f"run id {run_id}" in second.stdout, second.stdout
        assert "started 20" in second.stdout, second.stdout
        # Before anything changes: the refused run opened no run directory of its own.
        assert [d.name for d in run_dirs(tmp_path)] == [run_id]
        assert seconds < 30, f"the refused run took {seconds:.1f} s"
    finally:
        (tmp_path / "release").touch()
        out = first.communicate(timeout=120)[0]
    assert first.returncode == 0, out
    third, _ = validate(tmp_path)
    assert third.returncode == 0, third.stdout


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    first = start_holder(tmp_path)
    try:
        wait_for_run_id(tmp_path / "run.lock", first)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        (tmp_path / "release").touch()
        if first.poll() is None:
            first.kill()
        first.communicate()
    # The worker processes of the killed ansible-playbook may outlive it for a moment; none holds the lock.
    second, _ = validate(tmp_path)
    assert second.returncode == 0, second.stdout


@pytest.mark.skipif(shutil.which("flock") is None, reason="needs util-linux flock")
def test_a_run_inside_flock_on_the_lock_uses_the_inherited_lock_and_outsiders_are_refused(tmp_path: Path) -> None:
    """`flock FILE ansible-playbook ...` (the e2e and Molecule harnesses, scripts/lab.sh) holds the same lock."""
    lock = tmp_path / "run.lock"
    inside = subprocess.run(["flock", "-n", str(lock), PLAYBOOK, "playbooks/validate.yml", "-e", overrides()],
                            cwd=ROOT, env=lab_env(tmp_path), capture_output=True, text=True, check=False, timeout=120)
    assert inside.returncode == 0, inside.stdout
    sleeper = subprocess.Popen(["flock", "-n", str(lock), "sleep", "60"])
    try:
        time.sleep(0.5)
        refused, _ = validate(tmp_path)
        assert refused.returncode != 0
        assert f"PID {sleeper.pid} (flock -n {lock} sleep 60)" in refused.stdout, refused.stdout
    finally:
        sleeper.kill()
        sleeper.wait()
