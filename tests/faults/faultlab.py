"""What the fault suite shares: playbook runs under the run lock, a kill -9 of a run, and the census of what a lab
can leave behind on this machine (namespaces, links, containers, QEMU, firewall rules, loop devices, mounts, pid
files), independent of the teardown that removes it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from vnflab.run import runlock

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "ansible-playbook")
LINK_RE = re.compile(r"^(vbr-|va-|vb-|vp-|vnflab|vm[0-9a-f]{10}-n)")
MOLECULE_LINK_RE = re.compile(r"^vbr-(mol$|m-)")  # Molecule's own, removed by its destroy step
SETTINGS = yaml.safe_load((ROOT / "playbooks" / "vars" / "host-settings.yml").read_text())["vnflab_host_settings"]


def _run(argv: Sequence[str]) -> str:
    if shutil.which(argv[0]) is None:
        return ""
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60).stdout


def leftovers() -> list[str]:
    """Everything a lab could leave on this machine, one line each."""
    found: list[str] = []
    netns = _run(["ip", "-j", "netns", "list"])
    found += [f"netns {n['name']}" for n in json.loads(netns or "[]") if n["name"].startswith("vnflab")]
    links = json.loads(_run(["ip", "-j", "link", "show"]) or "[]")
    found += [f"link {link['ifname']}" for link in links
              if LINK_RE.match(link["ifname"]) and not MOLECULE_LINK_RE.match(link["ifname"])]
    docker_up = Path("/run/docker.sock").exists()
    containers = _run(["docker", "ps", "--all", "--format", "{{.Names}}"]) if docker_up else ""
    found += [f"container {name}" for name in containers.split() if name.startswith("vnflab")]
    networks = _run(["docker", "network", "ls", "--format", "{{.Name}}"]) if docker_up else ""
    found += [f"docker network {name}" for name in networks.split() if name.startswith("vnflab")]
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle", "raw"):
            rules = _run([tool, "-w", "-t", table, "-S"])
            found += [f"{tool} -t {table} {line}" for line in rules.splitlines() if "vnflab" in line]
    found += [f"nft {line.strip()}" for line in _run(["nft", "list", "tables"]).splitlines() if "vnflab" in line]
    qemu = _run(["pgrep", "-a", "-f", "qemu-system"])
    found += [f"process {line}" for line in qemu.splitlines() if "vnflab" in line]
    found += [f"loop {line}" for line in _run(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"])
              .splitlines() if "vnflab" in line]
    found += [f"mount {line}" for line in Path("/proc/mounts").read_text().splitlines() if "vnflab" in line]
    run_dir = Path("/run/vnflab")
    found += [f"pidfile {p}" for p in run_dir.rglob("*.pid")] if run_dir.is_dir() else []
    return sorted(found)


def hold_run_lock() -> int:
    """Hold the lab's run lock in this process for the whole test (the playbooks inherit it)."""
    return runlock.hold_for_process()


def run_playbook(*args: str, timeout: int = 1500, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PLAYBOOK, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
                          pass_fds=(hold_run_lock(),), env=dict(os.environ, ANSIBLE_FORCE_COLOR="0"))


def start_playbook(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """A run in the background, its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen([PLAYBOOK, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                pass_fds=(hold_run_lock(),),
                                env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", PYTHONUNBUFFERED="1"))


def wait_for(what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path,
             timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (rc {proc.returncode}) before {what}:\n{log.read_text()[-5000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout_s} s:\n{log.read_text()[-5000:]}")


def journal_lines(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def has_sample(results: Path, metric: str, x: int | None = None, quantity: str | None = None) -> bool:
    """Whether any run under ``results`` has journaled a sample of ``metric`` (at ``x``, of ``quantity``)."""
    for journal in results.glob("*/samples.jsonl"):
        for line in journal.read_text().splitlines():
            try:
                sample = json.loads(line)
            except ValueError:  # a line being written
                continue
            if sample.get("metric") == metric and (x is None or sample.get("x") == x) \
                    and (quantity is None or sample.get("quantity") == quantity):
                return True
    return False


def only_run_dir(results: Path) -> Path:
    [run_dir] = [p for p in results.iterdir() if p.is_dir()]
    return run_dir


def host_snapshot() -> dict[str, Any]:
    """What the teardown must put back, read independently of the module that puts it back."""
    def read(path: str) -> str | None:
        try:
            return Path(path).read_text()
        except FileNotFoundError:
            return None
    modules = read("/proc/modules")
    loaded = {line.split()[0] for line in (modules or "").splitlines()}
    forward = subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True, check=True).stdout
    units = {}
    if Path("/run/systemd/system").is_dir():
        for unit in SETTINGS["units"]:
            units[unit] = [subprocess.run(["systemctl", verb, unit], capture_output=True, text=True,
                                          check=False).stdout.strip() for verb in ("is-active", "is-enabled")]
    return {
        "files": {path: read(path) for path in SETTINGS["files"]},
        "sysctls": {key: read("/proc/sys/" + key.replace(".", "/")) for key in SETTINGS["sysctls"]},
        "modules": {name: (name in loaded) if modules is not None else Path(f"/sys/module/{name}").is_dir()
                    for name in SETTINGS["modules"]},
        "forward_policy": next((line for line in forward.splitlines() if line.startswith("-P FORWARD")), None),
        "units": units,
        "lab_state_dir": sorted(os.listdir("/var/lib/vnflab")) if Path("/var/lib/vnflab").is_dir() else None,
        # pidfiles of what the lab runs (a VM's NAME.pid, a live migration's destination NAME.pid.m) and their QEMUs
        "lab_pidfiles": sorted(str(p) for p in Path("/run/vnflab").rglob("*.pid*")),
        "lab_qemus": lab_qemus(),
    }


def lab_qemus() -> list[str]:
    """Command lines of the QEMUs the lab runs (VMs, live migrations' destinations: their state is /run/vnflab)."""
    found = subprocess.run(["pgrep", "-a", "-f", "qemu-system-x86_64"], capture_output=True, text=True, check=False)
    return sorted(line.split(" ", 1)[1] for line in found.stdout.splitlines() if "/run/vnflab/" in line)
