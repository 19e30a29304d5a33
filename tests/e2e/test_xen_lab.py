"""End to end on the emulated Xen server: `ansible-playbook site.yml` with the xen platform alone.

The local lab's Xen server is a QEMU VM booting Debian through GRUB (roles/emulated_server); the
platform_xen role builds ClickOS on this machine from the pinned sources of the source mirror, installs Xen
from Debian on the server, reboots it into Xen and measures ClickOS domains: the Click proxy of Algorithm 1
on the path, the Click ARP/ICMP responder as boot and memory instances. (With -e platform_xen_guest=linux-pv
in VNFLAB_XEN_E2E_EXTRA the same test measures the Linux PV stand-in.)

The slice (N in {1, 4}, sizes {64, 1472, 65507}): the label says real ClickOS, every domain of every batch
answers ping, the proxied RTT exceeds the direct floor at every size, Xen's free memory drops by the domains'
memory, and the teardown leaves only Domain-0 in `xl list` and no QEMU. Marked heavy (about 25 minutes cold,
with the ClickOS build and the server image; see the README): `scripts/test.sh --all` runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_inventory import vnf_servers
from lab_playbook import run_json_playbook

from vnflab.measure.schema import parse_label
from vnflab.stats.load import load_run

XEN = next((server for server in vnf_servers() if server.platform == "xen"), None)
COUNTS = [1, 4]
SIZES = [64, 1472, 65507]
EXTRA = json.loads(os.environ.get("VNFLAB_XEN_E2E_EXTRA", "{}"))
GUEST = EXTRA.get("platform_xen_guest", XEN.variables.get("platform_xen_guest", "clickos") if XEN else "clickos")

pytestmark = [
    pytest.mark.lab,
    pytest.mark.heavy,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local lab needs root"),
    pytest.mark.skipif(XEN is None or not XEN.emulated, reason="no emulated xen server in inventory/local"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU not installed (scripts/install.sh)"),
    pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap not installed (scripts/install.sh)"),
]


def playbook(*args: str, timeout: int = 3600) -> subprocess.CompletedProcess[str]:
    return run_json_playbook(*args, timeout=timeout)


def task_results(output: str, task_name: str) -> list[dict]:
    """Per-host results of every task called task_name in a json-callback playbook output.

    The callback names a role's task "<role> : <name>" (Task.get_name()); the role part is not compared.
    """
    found = []
    for play in json.loads(output)["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].rsplit(" : ", 1)[-1] == task_name:
                found += [dict(result, host=host) for host, result in task["hosts"].items()]
    return found


def qemu_of(vm_name: str) -> list[str]:
    """Command lines of live QEMU processes running the emulated server vm_name."""
    lines = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and b"-name" in argv:
            name = argv[argv.index(b"-name") + 1].decode()
            if name == vm_name:
                lines.append(" ".join(a.decode() for a in argv))
    return lines


@pytest.fixture(scope="module")
def xen_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, subprocess.CompletedProcess[str]]]:
    results = tmp_path_factory.mktemp("xen-results")
    overrides = {"vnflab_platforms": ["xen"], "vnflab_boot_counts": COUNTS, "vnflab_memory_counts": COUNTS,
                 "vnflab_response_sizes": SIZES, **EXTRA}
    teardown = None
    try:
        playbook("site.yml", "-e", "vnflab_profile=quick", "-e", f"vnflab_results_dir={results}",
                 "-e", json.dumps(overrides))
    finally:
        teardown = playbook("site.yml", "--tags", "teardown", "-e", json.dumps({"vnflab_platforms": ["xen"]}))
    runs = sorted(p for p in results.iterdir() if p.is_dir())
    assert len(runs) == 1, f"expected one run directory, found {runs}"
    yield runs[0], teardown


def manifest_xen(run_dir: Path) -> dict:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return manifest["hosts"][XEN.host]["platform_info"]


def test_label_says_what_runs(xen_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    run = load_run(xen_run[0])
    labels = set(run.samples["label"])
    assert len(labels) == 1, labels
    label = parse_label(labels.pop())
    assert label is not None
    assert label.accelerator.startswith("emulated ")
    info = manifest_xen(xen_run[0])
    assert info["guest"] == GUEST
    if GUEST == "clickos":
        assert (label.engine, label.image, label.status) == ("xen", "clickos", "real")
        build = info["guest_build"]["build"]
        assert build["sources"]["clickos"]["version"] == "a092d40e53ddca514cd9a0bff56b1cd1e0228399"
        assert len(build["patches"]) >= 4 and build["pv_kernel"].startswith(("__xen_guest", "Xen ELF notes"))
        assert build["image_sha256"] == info["guest_build"]["image_sha256"]
    else:
        assert (label.engine, label.image, label.status) == ("xen", "linux-pv", "stand-in")
        assert label.stands_in_for == "ClickOS"


def test_every_domu_answers_ping(xen_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    samples = load_run(xen_run[0]).samples
    boot = samples[(samples["metric"] == "boot") & (samples["quantity"] == "instance_ms")]
    for n in COUNTS:
        point = boot[boot["x"] == n]
        assert len(point) >= n, f"N={n}: no boot samples"
        assert (point["status"] == "ok").all(), point[point["status"] != "ok"]
        # every instance index 0..N-1 answered in every repetition
        for _, repetition in point.groupby("repetition"):
            assert sorted(repetition["instance"].astype(int)) == list(range(n))
    all_ms = samples[(samples["metric"] == "boot") & (samples["quantity"] == "all_ms") & (samples["status"] == "ok")]
    assert (all_ms["value"] > 0).all()


def test_proxied_rtt_exceeds_the_direct_floor(xen_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    samples = load_run(xen_run[0]).samples
    ok = samples[(samples["metric"] == "response") & (samples["status"] == "ok")]
    for size in SIZES:
        proxy = ok[(ok["x"] == size) & (ok["quantity"] == "rtt_proxy_us")]["value"]
        direct = ok[(ok["x"] == size) & (ok["quantity"] == "rtt_direct_us")]["value"]
        assert len(proxy) >= 20 and len(direct) >= 20, f"{size} B: too few samples"
        assert proxy.median() > direct.median(), f"{size} B: proxy {proxy.median()} us <= direct {direct.median()} us"


def test_memory_seen_by_xen(xen_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    samples = load_run(xen_run[0]).samples
    memory = samples[(samples["metric"] == "memory") & (samples["status"] == "ok")]
    used = memory[memory["quantity"] == "server_used_mb"]
    assert not used.empty
    domain_mb = int(manifest_xen(xen_run[0])["memory_mb"])
    if GUEST == "clickos":
        assert domain_mb == 12, "ClickOS runs in the paper's 12 MB"
    for n in COUNTS:
        # Xen's free memory drops by at least the domains' RAM (each is platform_xen_memory_mb)
        assert used[used["x"] == n]["value"].median() >= 0.9 * n * domain_mb


def test_teardown_leaves_no_domain_and_no_qemu(xen_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    output = xen_run[1].stdout
    checks = task_results(output, "Check that no lab domain is left")
    assert [c["host"] for c in checks] == [XEN.host]
    assert not checks[0].get("failed") and not checks[0].get("skipped"), checks[0]
    assert checks[0]["stdout_lines"][0].startswith("Name")
    # only dom0 is left
    assert [line.split()[0] for line in checks[0]["stdout_lines"][1:]] == ["Domain-0"], checks[0]["stdout_lines"]
    stopped = task_results(output, "Check that QEMU is gone")
    assert stopped and not stopped[0].get("failed"), stopped
    vm_name = XEN.variables["vnflab_emulated_server"]["name"]
    assert qemu_of(vm_name) == []
    assert not Path(f"/sys/class/net/{vm_name}-e0").exists()
