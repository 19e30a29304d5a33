"""After a lab run and its teardown the host is as it was found: daemon.json, the forwarding and bridge sysctls,
the modules, the FORWARD policy and the units the lab touches (playbooks/vars/host-settings.yml), byte for byte.

A real, small local-lab run (Docker only, N = 1, one size), so it needs root and the packages of
scripts/install.sh; it holds the lab's run lock (analysis/vnflab/run/runlock.py) from set-up to teardown.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from faultlab import host_snapshot

from vnflab.run import runlock

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "ansible-playbook")

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local lab needs root"),
    pytest.mark.skipif(shutil.which("dockerd") is None, reason="Docker engine not installed (scripts/install.sh)"),
]


def playbook(*args: str, timeout: int = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PLAYBOOK, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
                          pass_fds=(runlock.hold_for_process(),), env=dict(os.environ, ANSIBLE_FORCE_COLOR="0"))


def test_a_run_and_its_teardown_leave_the_host_as_found(tmp_path: Path) -> None:
    try:
        runlock.hold_for_process()
    except runlock.Refused as refused:
        pytest.fail(str(refused))
    daemon_json = Path("/etc/docker/daemon.json")
    found = daemon_json.read_bytes() if daemon_json.exists() else None
    # A host key of the operator's own, which the lab must keep while it runs and leave in place afterwards.
    daemon_json.parent.mkdir(exist_ok=True)
    daemon_json.write_text('{\n  "log-level": "info"\n}\n')
    try:
        check_a_run_and_its_teardown(tmp_path)
    finally:
        if found is None:
            daemon_json.unlink(missing_ok=True)
        else:
            daemon_json.write_bytes(found)


def check_a_run_and_its_teardown(tmp_path: Path) -> None:
    before = host_snapshot()
    run = playbook("site.yml", "-e", "vnflab_profile=quick", "-e", json.dumps({
        "vnflab_platforms": ["docker"], "vnflab_boot_counts": [1], "vnflab_memory_counts": [1],
        "vnflab_response_sizes": [64], "vnflab_results_dir": str(tmp_path)}))
    during = host_snapshot()
    teardown = playbook("site.yml", "--tags", "teardown", timeout=600)
    after = host_snapshot()
    assert run.returncode == 0, run.stdout[-6000:]
    assert teardown.returncode == 0, teardown.stdout[-4000:]
    [run_dir] = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (run_dir / "samples.jsonl").stat().st_size > 0
    # The lab did change the host while it ran (its keys merged beside the operator's), so the check can fail...
    merged = json.loads(during["files"]["/etc/docker/daemon.json"] or "{}")
    assert merged["log-level"] == "info" and merged["bip"] == "198.19.252.1/24", merged
    # ...and the teardown put everything back.
    assert "host-state.json" in (during["lab_state_dir"] or [])
    assert after == before
