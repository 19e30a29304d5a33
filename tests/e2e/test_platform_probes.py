"""The platform contract at run time (docs/platforms.md): every platform selected in the local inventory,
one at a time, provisioned by its role, its published driver checked against the driver engine, then
driven directly (one instance starts, answers ICMP echo, stops; stop is idempotent) and measured by the
three probes with N = 1 through site.yml.

Platforms come from inventory/local (vnflab_platforms and the vnf_servers hosts), never from a list of
names here. A server whose host_vars define ``vnflab_emulated_server`` (a whole emulated server, about
ten minutes to stand up) is marked heavy. Needs root and the packages of scripts/install.sh; its playbooks run
under the lab's run lock (tests/e2e/lab_playbook.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from ansible.module_utils.vnflab_host.driver import Instance, InstanceMemory, PlatformDriver, validate_spec
from lab_inventory import Server, selected_servers, vnf_servers
from lab_playbook import run_json_playbook
from test_local_lab import lab_leftovers

from vnflab.measure import crosscheck
from vnflab.measure.crosscheck import EngineMoment
from vnflab.measure.schema import parse_label
from vnflab.stats.load import load_run

N1 = {"vnflab_boot_counts": [1], "vnflab_memory_counts": [1], "vnflab_response_sizes": [64]}

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local lab needs root"),
]


def _param(server: Server) -> Any:
    marks = [pytest.mark.heavy] if server.emulated else []
    return pytest.param(server, id=server.platform, marks=marks)


SERVERS = [_param(server) for server in selected_servers()]


def lab_owned(leftovers: list[str]) -> set[str]:
    """The leftovers whose names are the local lab's (docs/platforms.md, "Names the teardown check knows").

    Other tools on this machine (a Molecule scenario's bridges and mounts) may come and go during a run
    without the lab lock; they are not this teardown's to remove.
    """
    platforms = "|".join(re.escape(server.platform) for server in vnf_servers())
    ours = re.compile(rf"vbr-({platforms})-|^netns vnflab-|^link (va-|vb-|vp-|vnflab-kvm|vm[0-9a-f]{{10}}-[nm])"
                      r"|^pidfile |^process |/run/netns/vnflab|/run/vnflab")
    return {item for item in leftovers if ours.search(item)}


def ansible(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    return run_json_playbook(*args, timeout=timeout)


def published_facts(stdout: str, host: str, fact: str) -> list[Any]:
    """Every value a task of the run set for ``fact`` on ``host`` (json callback output)."""
    report = json.loads(stdout[stdout.index("{"):])
    values = []
    for play in report["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(host) or {}
            facts = result.get("ansible_facts") or {}
            if fact in facts:
                values.append(facts[fact])
    return values


class PlatformRun:
    def __init__(self, server: Server, run_dir: Path, driver: dict[str, Any]) -> None:
        self.server = server
        self.run_dir = run_dir
        self.driver = driver


@pytest.fixture(scope="module", params=SERVERS)
def platform_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformRun]:
    server: Server = request.param
    results = tmp_path_factory.mktemp(f"results-{server.platform}")
    # What was there before (another lab's state the lock did not keep out) is not this run's to remove.
    before = lab_owned(lab_leftovers())
    try:
        done = ansible("site.yml", "-e", "vnflab_profile=quick", "-e", f"vnflab_results_dir={results}",
                       "-e", json.dumps({"vnflab_platforms": [server.platform], **N1}))
        drivers = published_facts(done.stdout, server.host, "vnflab_driver")
        assert drivers, f"{server.host}: the role of {server.platform} published no vnflab_driver"
        runs = sorted(p for p in results.iterdir() if p.is_dir())
        assert len(runs) == 1, f"expected one run directory, found {runs}"
        yield PlatformRun(server, runs[0], drivers[-1])
    finally:
        ansible("site.yml", "--tags", "teardown")
        left = sorted(lab_owned(lab_leftovers()) - before)
        assert left == [], f"teardown after {server.platform} left {left}"


def test_the_published_driver_implements_the_interface(platform_run: PlatformRun) -> None:
    spec = platform_run.driver
    assert validate_spec(spec) == [], validate_spec(spec)
    assert spec["name"] == platform_run.server.platform
    assert parse_label(spec["label"]) is not None, f"label {spec['label']!r} does not follow the label format"
    driver = PlatformDriver(spec)
    assert driver.capacity >= 1


def test_the_probes_measured_n1_under_the_driver_label(platform_run: PlatformRun) -> None:
    samples = load_run(platform_run.run_dir).samples
    assert set(samples.platform) == {platform_run.server.platform}
    assert set(samples.label) == {platform_run.driver["label"]}
    ok = samples[samples.status == "ok"]
    for metric, quantity, x in (("boot", "all_ms", 1), ("boot", "instance_ms", 1), ("response", "rtt_proxy_us", 64),
                                ("response", "rtt_direct_us", 64), ("memory", "server_used_mb", 1)):
        rows = ok[(ok.metric == metric) & (ok.quantity == quantity) & (ok.x == x)]
        assert len(rows) > 0, f"no {metric}/{quantity} sample at x={x}"
    assert (samples[samples.metric == "boot"].status == "ok").all(), "an instance never answered ICMP echo"
    assert (ok[ok.metric == "boot"].value > 0).all()
    assert (ok[ok.metric == "response"].value > 0).all()
    manifest = json.loads((platform_run.run_dir / "manifest.json").read_text())
    host = manifest["hosts"][platform_run.server.host]
    assert host["label"] == platform_run.driver["label"]
    assert isinstance(host["platform_info"], dict) and host["platform_info"], "vnflab_platform_info is empty"


def _answers(address: str) -> bool:
    return subprocess.run(["ping", "-n", "-c", "1", "-W", "1", address], capture_output=True,
                          check=False).returncode == 0


def test_the_driver_starts_one_instance_that_answers_and_stops_it_idempotently(platform_run: PlatformRun) -> None:
    """Driven directly by the engine the probes use (the lab is still up after the run)."""
    if platform_run.server.variables.get("ansible_connection") != "local":
        pytest.skip(f"{platform_run.server.host} is not this machine: its commands run there, not here")
    driver = PlatformDriver(platform_run.driver)
    [instance] = driver.instances(1)
    assert driver.stop([instance]) == [], "stopping an instance that does not exist must not be an error"
    assert not _answers(instance.address), f"{instance.address} answers before the instance started"
    pool = driver.start([instance])
    try:
        driver.wait_started(pool)
        assert instance.start_error == "", instance.start_error
        deadline = time.monotonic() + 300
        while not _answers(instance.address):
            assert time.monotonic() < deadline, f"{instance.name} never answered ICMP echo on {instance.address}"
        if "pid" in platform_run.driver:
            pid = driver.main_pid(instance)
            assert pid is None or Path(f"/proc/{pid}").is_dir(), f"pid {pid} of {instance.name} is not alive"
    finally:
        assert driver.stop([instance]) == []
    assert driver.stop([instance]) == [], "a second stop must succeed too"
    assert not _answers(instance.address), f"{instance.address} still answers after stop"
    if "pid" in platform_run.driver:
        assert driver.main_pid(instance) is None, "the stopped instance still has a process"


# ------------------------------------------------------------------ cross-checks against the engines (issue 24)
# The probe modules' own run() on the lab the fixture left up, with a driver that, before it stops the instances
# (boot) or around each per-instance figure (memory), asks the engine and the kernel for their own record of the
# same thing (vnflab.measure.crosscheck). A disagreement beyond the stated tolerance fails the test.


def _library_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"vnflab_library_{name}", Path(__file__).parents[2] / "library"
                                                  / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


boot_module = _library_module("vnf_boot_time")
memory_module = _library_module("vnf_memory")
CROSSCHECK_COUNT = 2  # instances started together per batch
CROSSCHECK_BATCHES = 3


def _local_engine(platform_run: PlatformRun) -> str:
    if platform_run.server.variables.get("ansible_connection") != "local":
        pytest.skip(f"{platform_run.server.host} is not this machine: its engine is asked there, not here")
    engine = platform_run.server.platform
    if engine not in ("docker", "kvm"):
        pytest.skip(f"{engine}: no local engine record to check against here (Xen: tests/unit/test_crosscheck.py "
                    "with a fake xl; native: the kernel itself answers for the instance)")
    return engine


def _module_params(spec: dict[str, Any], **extra: Any) -> SimpleNamespace:
    params = {"driver": spec, "count": CROSSCHECK_COUNT, "state": "present", "timeout_s": None,
              "poll_interval_ms": None, "max_pps": 20000, "max_parallel": None, **extra}
    return SimpleNamespace(params=params, check_mode=False)


def _engine_moments(engine: str, driver: PlatformDriver, instances: list[Instance]) -> dict[str, list[EngineMoment]]:
    if engine == "docker":
        since = min(inst.start_ns for inst in instances) - 1_000_000_000
        done = subprocess.run(crosscheck.docker_events_argv(since, time.clock_gettime_ns(time.CLOCK_REALTIME)),
                              capture_output=True, text=True, timeout=60, check=True)
        events = crosscheck.docker_event_times(done.stdout.splitlines())
        return {inst.name: crosscheck.docker_moments(events.get(inst.name, {})) for inst in instances}
    moments = {}
    for inst in instances:
        (pid,) = crosscheck.processes_with_argument(f"mac={inst.mac}")  # the QEMU process, found by its NIC's MAC
        moments[inst.name] = crosscheck.qemu_moments(*crosscheck.process_start_realtime_ns(pid))
    return moments


def test_boot_times_agree_with_the_engines_own_record(platform_run: PlatformRun,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """vnf_boot_time's run(): every instance's T0, start-command return and first reply (from its boot_ms) against
    the engine's events (Docker) or QEMU's process start (KVM), read before the module stops the instances."""
    engine = _local_engine(platform_run)
    seen: list[tuple[list[Instance], dict[str, list[EngineMoment]] | Exception]] = []

    class EngineWatchingDriver(PlatformDriver):
        def stop(self, instances: Sequence[Instance]) -> list[str]:
            if instances and all(inst.started_ns and not inst.start_error for inst in instances):
                try:
                    seen.append((list(instances), _engine_moments(engine, self, list(instances))))
                except Exception as exc:  # reported below: the instances are stopped first
                    seen.append((list(instances), exc))
            return super().stop(instances)

    monkeypatch.setattr(boot_module, "PlatformDriver", EngineWatchingDriver)
    problems: list[str] = []
    for _ in range(CROSSCHECK_BATCHES):
        result = boot_module.run(_module_params(platform_run.driver))
        instances, moments = seen[-1]
        if isinstance(moments, Exception):
            raise moments
        for inst, boot_ms in zip(instances, result["boot_ms"], strict=True):
            reply_ns = None if boot_ms is None else inst.start_ns + round(boot_ms * 1e6)
            times = crosscheck.ProbeTimes(inst.name, inst.start_ns, inst.started_ns, reply_ns)
            returned_ms = (inst.started_ns - inst.start_ns) / 1e6
            print(inst.name, f"boot {boot_ms} ms, start command returned {returned_ms:.1f} ms;",
                  ", ".join(f"{m.what} {(m.ns - inst.start_ns) / 1e6:.1f} ms" for m in moments[inst.name]))
            problems += crosscheck.boot_disagreements(times, moments[inst.name])
    assert len(seen) == CROSSCHECK_BATCHES
    assert problems == []


def _independent_memory(engine: str, instance: Instance) -> dict[str, float]:
    """The instance's memory found through the engine, not the driver: MB."""
    if engine == "docker":
        container = subprocess.run(["docker", "inspect", "--format", "{{.Id}}", instance.name], capture_output=True,
                                   text=True, timeout=60, check=True).stdout.strip()
        (directory,) = crosscheck.cgroup_directories(container)
        usage, stat = crosscheck.cgroup_usage_and_stat_bytes(directory)
        pids = crosscheck.cgroup_pids(directory)
        memory = {"cgroup_mb": usage / 2**20, "stat_mb": stat / 2**20}
    else:
        pids = crosscheck.processes_with_argument(f"mac={instance.mac}")  # the QEMU process, by its NIC's MAC
        assert len(pids) == 1, f"{instance.name}: {len(pids)} processes carry mac={instance.mac}"
        memory = {}
    pss = [crosscheck.smaps_pss_kib(Path(f"/proc/{pid}/smaps").read_text()) for pid in pids]
    return {**memory, "pss_mb": sum(kib for kib, _ in pss) / 1024, "mappings": sum(count for _, count in pss)}


def test_memory_figures_agree_with_the_kernels_cgroup_files(platform_run: PlatformRun,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """vnf_memory's run(): each instance's recorded cgroup and PSS figures between the kernel's own, read just before
    and just after through the engine (Docker: the container's cgroup by its ID, its memory.stat; KVM: the QEMU
    process by its MAC, /proc/PID/smaps)."""
    engine = _local_engine(platform_run)
    fuzz_mb = crosscheck.cgroup_charge_fuzz_bytes() / 2**20
    problems: list[str] = []
    checked: list[str] = []

    class BracketingDriver(PlatformDriver):
        def memory(self, instance: Instance) -> InstanceMemory:
            before = _independent_memory(engine, instance)
            recorded = super().memory(instance)
            after = _independent_memory(engine, instance)
            print(instance.name, recorded, before, after)
            # PSS: smaps truncates each mapping's figure to KiB (less than 1 KiB per mapping short of the rollup)
            pss_tolerance_mb = max(before["mappings"], after["mappings"]) / 1024
            checks = [("pss_mb", recorded.pss_mb, pss_tolerance_mb)]
            if engine == "docker":
                checks.append(("cgroup_mb", recorded.cgroup_mb, fuzz_mb))
                # memory.stat against the usage file the figure is read from: two charge batches per CPU apart
                problems.extend(filter(None, [crosscheck.bracket_problem(
                    f"{instance.name} memory.stat sum vs usage", before["stat_mb"], before["cgroup_mb"],
                    after["cgroup_mb"], 2 * fuzz_mb)]))
            for field, value, tolerance in checks:
                assert value is not None, f"{instance.name}: no {field} recorded"
                problem = crosscheck.bracket_problem(f"{instance.name} {field}", value, before[field], after[field],
                                                     tolerance)
                if problem:
                    problems.append(problem)
                checked.append(f"{instance.name} {field}")
            return recorded

    monkeypatch.setattr(memory_module, "PlatformDriver", BracketingDriver)
    for _ in range(CROSSCHECK_BATCHES):
        memory_module.run(_module_params(platform_run.driver, settle_s=0.5, reads=1))
    assert len(checked) == CROSSCHECK_BATCHES * CROSSCHECK_COUNT * (2 if engine == "docker" else 1)
    assert problems == []
