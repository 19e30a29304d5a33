"""platform_kvm without a KVM server: bad input fails early naming the variable (argument specs, the role's own
checks, the validate play's checks of the pinned OSv and Capstan sources)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from stand_in import sleeping_process

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def run_playbook(name: str, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PLAYBOOK, "-i", "localhost,", "-c", "local", str(ROOT / "tests/static/playbooks" / name),
                           "-e", f"ansible_python_interpreter={sys.executable}", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                                   **env))


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


MIRROR_FILES = ("osv.tar.gz", "musl_1.2.1.tar.gz", "musl_0.9.12.tar.gz", "kbuild.tar.gz", "acpica.tar.gz",
                "capstan.tar.gz")


@pytest.fixture()
def mirror(tmp_path: Path) -> Path:
    """A source mirror with the archive names the role pins (contents do not matter to the validate play)."""
    base = tmp_path / "mirror"
    base.mkdir()
    for name in MIRROR_FILES:
        (base / name).write_bytes(name.encode())
    sums = [f"{hashlib.sha256(name.encode()).hexdigest()}  {name}" for name in MIRROR_FILES]
    (base / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return base


def validate_osv(tmp_path: Path, mirror: Path, **extra: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VNFLAB_RESULTS_DIR": str(tmp_path / "results"), "ANSIBLE_NOCOLOR": "1",
           "VNFLAB_SOURCE_MIRROR": str(mirror), "VNFLAB_RUN_LOCK": str(tmp_path / "run.lock")}
    overrides = json.dumps({"vnflab_platforms": ["kvm"], "platform_kvm_guest": "osv", **extra})
    return subprocess.run([PLAYBOOK, "playbooks/validate.yml", "-e", overrides], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False, timeout=120)


def test_validate_accepts_the_pinned_sources_of_a_good_mirror(tmp_path: Path, mirror: Path) -> None:
    done = validate_osv(tmp_path, mirror)
    assert done.returncode == 0, done.stdout[-3000:]


def pins_with(**change: str) -> list[dict[str, str]]:
    defaults = yaml.safe_load((ROOT / "roles/platform_kvm/defaults/main.yml").read_text())
    pins = [dict(pin) for pin in defaults["platform_kvm_osv_sources"]]
    pins[1].update(change)
    return pins


@pytest.mark.parametrize(("change", "expected"), [
    ("bad-commit", "platform_kvm_osv_sources[musl_1.2.1]: version 'master' is not a full 40-digit commit id"),
    ("missing-file", "platform_kvm_osv_sources[musl_1.2.1]: the mirror"),
    ("checksum", "platform_kvm_osv_sources[musl_1.2.1]: checksum mismatch"),
    ("no-mirror", "the source mirror"),
    ("capstan", "platform_kvm_capstan_source[capstan]: version"),
])
def test_validate_rejects_bad_sources_before_the_lab_changes(tmp_path: Path, mirror: Path, change: str,
                                                             expected: str) -> None:
    extra: dict[str, object] = {}
    if change == "bad-commit":
        extra["platform_kvm_osv_sources"] = pins_with(version="master")
    elif change == "missing-file":
        (mirror / "musl_1.2.1.tar.gz").unlink()
    elif change == "checksum":
        (mirror / "musl_1.2.1.tar.gz").write_bytes(b"tampered")
    elif change == "no-mirror":
        mirror = tmp_path / "nowhere"
    elif change == "capstan":
        extra["platform_kvm_capstan_source"] = {"name": "capstan", "version": "v0.4.1", "archive": "capstan.tar.gz"}
    done = validate_osv(tmp_path, mirror, **extra)
    assert done.returncode != 0
    assert expected in done.stdout, done.stdout[-3000:]
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").glob("*/samples.jsonl"))


def test_osv_path_in_check_mode_verifies_the_mirror_and_changes_nothing(tmp_path: Path, mirror: Path) -> None:
    """The real-server OSv path in check mode: every source verified against the mirror, no build, nothing written;
    the proxy VM gets its addresses as OSv kernel options (--ip) and the image stores them before the program."""
    out = tmp_path / "server"
    done = run_playbook("kvm-osv-check.yml", "--check", "-e", f"out_dir={out}", "-e", f"mirror_dir={mirror}",
                        ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    assert done.returncode == 0, done.stdout[-4000:]
    for name in ("osv", "musl_1.2.1", "musl_0.9.12", "kbuild", "acpica"):
        assert f"changed: [localhost] => (item={name} " in done.stdout, f"{name} not verified:\n{done.stdout[-4000:]}"
    assert re.search(r"TASK \[platform_kvm : Capstan source\] \**\nchanged:", done.stdout), done.stdout[-4000:]
    assert not out.exists(), "check mode wrote on the server"
    args = json.loads(re.search(r"PROXY_ARGS=(\[.*?\]) IMAGE_CMDLINE", done.stdout.replace('\\"', '"')).group(1))
    assert args[:2] == ["--osv", "--kernel"] and args[args.index("--disk") + 1].endswith(".qemu")
    assert [args[i + 1] for i, a in enumerate(args) if a == "--ip"] == [
        "eth0,198.18.21.1,255.255.255.0", "eth1,198.18.22.1,255.255.255.0"]
    cmdline = re.search(r'IMAGE_CMDLINE=\\"(.*?)\\"', done.stdout).group(1)
    assert cmdline.startswith("--ip=eth0,198.18.21.1,255.255.255.0 --ip=eth1,198.18.22.1,255.255.255.0 --rootfs=rofs /")
    assert "/vnflab-proxy.so --mode udp" in cmdline


def test_osv_path_in_check_mode_rejects_a_tampered_mirror(tmp_path: Path, mirror: Path) -> None:
    (mirror / "capstan.tar.gz").write_bytes(b"tampered")
    done = run_playbook("kvm-osv-check.yml", "--check", "-e", f"out_dir={tmp_path / 'server'}",
                        "-e", f"mirror_dir={mirror}")
    assert done.returncode != 0
    assert "checksum mismatch" in done.stdout and "capstan.tar.gz" in done.stdout, done.stdout[-3000:]


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU not installed (scripts/install.sh)")
def test_the_microvm_sandbox_options_start_a_daemonized_qemu_under_seccomp(tmp_path: Path) -> None:
    """vnflab-microvm's -sandbox options with -daemonize, on this QEMU: it starts, and runs under a seccomp filter
    (elevateprivileges=deny or spawn=deny would make -daemonize fail)."""
    sandbox = re.search(r"^sandbox=(\S+)$", MICROVM.read_text(), re.MULTILINE)
    assert sandbox is not None, "vnflab-microvm names no sandbox"
    assert '-sandbox "$sandbox"' in MICROVM.read_text()
    pidfile = tmp_path / "qemu.pid"
    done = subprocess.run(["qemu-system-x86_64", "-sandbox", sandbox.group(1), "-M", "none", "-nodefaults",
                           "-display", "none", "-daemonize", "-pidfile", str(pidfile)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    pid = int(pidfile.read_text())
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        assert re.search(r"^Seccomp:\s+2$", status, re.MULTILINE), status
    finally:
        os.kill(pid, signal.SIGKILL)
