"""vnf_path's closed_bridge: a lab bridge lets IPv4 frames across it, and drops IPv4 routed off it or onto it and
all IPv6 across, off or onto it; state absent removes every rule. Run in a network namespace of the test's own
(unshare), so the host's firewall is not touched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAY = Path(__file__).parent / "playbooks" / "closed-bridge.yml"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip6tables") is None,
                    reason="needs root, unshare and ip6tables")
def test_a_closed_bridge_drops_routed_ipv4_both_ways_and_all_ipv6_and_absent_removes_it(tmp_path: Path) -> None:
    out = tmp_path / "rules.json"
    done = subprocess.run(
        ["unshare", "--net", str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"out={out}", str(PLAY)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_NOCOLOR": "1"})
    assert done.returncode == 0, done.stdout[-3000:]
    rules = json.loads(out.read_text())
    ipv4, ipv6 = (part.splitlines() for part in rules["present"].split("---"))
    assert ipv4[1:] == [
        '-A FORWARD -i vbr-t-i -o vbr-t-i -m comment --comment "vnflab path bridge" -j ACCEPT',
        '-A FORWARD -i vbr-t-i -m comment --comment "vnflab closed lab" -j DROP',
        '-A FORWARD -o vbr-t-i -m comment --comment "vnflab closed lab" -j DROP']
    assert [line for line in ipv6 if line.startswith("-A")] == [
        '-A FORWARD -i vbr-t-i -m comment --comment "vnflab closed lab (IPv6)" -j DROP',
        '-A FORWARD -o vbr-t-i -m comment --comment "vnflab closed lab (IPv6)" -j DROP']
    assert "-A FORWARD" not in rules["absent"]  # the rule added twice is gone too
    assert rules["again_changed"] is False  # idempotent
    # check mode names each rule once and changes nothing (the rules were still there for the real removal)
    assert rules["check_changed"] is True and len(rules["check_removed"]) == 5
