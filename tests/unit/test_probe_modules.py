"""Module-level tests of library/*.py with the set_module_args / patched exit_json harness.

No root, no network, no Docker: the platform driver runs fake commands, the probers are replaced,
iproute2 is a fake that answers from an in-memory model, and services are child processes of the test.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible.module_utils.vnflab_host import driver as drv
from ansible.module_utils.vnflab_host.boot_probe import BootProbeResult
from ansible.module_utils.vnflab_host.iproute import IpError, IpRoute
from ansible.module_utils.vnflab_host.rtt_probe import EchoMeasurement
from plugin_harness import load_file

LABEL = "docker/debian12-iptables (native, stand-in for CoreOS)"


def load_module(name: str) -> ModuleType:
    return load_file("library", name)


boot_mod = load_module("vnf_boot_time")
memory_mod = load_module("vnf_memory")
concurrency_mod = load_module("vnf_start_concurrency")
response_mod = load_module("vnf_response_time")
link_mod = load_module("vnflab_link")
service_mod = load_module("vnflab_service")
facts_mod = load_module("vnflab_host_facts")


# ---------------------------------------------------------------- harness


class AnsibleExitJson(Exception):
    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result)
        self.result = result


class AnsibleFailJson(Exception):
    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result)
        self.result = result


def exit_json(self: basic.AnsibleModule, **kwargs: Any) -> None:
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def fail_json(self: basic.AnsibleModule, msg: str, **kwargs: Any) -> None:
    raise AnsibleFailJson({"failed": True, "msg": msg, **kwargs})


@pytest.fixture(autouse=True)
def patched_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)


def run_module(module: ModuleType, args: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
    """Run module.main() with args; return the exit_json result (raises AnsibleFailJson on failure)."""
    module_args = {**args, "_ansible_check_mode": check_mode}
    with patch_module_args(module_args), pytest.raises(AnsibleExitJson) as exited:
        module.main()
    return exited.value.result


def fail_module(module: ModuleType, args: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
    module_args = {**args, "_ansible_check_mode": check_mode}
    with patch_module_args(module_args), pytest.raises(AnsibleFailJson) as failed:
        module.main()
    return failed.value.result


# ---------------------------------------------------------------- fake platform


def driver_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "docker",
        "label": LABEL,
        "instance_prefix": "vnflab-docker-",
        "network": {"cidr": "198.19.8.0/24", "first_host": 2},
        "start": ["docker", "run", "--name", "${name}", "--ip", "${address}", "img"],
        "stop": ["docker", "rm", "--force", "${name}"],
        "pid": ["docker", "inspect", "--format", "{{.State.Pid}}", "${name}"],
        "own_cgroup": True,
    }
    spec.update(overrides)
    return spec


@dataclass
class FakeRunner:
    """subprocess.run stand-in for the driver: start/stop succeed unless start_fails/stop_fails name the instance."""

    start_fails: dict[str, str] = field(default_factory=dict)
    stop_fails: dict[str, str] = field(default_factory=dict)
    dead: dict[str, str] = field(default_factory=dict)  # instance -> what its health check says
    calls: list[list[str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        with self.lock:
            self.calls.append(list(argv))
        if argv[:2] == ["docker", "run"] and argv[3] in self.start_fails:
            return subprocess.CompletedProcess(argv, 125, "", self.start_fails[argv[3]] + "\n")
        if argv[:2] == ["docker", "rm"] and argv[3] in self.stop_fails:
            return subprocess.CompletedProcess(argv, 1, "", self.stop_fails[argv[3]] + "\n")
        if argv[:2] == ["vnflab-health", "check"] and argv[2] in self.dead:
            return subprocess.CompletedProcess(argv, 1, "", self.dead[argv[2]] + "\n")
        return subprocess.CompletedProcess(argv, 0, "", "")

    def started(self) -> list[str]:
        return sorted(argv[3] for argv in self.calls if argv[:2] == ["docker", "run"])

    def stopped(self) -> list[str]:
        return sorted(argv[3] for argv in self.calls if argv[:2] == ["docker", "rm"])


@dataclass
class Platform:
    """A fake platform: the driver's commands go to runner; drivers holds every driver the module built."""

    runner: FakeRunner
    drivers: list[drv.PlatformDriver] = field(default_factory=list)
    instances: list[drv.Instance] = field(default_factory=list)


def install_platform(monkeypatch: pytest.MonkeyPatch, module: ModuleType, runner: FakeRunner,
                     memory: Callable[[drv.Instance], drv.InstanceMemory] | None = None) -> Platform:
    fake = Platform(runner)

    class RecordingDriver(drv.PlatformDriver):
        def __init__(self, spec: dict[str, Any]) -> None:
            super().__init__(spec, runner=runner)
            fake.drivers.append(self)

        def instances(self, count: int) -> list[drv.Instance]:
            fake.instances = super().instances(count)
            return fake.instances

        def start(self, instances: Any, max_parallel: int | None = None) -> Any:
            # Finish the starts before the (fake) prober looks, so start_ns is known to it.
            pool = super().start(instances, max_parallel)
            self.wait_started(pool)
            return pool

        def memory(self, instance: drv.Instance) -> drv.InstanceMemory:
            assert memory is not None
            return memory(instance)

    monkeypatch.setattr(module, "PlatformDriver", RecordingDriver)
    return fake


def never_probe(*args: Any, **kwargs: Any) -> BootProbeResult:
    raise AssertionError("the prober must not run")


def reply_after(offsets_ms: list[float | None], instances: Callable[[], list[drv.Instance]],
                calls: list[dict[str, Any]]) -> Callable[..., BootProbeResult]:
    """A wait_first_replies stand-in: instance i answers offsets_ms[i] after its start (None: never).

    Like the real prober, it asks ``give_up`` (once) about the addresses that never answer.
    """

    def probe(addresses: list[str], deadline_s: float, poll_interval_s: float = 0.01, max_pps: int = 1000,
              bind_address: str | None = None, give_up: Callable[[list[str]], Any] | None = None,
              give_up_every_s: float = 5.0, ready: Callable[[str], bool] | None = None) -> BootProbeResult:
        if ready is not None:  # started instances may be polled: the fake starts them all before probing
            assert all(ready(address) for address in addresses)
        calls.append({"addresses": list(addresses), "deadline_s": deadline_s, "poll_interval_s": poll_interval_s,
                      "max_pps": max_pps})
        by_address = {inst.address: inst for inst in instances()}
        first: dict[str, int | None] = {}
        for address, offset in zip(addresses, offsets_ms, strict=True):
            start_ns = by_address[address].start_ns
            assert start_ns > 0, "the prober ran before the start command was issued"
            first[address] = None if offset is None else start_ns + int(offset * 1_000_000)
        silent = [address for address, reply in first.items() if reply is None]
        given_up = dict(give_up(silent)) if give_up is not None and silent else {}
        return BootProbeResult(first_reply_ns=first, poll_interval_s=max(poll_interval_s, len(addresses) / max_pps),
                               requested_poll_interval_s=poll_interval_s, max_pps=max_pps, started_ns=1,
                               deadline_ns=2, rx_source="kernel-software", given_up=given_up)

    return probe


