"""Molecule scenarios (molecule/<scenario>/): each role converged, re-converged with changed=0 and verified on
emulated Debian 12 servers built and booted on this machine (roles/emulated_server), then destroyed.

One `molecule test -s <scenario>` per test, under the lab's run lock (analysis/vnflab/run/runlock.py), which this test
process takes at its first scenario and holds until it ends: a lab run (site.yml, scripts/lab.sh) beside it is
refused, and the test fails at once, naming the run, while another holds it. The CI slice is marked
`lab`; the long scenarios are also marked `heavy`. After each scenario the test checks, independently of the
scenario's own destroy step, that no QEMU process, VM disk, tap or bridge of Molecule is left.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from vnflab.run import runlock

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
CACHE_DIR = Path("/var/cache/vnflab/molecule")
DURATIONS = ROOT / ".cache" / "molecule-durations.json"

# scenario -> (time limit in seconds, heavy). The limits include a first image build (about 3 minutes).
# CI (45 minutes for everything on 2 cores) runs host_b (~3 min with the image cached), which exercises the
# emulated-server role. docker (~13 min with its image built, docker.io built in) became heavy when CI started
# building OSv and ClickOS from their sources (7-15 and 4-7 min on a fresh machine). xen (~14 min in CI: Xen
# installed, the reboot into it, xl info) and the others are heavy: `scripts/test.sh --all` or
# `molecule test --all` runs them.
SCENARIOS: dict[str, tuple[int, bool]] = {
    "host_b": (1200, False),
    "docker": (1800, True),
    "xen": (3000, True),
    "host_a": (1200, True),
    "native": (1200, True),
    "kvm": (3000, True),
    "full_lab": (3600, True),
}

LAB = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="Molecule's emulated servers need root (bridges, taps, loop devices)"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU not installed (scripts/install.sh)"),
    pytest.mark.skipif(not (BIN / "molecule").exists(), reason="molecule not installed in the venv"),
]


def molecule_leftovers() -> list[str]:
    """QEMU processes, VM disks, taps, bridges and probe namespaces of Molecule's instances on this machine."""
    found = []
    qemu = subprocess.run(["pgrep", "-a", "-f", "qemu-system"], capture_output=True, text=True, check=False)
    found += [f"process {line}" for line in qemu.stdout.splitlines() if re.search(r"-name mol-", line)]
    vms = CACHE_DIR / "vms"
    found += [f"disk {path}" for path in vms.glob("mol-*.qcow2")] if vms.is_dir() else []
    links = json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout)
    found += [f"link {link['ifname']}" for link in links if re.match(r"^(vbr-mol$|vbr-m-|mol-)", link["ifname"])]
    netns = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    found += [f"netns {n['name']}" for n in json.loads(netns or "[]") if n["name"].startswith("mol-")]
    return found


def record_duration(scenario: str, seconds: float) -> None:
    DURATIONS.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    known[scenario] = round(seconds)
    DURATIONS.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")


def scenario_params() -> list[object]:
    return [pytest.param(name, limit, id=name, marks=[*LAB, pytest.mark.heavy] if heavy else LAB)
            for name, (limit, heavy) in SCENARIOS.items()]


def test_every_scenario_is_listed() -> None:
    on_disk = {path.parent.name for path in (ROOT / "molecule").glob("*/molecule.yml")}
    assert on_disk == set(SCENARIOS)


@pytest.mark.parametrize(("scenario", "limit"), scenario_params())
def test_molecule_scenario(scenario: str, limit: int) -> None:
    """create, converge, idempotence (second converge changed=0), verify, destroy - all on real VMs."""
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", ANSIBLE_FORCE_COLOR="0", NO_COLOR="1",
               PY_COLORS="0")
    try:
        runlock.hold_for_process()
    except runlock.Refused as refused:
        pytest.fail(str(refused))
    started = time.monotonic()
    try:
        done = subprocess.run([str(BIN / "molecule"), "test", "-s", scenario], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired as exc:
        subprocess.run([str(BIN / "molecule"), "destroy", "-s", scenario], cwd=ROOT, env=env,
                       capture_output=True, timeout=600, check=False)
        output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else str(exc.stdout)
        pytest.fail(f"molecule test -s {scenario} took more than {limit} s:\n{output[-6000:]}")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, f"molecule test -s {scenario} failed:\n{done.stdout[-8000:]}\n{done.stderr[-4000:]}"
    record_duration(scenario, elapsed)
    for step in ("create", "prepare", "converge", "idempotence", "verify", "destroy"):
        # NO_COLOR (set above) makes Molecule print its plain recap lines: "<scenario> > <step>: Executed: Successful".
        assert re.search(rf"{scenario} > {step}: Executed: Successful", done.stdout + done.stderr), \
            f"step {step} did not run successfully:\n{done.stdout[-4000:]}"
    assert molecule_leftovers() == []
