"""platform_native without a lab: the lifecycle script's health command, against a harmless stand-in process."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from stand_in import sleeping_process

ROOT = Path(__file__).resolve().parents[2]
NATIVE = ROOT / "roles" / "platform_native" / "files" / "vnflab-native"


def native(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(NATIVE), *args], capture_output=True, text=True, check=False, timeout=30)


@pytest.fixture()
def fake_proxy(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A process variant instance as `vnflab-native start` leaves it: a process whose command line names the
    proxy (vnflab-proxy), its PID in DIR/NAME.pid, its output in DIR/NAME.log; killed (only it) at the end."""
    state = tmp_path / "state"
    state.mkdir()
    with sleeping_process("/usr/local/bin/vnflab-proxy", "--mode", "raw") as proc:
        (state / "vnflab-native-0.pid").write_text(f"{proc.pid}\n")
        (state / "vnflab-native-0.veth").write_text("vp-0123456789\n")
        (state / "vnflab-native-0.log").write_text("vnflab-proxy: ready (raw)\n")
        yield state, proc


def test_health_follows_the_proxy_process(fake_proxy: tuple[Path, subprocess.Popen[bytes]]) -> None:
    state, proc = fake_proxy
    done = native("health", "vnflab-native-0", "--state-dir", str(state))
    assert (done.returncode, done.stderr) == (0, "")
    proc.kill()
    proc.wait()
    with (state / "vnflab-native-0.log").open("a") as log:
        log.write("vnflab-proxy: recvfrom eth0: Network is down\n\n")
    done = native("health", "vnflab-native-0", "--state-dir", str(state))
    assert (done.returncode, done.stderr.strip()) == (
        1, "instance vnflab-native-0: its proxy exited (last log line: vnflab-proxy: recvfrom eth0: Network is down)")


def test_health_of_an_other_process_or_no_instance(fake_proxy: tuple[Path, subprocess.Popen[bytes]]) -> None:
    state, _ = fake_proxy
    # A live PID that is not the proxy (a PID reused since) is no sign of life.
    other = subprocess.Popen(["sleep", "120"])
    try:
        (state / "vnflab-native-1.pid").write_text(f"{other.pid}\n")
        done = native("health", "vnflab-native-1", "--state-dir", str(state))
    finally:
        other.kill()
        other.wait()
    assert (done.returncode, done.stderr.strip()) == (1, "instance vnflab-native-1: its proxy exited")
    # No pidfile (the iptables variant) and no network namespace of that name.
    done = native("health", "vnflab-native-no-such-netns", "--state-dir", str(state))
    assert (done.returncode, done.stderr.strip()) == (1, "instance vnflab-native-no-such-netns is gone")


def test_driver_asks_the_health_of_the_instance_the_pid_command_finds() -> None:
    tasks = yaml.safe_load((ROOT / "roles" / "platform_native" / "tasks" / "driver.yml").read_text())
    driver = next(t["ansible.builtin.set_fact"]["vnflab_driver"] for t in tasks
                  if "vnflab_driver" in (t.get("ansible.builtin.set_fact") or {}))
    assert driver["health"] == ["health" if arg == "pid" else arg for arg in driver["pid"]]