# ---------------------------------------------------------------- argument validation


@pytest.mark.parametrize("module", [boot_mod, memory_mod], ids=["vnf_boot_time", "vnf_memory"])
@pytest.mark.parametrize("count", [0, 1025, -3])
def test_count_out_of_range(module: ModuleType, count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    install_platform(monkeypatch, module, runner)
    monkeypatch.setattr(module, "wait_first_replies", never_probe)
    result = fail_module(module, {"driver": driver_spec(), "count": count})
    assert result["msg"].startswith("count: ")
    assert str(count) in result["msg"] and "1024" in result["msg"]
    assert runner.calls == []


@pytest.mark.parametrize(
    ("module", "option", "value"),
    [
        (boot_mod, "timeout_s", 0),
        (boot_mod, "timeout_s", float("nan")),
        (boot_mod, "poll_interval_ms", -1.0),
        (boot_mod, "max_pps", 0),
        (memory_mod, "timeout_s", -5.0),
        (memory_mod, "settle_s", -0.5),
        (memory_mod, "reads", 0),
    ],
)
def test_bad_timing_options_fail_before_anything_starts(module: ModuleType, option: str, value: float,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    install_platform(monkeypatch, module, runner)
    monkeypatch.setattr(module, "wait_first_replies", never_probe)
    for check_mode in (False, True):
        result = fail_module(module, {"driver": driver_spec(), "count": 2, option: value}, check_mode=check_mode)
        assert result["msg"].startswith(f"{option}: ")
    assert runner.calls == []


@pytest.mark.parametrize("module", [boot_mod, memory_mod], ids=["vnf_boot_time", "vnf_memory"])
def test_invalid_driver_fails_naming_the_problem(module: ModuleType) -> None:
    result = fail_module(module, {"driver": driver_spec(network={"cidr": "10.0.0.0/24"}), "count": 1})
    assert result["msg"].startswith("driver: invalid driver specification")
    assert "10.0.0.0/24" in result["msg"]


@pytest.mark.parametrize("module", [boot_mod, memory_mod], ids=["vnf_boot_time", "vnf_memory"])
def test_count_beyond_the_instance_network(module: ModuleType) -> None:
    spec = driver_spec(network={"cidr": "198.19.8.0/28"})
    result = fail_module(module, {"driver": spec, "count": 20})
    assert result["msg"] == "driver: count 20 exceeds the 13 addresses of 198.19.8.0/28"


@pytest.mark.parametrize("missing", ["driver", "count"])
def test_required_options(missing: str) -> None:
    args = {"driver": driver_spec(), "count": 1}
    del args[missing]
    result = fail_module(boot_mod, args)
    assert missing in result["msg"]


RESPONSE_ARGS: dict[str, Any] = {"paths": {"proxy": "198.18.11.1", "direct": "198.18.0.2"}, "sizes": [64]}


@pytest.mark.parametrize(
    ("overrides", "option", "needle"),
    [
        ({"sizes": [64, 0]}, "sizes", "[0]"),
        ({"sizes": [65508]}, "sizes", "[65508]"),
        ({"paths": {"proxy": "host-b"}}, "paths", "'host-b'"),
        ({"paths": {"proxy": "198.18.11.1", "direct": "198.18.0.256"}}, "paths", "'198.18.0.256'"),
        ({"paths": {"proxy": "2001:db8::1"}}, "paths", "'2001:db8::1'"),
        ({"paths": {}}, "paths", "at least one path"),
        ({"samples": 0}, "samples", "at least 1"),
        ({"warmup": -1}, "warmup", "at least 0"),
        ({"interval_ms": -2.0}, "interval_ms", "-2.0"),
        ({"timeout_ms": 0}, "timeout_ms", "0"),
        ({"udp_port": 0}, "udp_port", "0"),
    ],
)
def test_response_argument_validation(overrides: dict[str, Any], option: str, needle: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(response_mod, "EchoProber", never_probe)
    for check_mode in (False, True):
        result = fail_module(response_mod, {**RESPONSE_ARGS, **overrides}, check_mode=check_mode)
        assert result["msg"].startswith(f"{option}: ")
        assert needle in result["msg"]


def test_response_mode_choices() -> None:
    result = fail_module(response_mod, {**RESPONSE_ARGS, "mode": "tcp"})
    assert "mode" in result["msg"] and "tcp" in result["msg"]


# ---------------------------------------------------------------- check mode


@pytest.mark.parametrize("module", [boot_mod, memory_mod], ids=["vnf_boot_time", "vnf_memory"])
def test_check_mode_starts_nothing(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    fake = install_platform(monkeypatch, module, runner)
    monkeypatch.setattr(module, "wait_first_replies", never_probe)
    if module is memory_mod:
        monkeypatch.setattr(module, "server_available_mb", never_probe)
    result = run_module(module, {"driver": driver_spec(), "count": 8}, check_mode=True)
    assert result["changed"] is False
    assert (result["count"], result["label"]) == (8, LABEL)
    assert "nothing started" in result["msg"]
    assert runner.calls == []
    assert len(fake.drivers) == 1  # the driver was validated


def test_response_check_mode_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(response_mod, "EchoProber", never_probe)
    result = run_module(response_mod, RESPONSE_ARGS, check_mode=True)
    assert result["changed"] is False
    assert result["mode"] == "icmp"
    assert "nothing sent" in result["msg"]
    assert "results" not in result


# ---------------------------------------------------------------- boot_times_ms


@pytest.mark.parametrize(
    ("start_ns", "reply_ns", "per_instance", "all_ms"),
    [
        ([1_000_000_000, 1_000_500_000], [1_400_000_000, 1_300_500_000], [400.0, 300.0], 400.0),
        # last T1 minus first T0, whatever instance they belong to
        ([0, 10_000_000, 20_000_000], [5_000_000, 50_000_000, 30_000_000], [5.0, 40.0, 10.0], 50.0),
        ([100, 200], [1_000_100, None], [1.0, None], None),
        ([100], [None], [None], None),
        ([], [], [], None),
    ],
)
def test_boot_times_ms(start_ns: list[int], reply_ns: list[int | None], per_instance: list[float | None],
                       all_ms: float | None) -> None:
    got_per_instance, got_all = boot_mod.boot_times_ms(start_ns, reply_ns)
    assert [value is None for value in got_per_instance] == [value is None for value in per_instance]
    assert [v for v in got_per_instance if v is not None] == pytest.approx([v for v in per_instance if v is not None])
    if all_ms is None:
        assert got_all is None
    else:
        assert got_all == pytest.approx(all_ms)


# ---------------------------------------------------------------- vnf_boot_time run


def test_boot_time_all_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    fake = install_platform(monkeypatch, boot_mod, runner)
    probe_calls: list[dict[str, Any]] = []
    offsets = [400.0, 455.5, 380.25]
    monkeypatch.setattr(boot_mod, "wait_first_replies", reply_after(offsets, lambda: fake.instances, probe_calls))
    result = run_module(boot_mod, {"driver": driver_spec(), "count": 3, "timeout_s": 30,
                                   "poll_interval_ms": 2.0, "max_pps": 1000})
    names = ["vnflab-docker-0", "vnflab-docker-1", "vnflab-docker-2"]
    assert runner.started() == names
    assert runner.stopped() == names
    assert probe_calls == [{"addresses": ["198.19.8.2", "198.19.8.3", "198.19.8.4"], "deadline_s": 30.0,
                            "poll_interval_s": 0.002, "max_pps": 1000}]
    assert result["changed"] is False
    assert result["boot_ms"] == pytest.approx(offsets, abs=1e-6)
    starts = [inst.start_ns for inst in fake.instances]
    replies = [t0 + int(ms * 1_000_000) for t0, ms in zip(starts, offsets, strict=True)]
    assert result["all_ms"] == pytest.approx((max(replies) - min(starts)) / 1e6)
    assert result["all_ms"] >= max(offsets)
    assert [(i["name"], i["address"], i["start_error"]) for i in result["instances"]] == [
        ("vnflab-docker-0", "198.19.8.2", ""), ("vnflab-docker-1", "198.19.8.3", ""),
        ("vnflab-docker-2", "198.19.8.4", "")]
    assert [i["boot_ms"] for i in result["instances"]] == result["boot_ms"]
    assert result["poll_interval_ms"] == pytest.approx(3.0)  # 3 addresses at 1000 pps
    assert result["rx_timestamps"] == "kernel-software"
    assert result["stop_errors"] == []
    json.dumps(result)  # what the module returns must be JSON


def test_boot_time_instances_that_never_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    fake = install_platform(monkeypatch, boot_mod, runner)
    monkeypatch.setattr(boot_mod, "wait_first_replies",
                        reply_after([410.0, None, 390.0, None], lambda: fake.instances, []))
    result = run_module(boot_mod, {"driver": driver_spec(), "count": 4})
    assert result["boot_ms"][0] == pytest.approx(410.0, abs=1e-6)
    assert result["boot_ms"][1] is None and result["boot_ms"][3] is None
    assert result["boot_ms"][2] == pytest.approx(390.0, abs=1e-6)
    assert result["all_ms"] is None
    assert [i["boot_ms"] is None for i in result["instances"]] == [False, True, False, True]
    assert len(runner.stopped()) == 4


@pytest.mark.parametrize("error", [PermissionError(1, "Operation not permitted"), RuntimeError("prober bug")])
def test_boot_time_instances_are_stopped_when_the_prober_raises(error: Exception,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    install_platform(monkeypatch, boot_mod, runner)

    def broken(*args: Any, **kwargs: Any) -> BootProbeResult:
        raise error

    monkeypatch.setattr(boot_mod, "wait_first_replies", broken)
    args = {"driver": driver_spec(), "count": 5}
    if isinstance(error, OSError):
        result = fail_module(boot_mod, args)
        assert result["msg"] == "probe failed: [Errno 1] Operation not permitted"
    else:
        with patch_module_args(args), pytest.raises(RuntimeError, match="prober bug"):
            boot_mod.main()
    assert runner.started() == [f"vnflab-docker-{i}" for i in range(5)]
    assert runner.stopped() == runner.started()


HEALTH = ["vnflab-health", "check", "${name}"]


def test_boot_time_an_instance_that_died_booting_is_a_failed_start(monkeypatch: pytest.MonkeyPatch) -> None:
    panic = "domain vnflab-docker-1 crashed (xl list state ----c-): Kernel panic - not syncing: Failed to create slab"
    runner = FakeRunner(dead={"vnflab-docker-1": panic})
    fake = install_platform(monkeypatch, boot_mod, runner)
    monkeypatch.setattr(boot_mod, "wait_first_replies", reply_after([5.0, None, 7.0], lambda: fake.instances, []))
    result = fail_module(boot_mod, {"driver": driver_spec(health=HEALTH), "count": 3})
    assert result["start_failed"] is True
    assert result["msg"] == f"driver: 1 of 3 instances failed to start: vnflab-docker-1: died while booting: {panic}"
    assert ["vnflab-health", "check", "vnflab-docker-1"] in runner.calls
    assert runner.stopped() == ["vnflab-docker-0", "vnflab-docker-1", "vnflab-docker-2"]


def test_boot_time_a_silent_instance_that_is_alive_is_lost_not_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    fake = install_platform(monkeypatch, boot_mod, runner)
    monkeypatch.setattr(boot_mod, "wait_first_replies", reply_after([5.0, None], lambda: fake.instances, []))
    result = run_module(boot_mod, {"driver": driver_spec(health=HEALTH), "count": 2})
    assert result["boot_ms"][1] is None
    assert result["probe"]["given_up"] == {}


def test_memory_an_instance_that_died_booting_is_a_failed_start(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner(dead={"vnflab-docker-0": "container exited (137)"})
    fake = install_platform(monkeypatch, memory_mod, runner, memory=lambda inst: drv.InstanceMemory(name=inst.name))
    monkeypatch.setattr(memory_mod, "wait_first_replies", reply_after([None], lambda: fake.instances, []))
    monkeypatch.setattr(memory_mod, "settled_available_mb", lambda spec, reads: 1000.0)
    result = fail_module(memory_mod, {"driver": driver_spec(health=HEALTH), "count": 1, "settle_s": 0})
    assert result["start_failed"] is True
    assert result["msg"].endswith("vnflab-docker-0: died while booting: container exited (137)")


def test_boot_time_failed_start_fails_and_still_stops_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner(start_fails={"vnflab-docker-1": "docker: Error response from daemon: Conflict."})
    fake = install_platform(monkeypatch, boot_mod, runner)
    monkeypatch.setattr(boot_mod, "wait_first_replies", reply_after([1.0, None, 2.0], lambda: fake.instances, []))
    result = fail_module(boot_mod, {"driver": driver_spec(), "count": 3})
    assert result["msg"] == ("driver: 1 of 3 instances failed to start: vnflab-docker-1: "
                             "docker: Error response from daemon: Conflict.")
    assert result["start_failed"] is True
    assert runner.stopped() == ["vnflab-docker-0", "vnflab-docker-1", "vnflab-docker-2"]


def test_boot_time_failed_start_names_the_stop_errors_too(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner(start_fails={"vnflab-docker-0": "xl: Segmentation fault"},
                        stop_fails={"vnflab-docker-0": "no such domain"})
    fake = install_platform(monkeypatch, boot_mod, runner)
    monkeypatch.setattr(boot_mod, "wait_first_replies", reply_after([None, 1.0], lambda: fake.instances, []))
    result = fail_module(boot_mod, {"driver": driver_spec(), "count": 2})
    assert result["msg"] == ("driver: 1 of 2 instances failed to start: vnflab-docker-0: xl: Segmentation fault "
                             "(and 1 stop error(s): vnflab-docker-0: no such domain)")
    assert result["start_failed"] is True
    assert result["stop_errors"] == ["vnflab-docker-0: no such domain"]


@pytest.mark.parametrize("module", [boot_mod, memory_mod], ids=["vnf_boot_time", "vnf_memory"])
def test_state_absent_only_stops_the_batch_and_reports_stop_errors(module: ModuleType,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner(stop_fails={"vnflab-docker-1": "Error response from daemon: No such container"})
    install_platform(monkeypatch, module, runner)
    monkeypatch.setattr(module, "wait_first_replies", never_probe)
    if module is memory_mod:
        monkeypatch.setattr(module, "server_available_mb", never_probe)
    result = run_module(module, {"driver": driver_spec(), "count": 3, "state": "absent"})
    assert runner.started() == []
    assert runner.stopped() == ["vnflab-docker-0", "vnflab-docker-1", "vnflab-docker-2"]
    assert result["stop_errors"] == ["vnflab-docker-1: Error response from daemon: No such container"]
    assert result["changed"] is True


def test_state_absent_in_check_mode_stops_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    install_platform(monkeypatch, boot_mod, runner)
    result = run_module(boot_mod, {"driver": driver_spec(), "count": 2, "state": "absent"}, check_mode=True)
    assert runner.calls == []
    assert (result["changed"], result["msg"]) == (False, "check mode: would stop 2 instance(s)")


def test_a_bad_driver_is_not_reported_as_a_failed_start(monkeypatch: pytest.MonkeyPatch) -> None:
    result = fail_module(boot_mod, {"driver": {"label": "x"}, "count": 1})
    assert "start_failed" not in result


# ---------------------------------------------------------------- vnf_memory run


def test_memory_run(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()

    def weigh(instance: drv.Instance) -> drv.InstanceMemory:
        assert runner.stopped() == [], "memory must be read while the instances run"
        return drv.InstanceMemory(name=instance.name, pss_mb=2.0 + instance.index, cgroup_mb=0.5, pids=[10])

    fake = install_platform(monkeypatch, memory_mod, runner, memory=weigh)
    monkeypatch.setattr(memory_mod, "wait_first_replies", reply_after([5.0, None], lambda: fake.instances, []))
    # three reads each: before start (median 1001), running (median 950), after stop (median 999)
    readings = iter([1000.0, 1300.0, 1001.0, 950.0, 940.0, 2000.0, 999.0, 1003.0, 10.0])
    stopped_at_read: list[int] = []

    def read(spec: dict[str, Any]) -> float:
        stopped_at_read.append(len(runner.stopped()))
        return next(readings)

    monkeypatch.setattr(memory_mod, "server_available_mb", read)
    monkeypatch.setattr(memory_mod.time, "sleep", lambda seconds: None)
    result = run_module(memory_mod, {"driver": driver_spec(), "count": 2, "reads": 3, "settle_s": 0})
    assert stopped_at_read == [0] * 6 + [2] * 3
    assert (result["available_before_mb"], result["available_after_mb"]) == (1001.0, 950.0)
    assert result["available_restored_mb"] == 999.0
    assert result["server_used_mb"] == pytest.approx((1001.0 + 999.0) / 2 - 950.0)
    assert result["answered"] == 1
    assert result["instances"] == [
        {"name": "vnflab-docker-0", "pss_mb": 2.0, "cgroup_mb": 0.5, "hypervisor_mb": None},
        {"name": "vnflab-docker-1", "pss_mb": 3.0, "cgroup_mb": 0.5, "hypervisor_mb": None},
    ]
    assert runner.stopped() == ["vnflab-docker-0", "vnflab-docker-1"]


def test_memory_failed_start_stops_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner(start_fails={"vnflab-docker-0": "no space left"})
    fake = install_platform(monkeypatch, memory_mod, runner)
    monkeypatch.setattr(memory_mod, "wait_first_replies", reply_after([None, 1.0], lambda: fake.instances, []))
    monkeypatch.setattr(memory_mod, "server_available_mb", lambda spec: 1000.0)
    result = fail_module(memory_mod, {"driver": driver_spec(), "count": 2, "reads": 1})
    assert result["msg"] == "driver: 1 of 2 instances failed to start: vnflab-docker-0: no space left"
    assert result["start_failed"] is True
    assert runner.stopped() == ["vnflab-docker-0", "vnflab-docker-1"]
    assert result["stop_errors"] == []


def test_memory_failed_start_names_the_stop_errors_too(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner(start_fails={"vnflab-docker-0": "no space left"},
                        stop_fails={"vnflab-docker-1": "xenstore does not answer"})
    fake = install_platform(monkeypatch, memory_mod, runner)
    monkeypatch.setattr(memory_mod, "wait_first_replies", reply_after([None, 1.0], lambda: fake.instances, []))
    monkeypatch.setattr(memory_mod, "server_available_mb", lambda spec: 1000.0)
    result = fail_module(memory_mod, {"driver": driver_spec(), "count": 2, "reads": 1})
    assert result["msg"] == ("driver: 1 of 2 instances failed to start: vnflab-docker-0: no space left "
                             "(and 1 stop error(s): vnflab-docker-1: xenstore does not answer)")
    assert (result["start_failed"], result["stop_errors"]) == (True, ["vnflab-docker-1: xenstore does not answer"])


# ---------------------------------------------------------------- vnf_response_time run


class FakeProber:
    """EchoProber stand-in: every size gets rtt = size / 10 us on proxy, size / 20 on direct; one lost."""

    instances: list[FakeProber] = []

    def __init__(self, mode: str = "icmp", udp_port: int = 7007) -> None:
        self.mode, self.udp_port = mode, udp_port
        self.calls: list[dict[str, Any]] = []
        self.closed = False
        FakeProber.instances.append(self)

    def __enter__(self) -> FakeProber:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closed = True

    def measure(self, targets: dict[str, str], payload_bytes: int, samples: int, warmup: int,
                interval_s: float, timeout_s: float) -> EchoMeasurement:
        self.calls.append({"targets": targets, "payload_bytes": payload_bytes, "samples": samples,
                           "warmup": warmup, "interval_s": interval_s, "timeout_s": timeout_s})
        rtts: dict[str, list[float | None]] = {
            "proxy": [payload_bytes / 10] * (samples - 1) + [None],
            "direct": [payload_bytes / 20] * samples,
        }
        return EchoMeasurement(mode=self.mode, payload_bytes=payload_bytes, rtt_us=rtts,
                               tx_source="kernel-software", rx_source="kernel-software")


def test_response_run(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeProber.instances = []
    monkeypatch.setattr(response_mod, "EchoProber", FakeProber)
    result = run_module(response_mod, {**RESPONSE_ARGS, "sizes": [64, 1472], "samples": 4, "warmup": 2,
                                       "interval_ms": 5, "timeout_ms": 250, "mode": "udp", "udp_port": 7777})
    (prober,) = FakeProber.instances
    assert (prober.mode, prober.udp_port, prober.closed) == ("udp", 7777, True)
    assert [call["payload_bytes"] for call in prober.calls] == [64, 1472]
    assert prober.calls[0]["targets"] == {"proxy": "198.18.11.1", "direct": "198.18.0.2"}
    assert (prober.calls[0]["samples"], prober.calls[0]["warmup"]) == (4, 2)
    assert prober.calls[0]["interval_s"] == pytest.approx(0.005)
    assert prober.calls[0]["timeout_s"] == pytest.approx(0.25)
    assert result["mode"] == "udp"
    assert result["timestamping"] == "tx=kernel-software rx=kernel-software"
    assert result["results"] == [
        {"path": "proxy", "size": 64, "rtt_us": [6.4, 6.4, 6.4, None], "lost": 1},
        {"path": "direct", "size": 64, "rtt_us": [3.2, 3.2, 3.2, 3.2], "lost": 0},
        {"path": "proxy", "size": 1472, "rtt_us": [147.2, 147.2, 147.2, None], "lost": 1},
        {"path": "direct", "size": 1472, "rtt_us": [73.6, 73.6, 73.6, 73.6], "lost": 0},
    ]


def test_response_socket_error_fails_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_raw_socket(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(response_mod, "EchoProber", no_raw_socket)
    result = fail_module(response_mod, RESPONSE_ARGS)
    assert result["msg"] == "probe failed: [Errno 1] Operation not permitted"


# ---------------------------------------------------------------- vnflab_link


@dataclass
class FakeIp:
    """iproute2 answering from a model: namespaces -> devices; records every command it is given."""

    netns: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    root: dict[str, dict[str, Any]] = field(default_factory=dict)
    pid_ns: dict[int, str] = field(default_factory=dict)
    routes: dict[tuple[str | None, str], list[dict[str, str]]] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        namespace: str | None = None
        args = list(argv)
        if args[:2] == ["nsenter", "-t"]:
            namespace = self.pid_ns[int(args[2])]
            args = args[5:]
        assert args[0] == "ip", argv
        args = args[1:]
        if args[:1] == ["-n"]:
            namespace, args = args[1], args[2:]
        if args == ["-j", "netns", "list"]:
            return 0, json.dumps([{"name": name} for name in self.netns]) if self.netns else "", ""
        devices = self.root if namespace is None else self.netns[namespace]
        if args[:5] == ["-j", "-d", "link", "show", "dev"]:
            device = devices.get(args[5])
            if device is None:
                return 1, "", f'Device "{args[5]}" does not exist.\n'
            return 0, json.dumps([{k: v for k, v in device.items() if k != "addr"}]), ""
        if args[:5] == ["-j", "-4", "addr", "show", "dev"]:
            device = devices[args[5]]
            info = [{"local": a.split("/")[0], "prefixlen": int(a.split("/")[1])} for a in device.get("addr", [])]
            return 0, json.dumps([{"ifname": args[5], "addr_info": info}]), ""
        if args[:6] == ["-j", "-4", "route", "show", "to", "exact"]:
            return 0, json.dumps(self.routes.get((namespace, args[6]), [])), ""
        return 0, "", ""  # a change

    def changes(self) -> list[list[str]]:
        return [argv for argv in self.calls if "-j" not in argv]


def link_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "name": "vla-docker", "kind": "veth", "state": "present", "netns": None, "master": "vlb-docker-a",
        "addresses": [], "mtu": None, "peer": "a-docker", "peer_netns": "vnflab-a", "peer_netns_pid": None,
        "peer_master": None, "peer_addresses": ["198.18.11.2/24"], "routes": [],
    }
    params.update(overrides)
    return params


def plan(ip: FakeIp, params: dict[str, Any], check_mode: bool = True) -> list[str]:
    planner = link_mod.Planner(IpRoute(ip), check_mode)
    if params["kind"] == "netns":
        link_mod.manage_netns(planner, params)
    else:
        link_mod.manage_device(planner, params)
    return planner.actions


def test_link_new_veth_with_peer_in_a_namespace() -> None:
    ip = FakeIp(netns={"vnflab-a": {}}, root={"vlb-docker-a": {"ifname": "vlb-docker-a", "flags": ["UP"]}})
    actions = plan(ip, link_params())
    assert actions == [
        "ip link add vla-docker type veth peer name a-docker netns vnflab-a",
        "ip link set dev vla-docker master vlb-docker-a",
        "ip link set dev vla-docker up",
        "ip -n vnflab-a addr add 198.18.11.2/24 dev a-docker",
        "ip -n vnflab-a link set dev a-docker up",
    ]
    assert ip.changes() == []  # check mode ran queries only


def test_link_new_veth_with_peer_in_a_process_namespace_and_mtu() -> None:
    ip = FakeIp(pid_ns={4242: "container"}, netns={"container": {}})
    actions = plan(ip, link_params(master=None, peer="eth1", peer_netns=None, peer_netns_pid=4242, mtu=9000,
                                   addresses=["198.19.8.1/24"], peer_addresses=["198.19.8.2/24"]))
    assert actions == [
        "ip link add vla-docker type veth peer name eth1 netns 4242",
        "ip link set dev vla-docker mtu 9000",
        "ip addr add 198.19.8.1/24 dev vla-docker",
        "ip link set dev vla-docker up",
        "nsenter -t 4242 -n -- ip link set dev eth1 mtu 9000",
        "nsenter -t 4242 -n -- ip addr add 198.19.8.2/24 dev eth1",
        "nsenter -t 4242 -n -- ip link set dev eth1 up",
    ]
    assert ip.changes() == []


def configured_lab() -> FakeIp:
    return FakeIp(
        netns={"vnflab-a": {"a-docker": {"ifname": "a-docker", "flags": ["BROADCAST", "UP", "LOWER_UP"],
                                         "mtu": 1500, "addr": ["198.18.11.2/24"]}}},
        root={"vlb-docker-a": {"ifname": "vlb-docker-a", "flags": ["UP"], "mtu": 1500},
              "vla-docker": {"ifname": "vla-docker", "flags": ["BROADCAST", "UP", "LOWER_UP"], "mtu": 1500,
                             "master": "vlb-docker-a", "addr": []}},
        routes={("vnflab-a", "198.18.12.0/24"): [{"dst": "198.18.12.0/24", "gateway": "198.18.11.1",
                                                  "dev": "a-docker"}]},
    )


@pytest.mark.parametrize("check_mode", [True, False])
def test_link_existing_configured_veth_is_idempotent(check_mode: bool) -> None:
    ip = configured_lab()
    assert plan(ip, link_params(mtu=1500), check_mode=check_mode) == []
    assert ip.changes() == []


def test_link_existing_veth_with_drift_is_repaired() -> None:
    ip = configured_lab()
    ip.root["vla-docker"]["master"] = "other-br"
    ip.netns["vnflab-a"]["a-docker"]["flags"] = ["BROADCAST"]
    ip.netns["vnflab-a"]["a-docker"]["addr"] = ["198.18.11.9/24"]  # others are left alone
    actions = plan(ip, link_params())
    assert actions == [
        "ip link set dev vla-docker master vlb-docker-a",
        "ip -n vnflab-a addr add 198.18.11.2/24 dev a-docker",
        "ip -n vnflab-a link set dev a-docker up",
    ]


def test_link_existing_veth_whose_peer_is_elsewhere() -> None:
    ip = configured_lab()
    del ip.netns["vnflab-a"]["a-docker"]
    with pytest.raises(IpError, match="its peer a-docker is not where expected"):
        plan(ip, link_params())


def test_link_routes_through_a_device() -> None:
    ip = configured_lab()
    ip.netns["vnflab-a"]["a-docker"]["flags"] = ["UP"]
    params = link_params(name="a-docker", kind="device", netns="vnflab-a", master=None, peer=None,
                         peer_netns=None, peer_addresses=[], addresses=["198.18.11.2/24"],
                         routes=[{"to": "198.18.12.0/24", "via": "198.18.11.1"},
                                 {"to": "198.18.0.0/24", "via": "198.18.11.1"}])
    assert plan(ip, params) == ["ip -n vnflab-a route replace 198.18.0.0/24 via 198.18.11.1 dev a-docker"]
    absent = plan(ip, {**params, "state": "absent"})
    assert absent == ["ip -n vnflab-a route del 198.18.12.0/24 via 198.18.11.1 dev a-docker",
                      "ip -n vnflab-a addr del 198.18.11.2/24 dev a-docker"]


def test_link_missing_device_of_kind_device() -> None:
    with pytest.raises(IpError, match="device eth9 does not exist"):
        plan(FakeIp(), link_params(name="eth9", kind="device", master=None, peer=None, peer_netns=None))


def test_link_bridge_created_outside_check_mode_runs_the_actions() -> None:
    ip = FakeIp()
    params = link_params(name="vlb-docker-a", kind="bridge", master=None, peer=None, peer_netns=None,
                         peer_addresses=[])
    actions = plan(ip, params, check_mode=False)
    assert actions == ["ip link add name vlb-docker-a type bridge", "ip link set dev vlb-docker-a up"]
    assert [" ".join(argv) for argv in ip.changes()] == actions


@pytest.mark.parametrize(
    ("namespaces", "state", "expected"),
    [
        ({}, "present", ["ip netns add vnflab-a", "ip -n vnflab-a link set dev lo up"]),
        ({"vnflab-a": {}}, "present", []),
        ({"vnflab-a": {}}, "absent", ["ip netns delete vnflab-a"]),
        ({}, "absent", []),
    ],
)
def test_link_netns(namespaces: dict[str, dict[str, Any]], state: str, expected: list[str]) -> None:
    ip = FakeIp(netns=namespaces)
    assert plan(ip, link_params(name="vnflab-a", kind="netns", state=state)) == expected
    assert ip.changes() == []


def test_link_module_check_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    ip = FakeIp(netns={"vnflab-a": {}})
    environ: list[dict[str, str] | None] = []

    def run_command(self: basic.AnsibleModule, args: list[str], environ_update: dict[str, str] | None = None,
                    **kwargs: Any) -> tuple[int, str, str]:
        environ.append(environ_update)
        return ip(args)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    args = {"name": "vla-docker", "kind": "veth", "master": "vlb-docker-a", "peer": "a-docker",
            "peer_netns": "vnflab-a", "peer_addresses": ["198.18.11.2/24"]}
    result = run_module(link_mod, args, check_mode=True)
    assert result["changed"] is True
    assert result["actions"][0] == "ip link add vla-docker type veth peer name a-docker netns vnflab-a"
    assert ip.changes() == []
    assert all(env == {"LC_ALL": "C"} for env in environ)
    ip = configured_lab()
    assert run_module(link_mod, args, check_mode=True) == {"changed": False, "actions": []}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"name": "vla-firecracker0", "kind": "bridge"}, "name: device names have at most 15 characters"),
        ({"name": "vla-docker", "kind": "veth"}, "peer"),
        ({"name": "x", "kind": "veth", "peer": "y", "peer_netns": "a", "peer_netns_pid": 1}, "mutually exclusive"),
        ({"name": "x", "kind": "tap"}, "kind"),
    ],
)
def test_link_module_argument_errors(args: dict[str, Any], needle: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(basic.AnsibleModule, "run_command", never_probe)
    assert needle in fail_module(link_mod, args)["msg"]


# ---------------------------------------------------------------- vnflab_service


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by a test; killed (by pid) and reaped afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)


def spawn(children: list[subprocess.Popen[bytes]], ignore_term: bool = False,
          posing_as: Path | None = None) -> subprocess.Popen[bytes]:
    """A sleeping process; with posing_as (a pid file), its command line is the supervisor's for that file."""
    code = "import signal, sys, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(60)\n"
    poses = ["/opt/vnflab/vnflab_supervise.py", "--pidfile", str(posing_as)] if posing_as else []
    child = subprocess.Popen([sys.executable, "-c", code, *poses], stdout=subprocess.PIPE)
    children.append(child)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    return child


def service_args(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    args = {"name": "vnflab-b-udp-echo", "command": ["/usr/bin/udp-echo", "--port", "7007"],
            "supervisor": "/opt/vnflab/vnflab_supervise.py", "run_dir": str(tmp_path / "run"),
            "log_dir": str(tmp_path / "log"), "stop_timeout_s": 5}
    args.update(overrides)
    return args


def PIDFILE(tmp_path: Path) -> Path:  # noqa: N802 - reads as the constant it is per test
    return tmp_path / "run" / "vnflab-b-udp-echo.pid"


def write_pidfile(tmp_path: Path, pid: int | str) -> Path:
    (tmp_path / "run").mkdir(exist_ok=True)
    pidfile = tmp_path / "run" / "vnflab-b-udp-echo.pid"
    pidfile.write_text(f"{pid}\n", encoding="ascii")
    return pidfile


def test_service_alive_and_read_pid(tmp_path: Path, children: list[subprocess.Popen[bytes]]) -> None:
    child = spawn(children)
    assert service_mod.alive(child.pid)
    assert not service_mod.alive(None) and not service_mod.alive(0)
    os.kill(child.pid, signal.SIGKILL)
    assert service_mod.wait_gone(child.pid, 5.0)  # a zombie is gone
    for text, expected in (("4242\n", 4242), ("", None), ("0", None), ("garbage", None)):
        (tmp_path / "p.pid").write_text(text, encoding="ascii")
        assert service_mod.read_pid(str(tmp_path / "p.pid")) == expected
    assert service_mod.read_pid(str(tmp_path / "missing.pid")) is None


def test_service_start(tmp_path: Path, children: list[subprocess.Popen[bytes]],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[list[str]] = []

    def run_command(self: basic.AnsibleModule, argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
        commands.append(argv)
        child = spawn(children, posing_as=PIDFILE(tmp_path))  # the "supervisor" writes its pid file, keeps running
        write_pidfile(tmp_path, child.pid)
        return 0, "", ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    result = run_module(service_mod, service_args(tmp_path))
    pidfile = tmp_path / "run" / "vnflab-b-udp-echo.pid"
    assert result == {"changed": True, "pid": children[0].pid, "pidfile": str(pidfile)}
    (argv,) = commands
    assert Path(argv[0]).name.startswith("python3")
    assert argv[1:] == ["/opt/vnflab/vnflab_supervise.py", "--pidfile", str(pidfile),
                        "--log", str(tmp_path / "log" / "vnflab-b-udp-echo.log"),
                        "--", "/usr/bin/udp-echo", "--port", "7007"]
    assert (tmp_path / "log").is_dir()
    # second run: already running, nothing to do
    assert run_module(service_mod, service_args(tmp_path)) == {
        "changed": False, "pid": children[0].pid, "pidfile": str(pidfile)}
    assert len(commands) == 1


def test_service_start_in_check_mode_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(basic.AnsibleModule, "run_command", never_probe)
    result = run_module(service_mod, service_args(tmp_path), check_mode=True)
    assert (result["changed"], result["pid"]) == (True, None)
    assert not (tmp_path / "run").exists()


def test_service_start_with_a_stale_pidfile(tmp_path: Path, children: list[subprocess.Popen[bytes]],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    dead = spawn(children)
    os.kill(dead.pid, signal.SIGKILL)
    dead.wait()
    write_pidfile(tmp_path, dead.pid)

    def run_command(self: basic.AnsibleModule, argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
        write_pidfile(tmp_path, spawn(children, posing_as=PIDFILE(tmp_path)).pid)
        return 0, "", ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    result = run_module(service_mod, service_args(tmp_path))
    assert result["changed"] is True and result["pid"] == children[1].pid


def test_service_that_does_not_come_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda self, argv, **kwargs: (1, "", "python3: can't open file\n"))
    result = fail_module(service_mod, service_args(tmp_path))
    assert result["msg"] == "service vnflab-b-udp-echo did not start (rc=1): python3: can't open file\n"


def test_service_started_needs_a_command(tmp_path: Path) -> None:
    args = service_args(tmp_path)
    del args["command"]
    assert "command" in fail_module(service_mod, args)["msg"]


def test_service_stop(tmp_path: Path, children: list[subprocess.Popen[bytes]]) -> None:
    child = spawn(children, posing_as=PIDFILE(tmp_path))
    pidfile = write_pidfile(tmp_path, child.pid)
    # check mode: reports the change, leaves the process alone
    result = run_module(service_mod, service_args(tmp_path, state="stopped"), check_mode=True)
    assert (result["changed"], result["pid"]) == (True, None)
    assert child.poll() is None and service_mod.alive(child.pid)
    result = run_module(service_mod, service_args(tmp_path, state="stopped"))
    assert result == {"changed": True, "pid": None, "pidfile": str(pidfile)}
    assert child.wait(timeout=5) == -signal.SIGTERM
    # stopped already: nothing to do
    assert run_module(service_mod, service_args(tmp_path, state="stopped"))["changed"] is False


def test_service_stop_escalates_to_sigkill(tmp_path: Path, children: list[subprocess.Popen[bytes]]) -> None:
    child = spawn(children, ignore_term=True, posing_as=PIDFILE(tmp_path))
    write_pidfile(tmp_path, child.pid)
    result = run_module(service_mod, service_args(tmp_path, state="stopped", stop_timeout_s=0.2))
    assert result["changed"] is True
    assert child.wait(timeout=5) == -signal.SIGKILL


@pytest.mark.parametrize("impostor", ["another command", "started after the pid file"])
def test_service_stop_never_kills_a_process_a_stale_pidfile_names(
        tmp_path: Path, children: list[subprocess.Popen[bytes]], impostor: str) -> None:
    if impostor == "another command":
        child = spawn(children)
        pidfile = write_pidfile(tmp_path, child.pid)
    else:  # the supervisor's command line, but the PID was recycled: the process is younger than the file
        pidfile = write_pidfile(tmp_path, 0)
        child = spawn(children, posing_as=PIDFILE(tmp_path))
        pidfile.write_text(f"{child.pid}\n", encoding="ascii")
        past = time.time() - 120
        os.utime(pidfile, (past, past))
    result = run_module(service_mod, service_args(tmp_path, state="stopped", stop_timeout_s=0.2))
    assert result["changed"] is True  # the stale pid file was removed, and nothing else
    time.sleep(0.3)
    assert child.poll() is None and service_mod.alive(child.pid)
    assert not pidfile.exists()


def test_service_stop_without_pidfile(tmp_path: Path) -> None:
    result = run_module(service_mod, service_args(tmp_path, state="stopped"))
    assert (result["changed"], result["pid"]) == (False, None)


# ---------------------------------------------------------------- vnflab_host_facts


@pytest.mark.parametrize("check_mode", [False, True])
def test_host_facts(check_mode: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []

    def get_bin_path(self: basic.AnsibleModule, name: str, required: bool = False, opt_dirs: Any = None) -> str | None:
        return f"/usr/bin/{name}" if name in ("ip", "iptables") else None

    def run_command(self: basic.AnsibleModule, argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
        ran.append(argv)
        if argv[0] == "ip":
            return 0, "ip utility, iproute2-6.1.0, libbpf 1.1.0\n", ""
        return 1, "", "iptables: permission denied\n"

    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    result = run_module(facts_mod, {}, check_mode=check_mode)
    assert result["changed"] is False
    facts = result["ansible_facts"]["vnflab_host"]
    assert facts["tools"]["ip"] == "ip utility, iproute2-6.1.0, libbpf 1.1.0"
    assert facts["tools"]["iptables"] is None  # failed: null, never guessed
    assert facts["tools"]["docker_server"] is None and facts["tools"]["xl"] is None
    assert sorted(argv[0] for argv in ran) == ["ip", "iptables"]
    assert facts["kernel"] == platform.release()
    assert facts["cpu_count"] == os.cpu_count()
    assert facts["python"] == platform.python_version()
    total_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal:"))
    assert facts["mem_total_mb"] == pytest.approx(total_kib / 1024)
    assert facts["kvm_device"] == os.path.exists("/dev/kvm")
    json.dumps(facts)


@pytest.mark.parametrize(("probe", "module_args", "deadline_s", "poll_interval_s"), [
    ({}, {}, 300.0, 0.001),  # nothing said: 300 s, 1 ms
    ({"boot_timeout_s": 60, "boot_timeout_per_instance_s": 20, "poll_interval_ms": 20}, {}, 60.0 + 20 * 3, 0.02),
    ({"boot_timeout_s": 60, "boot_timeout_per_instance_s": 20, "poll_interval_ms": 20},
     {"timeout_s": 9, "poll_interval_ms": 4.0}, 9.0, 0.004),  # the module's options win
])
def test_boot_probe_settings_come_from_the_driver_unless_given(monkeypatch: pytest.MonkeyPatch, probe: dict[str, float],
                                                                module_args: dict[str, float], deadline_s: float,
                                                                poll_interval_s: float) -> None:
    runner = FakeRunner()
    fake = install_platform(monkeypatch, boot_mod, runner)
    probe_calls: list[dict[str, Any]] = []
    replies = reply_after([1.0, 2.0, 3.0], lambda: fake.instances, probe_calls)
    monkeypatch.setattr(boot_mod, "wait_first_replies", replies)
    spec = driver_spec(probe=probe) if probe else driver_spec()
    run_module(boot_mod, {"driver": spec, "count": 3, "max_pps": 20000, **module_args})
    assert probe_calls[0]["deadline_s"] == pytest.approx(deadline_s)
    assert probe_calls[0]["poll_interval_s"] == pytest.approx(poll_interval_s)


def test_memory_probe_deadline_grows_with_n_from_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    fake = install_platform(monkeypatch, memory_mod, runner, memory=lambda inst: drv.InstanceMemory(name=inst.name))
    probe_calls: list[dict[str, Any]] = []
    monkeypatch.setattr(memory_mod, "wait_first_replies", reply_after([1.0, 2.0], lambda: fake.instances, probe_calls))
    monkeypatch.setattr(memory_mod, "settled_available_mb", lambda spec, reads: 1000.0)
    spec = driver_spec(probe={"boot_timeout_s": 100, "boot_timeout_per_instance_s": 15, "poll_interval_ms": 50})
    run_module(memory_mod, {"driver": spec, "count": 2, "settle_s": 0, "reads": 1})
    assert probe_calls[0]["deadline_s"] == pytest.approx(130.0)
    assert probe_calls[0]["poll_interval_s"] == pytest.approx(0.05)


def test_start_concurrency_times_both_ways_and_stops_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    install_platform(monkeypatch, concurrency_mod, runner)
    clock = iter([0.0, 2.0, 10.0, 16.0])  # together: 2 s; one by one: 6 s
    monkeypatch.setattr(concurrency_mod, "clock", lambda: next(clock))
    result = run_module(concurrency_mod, {"driver": driver_spec(), "count": 3})
    names = ["vnflab-docker-0", "vnflab-docker-1", "vnflab-docker-2"]
    assert sorted(runner.started()) == sorted(names * 2) and sorted(runner.stopped()) == sorted(names * 2)
    assert result["max_parallel"] == 3
    assert (result["concurrent_s"], result["sequential_s"], result["ratio"]) == (2.0, 6.0, 0.333)


def test_start_concurrency_fails_naming_the_instance_and_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner(start_fails={"vnflab-docker-1": "no such image"})
    install_platform(monkeypatch, concurrency_mod, runner)
    result = fail_module(concurrency_mod, {"driver": driver_spec(), "count": 2})
    assert "vnflab-docker-1: no such image" in result["msg"]
    assert runner.stopped() == ["vnflab-docker-0", "vnflab-docker-1"]


def test_start_concurrency_needs_two_instances() -> None:
    result = fail_module(concurrency_mod, {"driver": driver_spec(), "count": 1})
    assert result["msg"].startswith("count: must be at least 2")
