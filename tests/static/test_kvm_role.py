"""platform_kvm without a KVM server: OSv templates render to what Capstan and dnsmasq expect, bad input
fails early naming the variable (argument specs and the role's own checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from stand_in import sleeping_process

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def run_playbook(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PLAYBOOK, "-i", "localhost,", "-c", "local", str(ROOT / "tests/static/playbooks" / name),
                           "-e", f"ansible_python_interpreter={sys.executable}", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")))


def test_osv_templates_render(tmp_path: Path) -> None:
    done = run_playbook("kvm-osv-render.yml", "-e", f"out_dir={tmp_path}")
    assert done.returncode == 0, done.stdout + done.stderr
    package = yaml.safe_load((tmp_path / "osv-package.yaml").read_text())
    assert package["name"] == "vnflab-proxy-proxy-abc" and package["require"] == ["osv.bootstrap"]
    run = yaml.safe_load((tmp_path / "osv-run.yaml").read_text())
    assert run["runtime"] == "native"
    assert run["config_set"][run["config_set_default"]]["bootcmd"].endswith("/vnflab-proxy.so --mode udp")
    dnsmasq = (tmp_path / "dnsmasq-instances.conf").read_text().splitlines()
    assert "interface=vbr-kvm-i" in dnsmasq and "port=0" in dnsmasq
    hosts = [line for line in dnsmasq if line.startswith("dhcp-host=")]
    assert hosts == [f"dhcp-host=02:00:c6:13:10:{2 + i:02x},198.19.16.{2 + i}" for i in range(4)]
    assert "dhcp-range=198.19.16.2,static,255.255.248.0,12h" in dnsmasq


@pytest.mark.parametrize(("variables", "named"), [
    ({"platform_kvm_guest": "firecracker"}, "platform_kvm_guest"),
    ({"platform_kvm_memory_mb": "lots"}, "platform_kvm_memory_mb"),
    ({"platform_kvm_accel": "hvf"}, "platform_kvm_accel"),
    ({"platform_kvm_guest": "osv", "platform_kvm_proxy_mode": "raw"}, "platform_kvm_proxy_mode"),
    ({"vnflab_instance_cidr": "10.1.0.0/21"}, "vnflab_instance_cidr"),
])
def test_bad_input_fails_naming_the_variable(variables: dict[str, str], named: str) -> None:
    done = run_playbook("kvm-bad-input.yml", "-e", json.dumps(variables))
    assert done.returncode != 0
    assert named in done.stdout + done.stderr


@pytest.mark.parametrize(("variables", "named"), [
    ({"platform_kvm_memory_mb": 32, "platform_kvm_guest": "linux-microvm"}, "platform_kvm_memory_mb"),
    ({"platform_kvm_memory_mb": 96, "vnflab_boot_counts": [1, 1000], "vnflab_memory_counts": [1]},
     "vnflab_boot_counts"),
])
def test_capacity_checks_fail_naming_the_variable(variables: dict[str, object], named: str) -> None:
    """The driver entry point checks memory per VM and the sweep against MemAvailable before any VM starts."""
    facts = {"platform_kvm_accel_used": "tcg", "platform_kvm_guest": "linux-microvm", "platform_kvm_proxy_mode": "raw",
             "platform_kvm_boot_args": [], "platform_kvm_proxy_bin": {"stat": {"checksum": "0" * 64}},
             "entry": "driver"}
    done = run_playbook("kvm-bad-input.yml", "-e", json.dumps({**facts, **variables}))
    assert done.returncode != 0
    assert named in done.stdout + done.stderr, done.stdout[-3000:]


def test_missing_kernel_fails_naming_the_variable() -> None:
    done = run_playbook("kvm-bad-input.yml", "-e", json.dumps({
        "entry": "microvm", "platform_kvm_microvm_kernel_version": "0.0.0-no-such",
        "platform_kvm_install_dir": "/nonexistent", "platform_kvm_cache_dir": "/nonexistent"}))
    assert done.returncode != 0
    assert "platform_kvm_microvm_kernel_version" in done.stdout + done.stderr, done.stdout[-3000:]


MICROVM = ROOT / "roles" / "platform_kvm" / "files" / "vnflab-microvm"
PANIC = "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"


def microvm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(MICROVM), *args], capture_output=True, text=True, check=False, timeout=30)


@pytest.fixture()
def fake_qemu(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A harmless process whose command line is that of the VM's QEMU (`qemu-system-x86_64 ... -pidfile P`),
    its PID in the pidfile, as `vnflab-microvm start` leaves them; killed (only it) at the end."""
    state = tmp_path / "state"
    state.mkdir()
    pidfile = state / "vm0.pid"
    with sleeping_process("qemu-system-x86_64", "-pidfile", str(pidfile)) as proc:
        pidfile.write_text(f"{proc.pid}\n")
        (state / "vm0.taps").write_text("vm0-n0\n")
        (state / "vm0.console").write_text("")
        yield state, proc


def test_microvm_health_follows_qemu(fake_qemu: tuple[Path, subprocess.Popen[bytes]]) -> None:
    state, proc = fake_qemu
    done = microvm("health", "vm0", "--state-dir", str(state))
    assert (done.returncode, done.stderr) == (0, "")
    proc.kill()
    proc.wait()
    done = microvm("health", "vm0", "--state-dir", str(state))  # a stale pidfile
    assert (done.returncode, done.stderr.strip()) == (1, "microVM vm0 exited")
    # The guest panicked (panic=-1 and -no-reboot end QEMU; QEMU deletes its pidfile as it exits).
    (state / "vm0.pid").unlink()
    (state / "vm0.console").write_bytes(
        f"[    0.412000] VFS: Cannot open root device\r\n[    0.413000] {PANIC}\r\n"
        f"[    0.413500] CPU: 0 PID: 1 Comm: swapper/0\r\n[    0.414000] ---[ end {PANIC} ]---\r\n".encode())
    done = microvm("health", "vm0", "--state-dir", str(state))
    assert (done.returncode, done.stderr.strip()) == (1, f"microVM vm0 exited: {PANIC}")


def test_microvm_health_of_an_other_process_or_no_vm(fake_qemu: tuple[Path, subprocess.Popen[bytes]]) -> None:
    state, _ = fake_qemu
    # A live PID that is not this VM's QEMU (its command line names another pidfile) is no sign of life.
    (state / "vm1.pid").write_text((state / "vm0.pid").read_text())
    done = microvm("health", "vm1", "--state-dir", str(state))
    assert (done.returncode, done.stderr.strip()) == (1, "microVM vm1 exited")
    done = microvm("health", "vm2", "--state-dir", str(state))
    assert (done.returncode, done.stderr.strip()) == (1, "microVM vm2 is gone")


def test_driver_asks_the_health_of_the_vm_the_pid_command_finds() -> None:
    tasks = yaml.safe_load((ROOT / "roles" / "platform_kvm" / "tasks" / "driver.yml").read_text())
    driver = next(t["ansible.builtin.set_fact"]["vnflab_driver"] for t in tasks
                  if "vnflab_driver" in (t.get("ansible.builtin.set_fact") or {}))
    assert driver["health"] == ["health" if arg == "pid" else arg for arg in driver["pid"]]
