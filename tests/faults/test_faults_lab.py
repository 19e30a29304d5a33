"""Faults on a real local lab (Docker path only): injected loss and a proxy killed mid-run each fail their point or
path quickly and visibly, and the run still writes its report, then exits non-zero.

Needs root and the packages of scripts/install.sh. The lab is stood up once for the module (site.yml --tags lab,proxy)
and torn down after it; every playbook runs under the lab's run lock, which this test process holds throughout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultlab import has_sample

from vnflab.run import runlock

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "ansible-playbook")
HOST_A_NS = "vnflab-a"
PROXY_A = "198.18.11.1"  # inventory/local/host_vars/coreos.yml: the proxy's A side
PROXY_CONTAINER = "vnflab-docker-proxy"
LOSS_RULE = ["OUTPUT", "-d", PROXY_A, "-p", "icmp", "-m", "statistic", "--mode", "random", "--probability", "0.25",
             "-m", "comment", "--comment", "vnflab-fault-test", "-j", "DROP"]

# Heavy until it has run to completion on a clean machine: written on 2026-12-07, its one run so far stopped at its
# own set-up (the proxy tag alone, fixed since); the lab lock queue gave it no second run before the deadline.
pytestmark = [
    pytest.mark.lab,
    pytest.mark.heavy,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local lab needs root"),
    pytest.mark.skipif(shutil.which("dockerd") is None, reason="Docker engine not installed (scripts/install.sh)"),
]


def playbook_argv(*args: str) -> list[str]:
    return [PLAYBOOK, *args]


def run_playbook(*args: str, timeout: int = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(playbook_argv(*args), cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=False, pass_fds=(runlock.hold_for_process(),),
                          env=dict(os.environ, ANSIBLE_FORCE_COLOR="0"))


def response_overrides(results: Path, sizes: list[int]) -> str:
    return json.dumps({
        "vnflab_platforms": ["docker"], "vnflab_response_sizes": sizes, "vnflab_results_dir": str(results),
        "vnflab_repeat": {"boot": {"min_samples": 1, "max_samples": 1}, "memory": {"min_samples": 1, "max_samples": 1},
                          "response": {"min_samples": 20, "max_samples": 200, "rel_half_width": 0.001,
                                       "batch": 20}}})


@pytest.fixture(scope="module")
def lab() -> Iterator[None]:
    try:
        runlock.hold_for_process()
    except runlock.Refused as refused:
        pytest.fail(str(refused))
    try:
        up = run_playbook("site.yml", "--tags", "lab,proxy", "-e", "vnflab_profile=quick",
                          "-e", json.dumps({"vnflab_platforms": ["docker"]}))
        assert up.returncode == 0, up.stdout[-6000:]
        yield
    finally:
        run_playbook("site.yml", "--tags", "teardown", timeout=600)


def only_run_dir(results: Path) -> Path:
    [run_dir] = [p for p in results.iterdir() if p.is_dir()]
    return run_dir


def test_injected_loss_fails_the_point_naming_it_and_the_run_still_reports(lab: None, tmp_path: Path) -> None:
    """25% of the echo requests to the proxy dropped in Host A's namespace (iptables statistic): over 5%."""
    subprocess.run(["ip", "netns", "exec", HOST_A_NS, "iptables", "-w", "-A", *LOSS_RULE], check=True)
    try:
        started = time.monotonic()
        done = run_playbook("site.yml", "--tags", "response,report", "-e", "vnflab_profile=quick",
                            "-e", response_overrides(tmp_path, [64, 1472]))
        seconds = time.monotonic() - started
    finally:
        subprocess.run(["ip", "netns", "exec", HOST_A_NS, "iptables", "-w", "-D", *LOSS_RULE], check=True)
    text = " ".join(done.stdout.split())
    assert done.returncode != 0, text[-4000:]
    assert "x=64 B:" in text and "more than vnflab_repeat.response.max_loss_fraction (5%)" in text, text[-4000:]
    assert "response time failed through the proxy of: docker" in text, text[-4000:]
    run_dir = only_run_dir(tmp_path)
    assert (run_dir / "report.md").exists()
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    lost = [s for s in samples if s["quantity"] == "rtt_proxy_us" and s["status"] == "lost"]
    assert lost, "the lost requests are journaled"
    # The point stopped at its first over-threshold batch rather than running to its cap of 200 samples per size.
    assert len([s for s in samples if s["quantity"] == "rtt_proxy_us"]) <= 60
    assert seconds < 240


def test_a_proxy_killed_mid_run_fails_its_path_quickly_and_the_run_still_reports(lab: None, tmp_path: Path) -> None:
    proc = subprocess.Popen(playbook_argv("site.yml", "--tags", "response,report", "-e", "vnflab_profile=quick",
                                          "-e", response_overrides(tmp_path, [64, 128, 256, 512, 1024, 2048])),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            pass_fds=(runlock.hold_for_process(),), env=dict(os.environ, ANSIBLE_FORCE_COLOR="0"))
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if has_sample(tmp_path, "response", 128, quantity="rtt_proxy_us"):
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before the proxy could be killed"
        # Removed, not only killed: a killed Docker proxy's network namespace outlives its process, and its DNAT
        # rules go on forwarding in the kernel (run 20261207T053622Z-caa614: docker kill at 128 B, then 0 of the
        # next 800 requests lost).
        subprocess.run(["docker", "rm", "--force", PROXY_CONTAINER], check=True, capture_output=True)
        killed = time.monotonic()
        out = proc.communicate(timeout=600)[0]
        seconds = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = " ".join(out.split())
    assert proc.returncode != 0, text[-4000:]
    assert "no reply through the proxy to any of a batch of 20 requests" in text or \
        "more than vnflab_repeat.response.max_loss_fraction" in text, text[-4000:]
    assert (only_run_dir(tmp_path) / "report.md").exists()
    # Bounded: one batch of timeouts (20 x 1 s) and the report, not every later size to its cap.
    assert seconds < 120, f"the run took {seconds:.0f} s after the proxy died"
