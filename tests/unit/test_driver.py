"""The declarative platform driver (module_utils/vnflab_host/driver.py), run with fake commands and fake /proc."""

from __future__ import annotations

import ipaddress
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.vnflab_host import driver as drv
from ansible.module_utils.vnflab_host import meminfo

LABEL = "docker/debian12-iptables (native, stand-in for CoreOS)"


def make_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "docker",
        "label": LABEL,
        "instance_prefix": "vnflab-docker-",
        "network": {"cidr": "198.19.8.0/24", "first_host": 2},
        "start": ["docker", "run", "--detach", "--name", "${name}", "--ip", "${address}", "img"],
        "stop": ["docker", "rm", "--force", "${name}"],
        "pid": ["docker", "inspect", "--format", "{{.State.Pid}}", "${name}"],
        "own_cgroup": True,
    }
    spec.update(overrides)
    return spec


Handler = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def ok(argv: list[str], stdout: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(argv, 0, stdout, "")


class FakeRunner:
    """Stands in for subprocess.run: records every call (argv, CLOCK_REALTIME at entry and exit)."""

    def __init__(self, handler: Handler | None = None, sleep_s: float = 0.0) -> None:
        self.handler = handler or ok
        self.sleep_s = sleep_s
        self.calls: list[tuple[list[str], int, int]] = []
        self.kwargs: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        entered = time.clock_gettime_ns(time.CLOCK_REALTIME)
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            if self.sleep_s:
                time.sleep(self.sleep_s)
            return self.handler(list(argv))
        finally:
            with self._lock:
                self.active -= 1
                self.calls.append((list(argv), entered, time.clock_gettime_ns(time.CLOCK_REALTIME)))
                self.kwargs.append(kwargs)

    def argvs(self) -> list[list[str]]:
        return [argv for argv, _, _ in self.calls]


# ---------------------------------------------------------------- specification


def test_valid_spec_has_no_problems() -> None:
    assert drv.validate_spec(make_spec()) == []
    assert drv.validate_spec(make_spec(memory_kib=["xl", "list", "${name}"], start=["run", 7])) == []


@pytest.mark.parametrize("key", drv.REQUIRED_KEYS)
def test_missing_key(key: str) -> None:
    spec = make_spec()
    del spec[key]
    problems = drv.validate_spec(spec)
    assert f"missing key '{key}'" in problems
    with pytest.raises(drv.DriverError, match=f"missing key '{key}'"):
        drv.PlatformDriver(spec)


@pytest.mark.parametrize("key", ["start", "stop", "pid", "memory_kib"])
@pytest.mark.parametrize("value", ["docker run ${name}", [], [1.5], [["docker"]], {"argv": "x"}, [None]])
def test_bad_argv_template(key: str, value: Any) -> None:
    problems = drv.validate_spec(make_spec(**{key: value}))
    assert problems == [f"'{key}' must be a non-empty list of strings (an argv template)"]


@pytest.mark.parametrize(
    ("network", "message"),
    [
        ({"cidr": "10.0.0.0/24"}, "'network.cidr' 10.0.0.0/24 is outside the benchmarking range"),
        ({"cidr": "192.168.1.0/24"}, "'network.cidr' 192.168.1.0/24 is outside the benchmarking range"),
        ({"cidr": "198.20.0.0/24"}, "'network.cidr' 198.20.0.0/24 is outside the benchmarking range"),
        ({"cidr": "198.16.0.0/14"}, "'network.cidr' 198.16.0.0/14 is outside the benchmarking range"),
        ({"cidr": "198.19.8.1/24"}, "'network.cidr' is not a network"),
        ({}, "'network.cidr' is not a network"),
        ("198.19.8.0/24", "'network.cidr' is not a network"),
    ],
)
def test_network_outside_lab_range_or_invalid(network: Any, message: str) -> None:
    problems = drv.validate_spec(make_spec(network=network))
    assert len(problems) == 1
    assert problems[0].startswith(message)
    with pytest.raises(drv.DriverError, match="invalid driver specification"):
        drv.PlatformDriver(make_spec(network=network))


def test_all_problems_are_reported_together() -> None:
    spec = make_spec(stop="docker rm", network={"cidr": "10.1.0.0/16"})
    del spec["label"]
    with pytest.raises(drv.DriverError) as caught:
        drv.PlatformDriver(spec)
    message = str(caught.value)
    assert "missing key 'label'" in message
    assert "'stop' must be" in message
    assert "10.1.0.0/16" in message


# ---------------------------------------------------------------- instances


def test_instances_addresses_names_macs() -> None:
    driver = drv.PlatformDriver(make_spec())
    assert (driver.name, driver.label, driver.gateway) == ("docker", LABEL, "198.19.8.1")
    instances = driver.instances(3)
    assert [inst.index for inst in instances] == [0, 1, 2]
    assert [inst.name for inst in instances] == ["vnflab-docker-0", "vnflab-docker-1", "vnflab-docker-2"]
    assert [inst.address for inst in instances] == ["198.19.8.2", "198.19.8.3", "198.19.8.4"]
    # 198.19.8.2 = c6.13.08.02
    assert [inst.mac for inst in instances] == ["02:00:c6:13:08:02", "02:00:c6:13:08:03", "02:00:c6:13:08:04"]
    assert all((inst.start_ns, inst.started_ns, inst.start_error) == (0, 0, "") for inst in instances)


@pytest.mark.parametrize("address", ["198.18.0.1", "198.19.255.254", "198.19.8.2"])
def test_instance_mac_is_locally_administered_unicast_and_encodes_the_address(address: str) -> None:
    mac = drv.instance_mac(address)
    octets = [int(part, 16) for part in mac.split(":")]
    assert len(octets) == 6
    assert octets[0] & 0x02 and not octets[0] & 0x01
    assert ipaddress.IPv4Address(bytes(octets[2:])) == ipaddress.IPv4Address(address)


def test_first_host_and_gateway_come_from_the_spec() -> None:
    driver = drv.PlatformDriver(make_spec(network={"cidr": "198.18.64.0/26", "first_host": 10,
                                                   "gateway": "198.18.64.62"}))
    assert driver.gateway == "198.18.64.62"
    assert [inst.address for inst in driver.instances(2)] == ["198.18.64.10", "198.18.64.11"]
    assert driver.capacity == 64 - 1 - 10


@pytest.mark.parametrize(("cidr", "capacity"), [("198.19.8.0/24", 253), ("198.19.8.0/22", 1021),
                                                ("198.19.8.0/29", 5), ("198.19.8.0/30", 1)])
def test_capacity_limit(cidr: str, capacity: int) -> None:
    driver = drv.PlatformDriver(make_spec(network={"cidr": cidr}))
    net = ipaddress.ip_network(cidr)
    assert driver.capacity == capacity
    instances = driver.instances(capacity)
    # every instance address is a host address: not the network, gateway (.1) or broadcast address
    last = ipaddress.ip_address(instances[-1].address)
    assert last == net.broadcast_address - 1
    assert len({inst.address for inst in instances}) == capacity
    with pytest.raises(drv.DriverError, match=f"count {capacity + 1} exceeds the {capacity} addresses of {cidr}"):
        driver.instances(capacity + 1)


@pytest.mark.parametrize("count", [0, -1])
def test_count_below_one(count: int) -> None:
    with pytest.raises(drv.DriverError, match="at least 1"):
        drv.PlatformDriver(make_spec()).instances(count)


# ---------------------------------------------------------------- render


def test_render_replaces_dollar_fields_and_leaves_braces_alone() -> None:
    spec = make_spec(start=["run", "--name=${name}", "${index}", "${address}/${prefix_len}", "via", "${gateway}",
                            "${mac}", "{{.State.Pid}}", "{name}", "{{ name }}", "${unknown}", "$$", 8080])
    driver = drv.PlatformDriver(spec)
    second = driver.instances(2)[1]
    assert driver.render("start", second) == [
        "run", "--name=vnflab-docker-1", "1", "198.19.8.3/24", "via", "198.19.8.1", "02:00:c6:13:08:03",
        "{{.State.Pid}}", "{name}", "{{ name }}", "${unknown}", "$", "8080",
    ]
    assert driver.render("pid", second) == ["docker", "inspect", "--format", "{{.State.Pid}}", "vnflab-docker-1"]


# ---------------------------------------------------------------- start / wait_started


def test_start_records_start_ns_before_each_command_and_runs_concurrently() -> None:
    runner = FakeRunner(sleep_s=0.2)
    driver = drv.PlatformDriver(make_spec(), runner=runner)
    instances = driver.instances(8)
    t0 = time.monotonic()
    pool = driver.start(instances)
    issued_s = time.monotonic() - t0
    driver.wait_started(pool)
    elapsed_s = time.monotonic() - t0
    assert issued_s < 0.15  # start() returns before the commands finish
    assert elapsed_s < 0.5 * 8 * 0.2
    assert runner.peak == 8
    by_name = {argv[4]: (entered, left) for argv, entered, left in runner.calls}
    assert sorted(by_name) == sorted(inst.name for inst in instances)
    for inst in instances:
        entered, left = by_name[inst.name]
        assert 0 < inst.start_ns <= entered
        assert left <= inst.started_ns
        assert inst.started_ns - inst.start_ns >= 0.2e9
        assert inst.start_error == ""
    argv = next(a for a, _, _ in runner.calls if a[4] == "vnflab-docker-5")
    assert argv == ["docker", "run", "--detach", "--name", "vnflab-docker-5", "--ip", "198.19.8.7", "img"]
    assert all(kw["check"] is False and kw["text"] is True and kw["capture_output"] is True
               for kw in runner.kwargs)


@pytest.mark.parametrize(("max_parallel", "spec_parallel", "peak"), [(2, None, 2), (None, 3, 3), (1, 4, 1)])
def test_max_parallel_bounds_concurrent_starts(max_parallel: int | None, spec_parallel: int | None,
                                               peak: int) -> None:
    runner = FakeRunner(sleep_s=0.03)
    spec = make_spec() if spec_parallel is None else make_spec(max_parallel=spec_parallel)
    driver = drv.PlatformDriver(spec, runner=runner)
    instances = driver.instances(6)
    driver.wait_started(driver.start(instances, max_parallel))
    assert runner.peak == peak
    assert len(runner.calls) == 6


def failing_starts(argv: list[str]) -> subprocess.CompletedProcess[str]:
    name = argv[4]
    if name.endswith("-1"):
        return subprocess.CompletedProcess(argv, 125, "", "docker: Error: Conflict. name in use\n")
    if name.endswith("-2"):
        return subprocess.CompletedProcess(argv, 1, "only stdout\n", "")
    if name.endswith("-3"):
        return subprocess.CompletedProcess(argv, 3, "", "")
    if name.endswith("-4"):
        raise FileNotFoundError(2, "No such file or directory", "docker")
    if name.endswith("-5"):
        raise subprocess.TimeoutExpired(argv, 600)
    return ok(argv)


def test_start_errors_are_captured_per_instance() -> None:
    driver = drv.PlatformDriver(make_spec(), runner=FakeRunner(failing_starts))
    instances = driver.instances(6)
    driver.wait_started(driver.start(instances))
    errors = [inst.start_error for inst in instances]
    assert errors[0] == ""
    assert errors[1] == "docker: Error: Conflict. name in use"
    assert errors[2] == "only stdout"
    assert errors[3] == "exit 3"
    assert "No such file or directory" in errors[4]
    assert "timed out after 600 seconds" in errors[5]
    assert all(inst.started_ns >= inst.start_ns > 0 for inst in instances)


# ---------------------------------------------------------------- stop


def test_stop_runs_every_stop_command_and_reports_nothing_when_all_stopped() -> None:
    runner = FakeRunner()
    driver = drv.PlatformDriver(make_spec(), runner=runner)
    instances = driver.instances(5)
    assert driver.stop(instances) == []
    assert sorted(runner.argvs()) == sorted(["docker", "rm", "--force", inst.name] for inst in instances)


def test_stop_of_nothing_runs_nothing() -> None:
    runner = FakeRunner()
    assert drv.PlatformDriver(make_spec(), runner=runner).stop([]) == []
    assert runner.calls == []


def failing_stops(argv: list[str]) -> subprocess.CompletedProcess[str]:
    name = argv[3]
    if name.endswith("-0"):
        return subprocess.CompletedProcess(argv, 1, "", "Error: No such container: vnflab-docker-0\n")
    if name.endswith("-2"):
        return subprocess.CompletedProcess(argv, 1, "  stdout says why\n", "")
    if name.endswith("-3"):
        return subprocess.CompletedProcess(argv, 137, "", "")
    if name.endswith("-4"):
        raise PermissionError(13, "Permission denied", "docker")
    return ok(argv)


def test_stop_error_messages_name_the_instance() -> None:
    driver = drv.PlatformDriver(make_spec(), runner=FakeRunner(failing_stops))
    errors = driver.stop(driver.instances(5))
    assert errors[:3] == [
        "vnflab-docker-0: Error: No such container: vnflab-docker-0",
        "vnflab-docker-2: stdout says why",
        "vnflab-docker-3: exit 137",
    ]
    assert len(errors) == 4
    assert errors[3].startswith("vnflab-docker-4: ") and "Permission denied" in errors[3]


# ---------------------------------------------------------------- main pid and memory


@pytest.mark.parametrize(
    ("rc", "stdout", "expected"),
    [(0, "4242\n", 4242), (0, "  17  ", 17), (0, "0\n", None), (1, "4242", None), (0, "", None),
     (0, "<no value>", None), (0, "-5", None)],
)
def test_main_pid(rc: int, stdout: str, expected: int | None) -> None:
    runner = FakeRunner(lambda argv: subprocess.CompletedProcess(argv, rc, stdout, ""))
    driver = drv.PlatformDriver(make_spec(), runner=runner)
    assert driver.main_pid(driver.instances(1)[0]) == expected
    assert runner.argvs() == [["docker", "inspect", "--format", "{{.State.Pid}}", "vnflab-docker-0"]]


def test_main_pid_without_pid_command() -> None:
    spec = make_spec()
    del spec["pid"]
    runner = FakeRunner()
    driver = drv.PlatformDriver(spec, runner=runner)
    assert driver.main_pid(driver.instances(1)[0]) is None
    assert runner.calls == []


HEALTH = ["xen-health", "${name}"]


def started(driver: drv.PlatformDriver, count: int = 1) -> list[drv.Instance]:
    instances = driver.instances(count)
    for instance in instances:
        instance.start_ns, instance.started_ns = 1, 2
    return instances


@pytest.mark.parametrize(("rc", "stderr", "expected"), [
    (0, "", None),
    (1, "domain vnflab-docker-0 crashed (state ----c-)\n", "domain vnflab-docker-0 crashed (state ----c-)"),
    (1, "", "health check exit 1"),
    (3, "", None),  # no verdict: the check could not run
    (139, "", None),  # the check crashed (segfault in a nested dom0): the domain is not judged dead
])
def test_failure_asks_the_health_command(rc: int, stderr: str, expected: str | None) -> None:
    runner = FakeRunner(lambda argv: subprocess.CompletedProcess(argv, rc, "", stderr))
    driver = drv.PlatformDriver(make_spec(health=HEALTH), runner=runner)
    assert driver.failure(started(driver)[0]) == expected
    assert runner.argvs() == [["xen-health", "vnflab-docker-0"]]


def test_a_health_check_that_hangs_is_no_verdict_after_its_own_short_timeout() -> None:
    timeouts: list[float] = []

    def hangs(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        timeouts.append(kwargs["timeout"])
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

    driver = drv.PlatformDriver(make_spec(health=HEALTH), runner=hangs, command_timeout_s=600.0)
    assert driver.failure(started(driver)[0]) is None
    assert timeouts == [drv.HEALTH_TIMEOUT_S] and drv.HEALTH_TIMEOUT_S < 600.0


def test_a_start_command_printing_bytes_that_are_no_utf8_still_started() -> None:
    """Seen in the nested dom0: a start that succeeded but printed a stray 0xa0 was a failed start."""
    driver = drv.PlatformDriver(make_spec(start=["sh", "-c", r"printf 'ok \240\n'; printf '\377' >&2"]))
    instance = driver.instances(1)[0]
    driver.wait_started(driver.start([instance]))
    assert instance.start_error == ""
    assert driver.failure(instance) is None


def test_failure_of_an_instance_still_starting_is_not_judged() -> None:
    runner = FakeRunner(lambda argv: subprocess.CompletedProcess(argv, 1, "", "no such domain"))
    driver = drv.PlatformDriver(make_spec(health=HEALTH), runner=runner)
    assert driver.failure(driver.instances(1)[0]) is None  # start command not returned yet
    assert runner.calls == []


def test_failure_without_health_command_is_only_a_failed_start() -> None:
    runner = FakeRunner()
    driver = drv.PlatformDriver(make_spec(), runner=runner)
    instance = started(driver)[0]
    assert driver.failure(instance) is None
    instance.start_error = "docker: Error response from daemon"
    assert driver.failure(instance) == "docker: Error response from daemon"
    assert runner.calls == []


def test_failed_instances_marks_the_dead_as_failed_starts() -> None:
    dead = {"vnflab-docker-1": "crashed"}
    runner = FakeRunner(lambda argv: subprocess.CompletedProcess(argv, 1 if argv[1] in dead else 0, "",
                                                                 dead.get(argv[1], "")))
    driver = drv.PlatformDriver(make_spec(health=HEALTH), runner=runner)
    instances = started(driver, 3)
    give_up = drv.failed_instances(driver, instances)
    given_up = give_up(["198.19.8.3", "198.19.8.4", "198.18.99.9"])
    assert given_up == {"198.19.8.3": "crashed"}
    assert [inst.start_error for inst in instances] == ["", "", ""]  # the prober decides; the module marks
    instances[2].start_error = "xl create failed"
    drv.mark_given_up(instances, {**given_up, "198.19.8.4": "xl create failed"})
    assert [inst.start_error for inst in instances] == ["", "died while booting: crashed", "xl create failed"]
    error = drv.StartError.of(instances)
    assert error is not None and "vnflab-docker-1: died while booting: crashed" in str(error)


MAIN_PID = 4242
CHILD_PID = 4243


@pytest.fixture
def fake_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Point meminfo at a fake /proc (tmp/proc) and cgroupfs (tmp/cgroup) and return both roots."""
    proc = tmp_path / "proc"
    cgroup = tmp_path / "cgroup"
    proc.mkdir()
    cgroup.mkdir()
    for pid, pss_kib in ((MAIN_PID, 2048), (CHILD_PID, 1024)):
        (proc / str(pid)).mkdir()
        (proc / str(pid) / "smaps_rollup").write_text(
            f"00400000-7fff0000 ---p 00000000 00:00 0 [rollup]\nRss: {4 * pss_kib} kB\nPss: {pss_kib} kB\n"
            f"Pss_Anon: {pss_kib // 2} kB\n", encoding="ascii")
    real = {name: getattr(meminfo, name) for name in
            ("process_memory_cgroup", "process_pss_kib", "cgroup_memory_file", "cgroup_procs_file")}
    monkeypatch.setattr(meminfo, "process_memory_cgroup",
                        lambda pid, proc_root="": real["process_memory_cgroup"](pid, str(proc)))
    monkeypatch.setattr(meminfo, "process_pss_kib", lambda pid, proc_root="": real["process_pss_kib"](pid, str(proc)))
    monkeypatch.setattr(meminfo, "cgroup_memory_file",
                        lambda version, path, cgroup_root="": real["cgroup_memory_file"](version, path, str(cgroup)))
    monkeypatch.setattr(meminfo, "cgroup_procs_file",
                        lambda version, path, cgroup_root="": real["cgroup_procs_file"](version, path, str(cgroup)))
    return proc, cgroup


def pid_runner(stdout: str = f"{MAIN_PID}\n", memory_kib: tuple[int, str] = (0, "")) -> FakeRunner:
    def handler(argv: list[str]) -> subprocess.CompletedProcess[str]:
        if argv[:2] == ["docker", "inspect"]:
            return ok(argv, stdout)
        if argv[:2] == ["xl", "list"]:
            return subprocess.CompletedProcess(argv, memory_kib[0], memory_kib[1], "")
        raise AssertionError(f"unexpected command {argv}")

    return FakeRunner(handler)


def write_cgroup_v2(proc: Path, cgroup: Path, usage_bytes: int, procs: str) -> None:
    (proc / str(MAIN_PID) / "cgroup").write_text("0::/system.slice/docker-4f1c.scope\n", encoding="ascii")
    (cgroup / "cgroup.controllers").write_text("cpu memory pids\n", encoding="ascii")
    scope = cgroup / "system.slice" / "docker-4f1c.scope"
    scope.mkdir(parents=True)
    (scope / "memory.current").write_text(f"{usage_bytes}\n", encoding="ascii")
    (scope / "cgroup.procs").write_text(procs, encoding="ascii")


def test_memory_cgroup_v2_sums_pss_of_every_process_in_the_cgroup(fake_host: tuple[Path, Path]) -> None:
    proc, cgroup = fake_host
    write_cgroup_v2(proc, cgroup, 5 * 2**20 + 2**19, f"{MAIN_PID}\n{CHILD_PID}\n")
    driver = drv.PlatformDriver(make_spec(), runner=pid_runner())
    weight = driver.memory(driver.instances(1)[0])
    assert weight.name == "vnflab-docker-0"
    assert weight.pids == [MAIN_PID, CHILD_PID]
    assert weight.pss_mb == pytest.approx((2048 + 1024) / 1024)
    assert weight.cgroup_mb == pytest.approx(5.5)
    assert weight.hypervisor_mb is None


def test_memory_cgroup_v1(fake_host: tuple[Path, Path]) -> None:
    proc, cgroup = fake_host
    (proc / str(MAIN_PID) / "cgroup").write_text(
        "11:cpu,cpuacct:/docker/4f1c\n4:memory:/docker/4f1c\n0::/\n", encoding="ascii")
    group = cgroup / "memory" / "docker" / "4f1c"
    group.mkdir(parents=True)
    (group / "memory.usage_in_bytes").write_text(f"{3 * 2**20}\n", encoding="ascii")
    (group / "cgroup.procs").write_text(f"{CHILD_PID}\n", encoding="ascii")
    driver = drv.PlatformDriver(make_spec(), runner=pid_runner())
    weight = driver.memory(driver.instances(1)[0])
    assert weight.pids == [CHILD_PID]
    assert weight.pss_mb == pytest.approx(1.0)
    assert weight.cgroup_mb == pytest.approx(3.0)


def test_memory_empty_cgroup_procs_falls_back_to_the_main_pid(fake_host: tuple[Path, Path]) -> None:
    proc, cgroup = fake_host
    write_cgroup_v2(proc, cgroup, 2**20, "")
    driver = drv.PlatformDriver(make_spec(), runner=pid_runner())
    weight = driver.memory(driver.instances(1)[0])
    assert weight.pids == [MAIN_PID]
    assert weight.pss_mb == pytest.approx(2.0)
    assert weight.cgroup_mb == pytest.approx(1.0)


def test_memory_without_own_cgroup_weighs_the_main_process_only(fake_host: tuple[Path, Path]) -> None:
    proc, cgroup = fake_host
    write_cgroup_v2(proc, cgroup, 2**30, f"{MAIN_PID}\n{CHILD_PID}\n")  # shared cgroup: not the instance's
    driver = drv.PlatformDriver(make_spec(own_cgroup=False), runner=pid_runner())
    weight = driver.memory(driver.instances(1)[0])
    assert weight.pids == [MAIN_PID]
    assert weight.pss_mb == pytest.approx(2.0)
    assert weight.cgroup_mb is None


def test_memory_of_a_vanished_process_is_zero_pss(fake_host: tuple[Path, Path]) -> None:
    driver = drv.PlatformDriver(make_spec(own_cgroup=False), runner=pid_runner("999999\n"))
    weight = driver.memory(driver.instances(1)[0])
    assert weight.pids == [999999]
    assert weight.pss_mb == 0.0


def test_memory_without_a_pid(fake_host: tuple[Path, Path]) -> None:
    driver = drv.PlatformDriver(make_spec(), runner=pid_runner(""))
    weight = driver.memory(driver.instances(1)[0])
    assert (weight.pss_mb, weight.cgroup_mb, weight.hypervisor_mb, weight.pids) == (None, None, None, [])


@pytest.mark.parametrize(
    ("reply", "expected"),
    [((0, "262144\n"), 256.0), ((0, "1536.0"), 1.5), ((0, "n/a"), None), ((1, "262144"), None), ((0, ""), None),
     ((0, "1.2.3"), None)],
)
def test_memory_hypervisor_view(fake_host: tuple[Path, Path], reply: tuple[int, str],
                                expected: float | None) -> None:
    spec = make_spec(own_cgroup=False, memory_kib=["xl", "list", "${name}"])
    del spec["pid"]  # a VM: no process of its own on this kernel in this test
    runner = pid_runner(memory_kib=reply)
    driver = drv.PlatformDriver(spec, runner=runner)
    weight = driver.memory(driver.instances(1)[0])
    assert weight.hypervisor_mb == expected
    assert weight.pss_mb is None
    assert runner.argvs() == [["xl", "list", "vnflab-docker-0"]]


# ---------------------------------------------------------------- server view


def test_server_available_mb_defaults_to_memavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text("MemTotal: 8000000 kB\nMemAvailable: 3145728 kB\n", encoding="ascii")
    real = meminfo.mem_available_mb
    monkeypatch.setattr(meminfo, "mem_available_mb", lambda proc_root="": real(str(tmp_path)))
    runner = FakeRunner()
    assert drv.server_available_mb(make_spec(), runner) == pytest.approx(3072.0)
    assert drv.server_available_mb(make_spec(server_available_mb=[]), runner) == pytest.approx(3072.0)
    assert runner.calls == []


def test_server_available_mb_with_a_command() -> None:
    runner = FakeRunner(lambda argv: ok(argv, "  2048.5\n"))
    spec = make_spec(server_available_mb=["xl", "info", "--mb", 1])
    assert drv.server_available_mb(spec, runner) == 2048.5
    assert runner.argvs() == [["xl", "info", "--mb", "1"]]


def test_server_available_mb_command_printing_garbage() -> None:
    runner = FakeRunner(lambda argv: subprocess.CompletedProcess(argv, 1, "", "xl: command not found\n"))
    with pytest.raises(drv.DriverError, match="server_available_mb printed '': xl: command not found"):
        drv.server_available_mb(make_spec(server_available_mb=["xl", "info"]), runner)


@pytest.mark.parametrize(("probe", "problem"), [
    ({"poll_interval_ms": 0}, "'probe.poll_interval_ms' must be a positive number"),
    ({"boot_timeout_s": "soon"}, "'probe.boot_timeout_s' must be a positive number"),
    ({"boot_timeout_per_instance_s": -1}, "'probe.boot_timeout_per_instance_s' must be a positive number"),
    ({"deadline": 5}, "unknown 'probe' key 'deadline'"),
    ([1], "'probe' must be a mapping"),
])
def test_bad_probe_settings_are_named(probe: Any, problem: str) -> None:
    problems = drv.validate_spec(make_spec(probe=probe))
    assert any(problem in p for p in problems), problems


def test_boot_timeout_grows_with_the_count() -> None:
    driver = drv.PlatformDriver(make_spec(probe={"boot_timeout_s": 120, "boot_timeout_per_instance_s": 25}))
    assert [driver.boot_timeout_s(n) for n in (1, 4, 32)] == [145.0, 220.0, 920.0]
    assert driver.boot_timeout_s(32, requested=50.0) == 50.0
    assert drv.PlatformDriver(make_spec()).boot_timeout_s(32) == drv.DEFAULT_BOOT_TIMEOUT_S


def test_after_start_polls_only_instances_whose_start_returned() -> None:
    driver = drv.PlatformDriver(make_spec(probe={"after_start": True}))
    instances = driver.instances(2)
    ready = driver.ready_to_poll(instances)
    assert ready is not None
    instances[1].started_ns = 123
    assert [ready(inst.address) for inst in instances] == [False, True]
    assert drv.PlatformDriver(make_spec()).ready_to_poll(instances) is None  # default: every address at once
    assert any("'probe.after_start' must be true or false" in p
               for p in drv.validate_spec(make_spec(probe={"after_start": "yes"})))
