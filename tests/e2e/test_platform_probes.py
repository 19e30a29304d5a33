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

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.vnflab.driver import PlatformDriver, validate_spec
from lab_inventory import Server, selected_servers, vnf_servers
from lab_playbook import run_json_playbook
from test_local_lab import lab_leftovers

from vnflab.load import load_run
from vnflab.schema import parse_label

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
