"""The kvm platform's microVM (local-lab stand-in for OSv) on this machine.

Builds the image with ``roles/lab_common/files/vnflab-build-microvm`` (cached under
``.cache/microvm-test`` keyed by the builder's inputs), boots microVMs under QEMU TCG with
``vnflab-microvm`` on bridges in the root namespace (``vnfmbr0`` 198.18.253.1/24, ``vnfmbr1``
198.18.254.1/24; VMs at .10 and up, no route beyond the bridges) and checks that they answer ping,
print their console markers and leave nothing behind when stopped.

``test_measure_report`` (also marked heavy) measures boot time for N = 1, 2, 4, the smallest guest
memory that boots, the PSS of one QEMU process and the KVM probe, and writes them to
``.cache/microvm-test/measurements.json`` (reported, not asserted).

Needs root and qemu-system-x86, busybox-static, cpio, lz4 and apt (scripts/install.sh installs them).
"""

from __future__ import annotations

import concurrent.futures
import gzip
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from ansible.module_utils.vnflab_host.boot_probe import wait_first_replies
from ansible.module_utils.vnflab_host.driver import Instance, InstanceMemory, PlatformDriver
from ansible.module_utils.vnflab_host.meminfo import process_pss_kib
from ansible.module_utils.vnflab_host.timestamps import realtime_ns

from vnflab.measure import crosscheck

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "roles" / "platform_kvm" / "files"
SHARED_FILES = REPO / "roles" / "lab_common" / "files"
BUILDER = SHARED_FILES / "vnflab-build-microvm"
MICROVM = FILES / "vnflab-microvm"
KVM_PROBE = FILES / "vnflab-kvm-probe"
CACHE = REPO / ".cache" / "microvm-test"

BRIDGES = {"vnfmbr0": "198.18.253", "vnfmbr1": "198.18.254"}
PREFIX = 24
MEM_MB = 128  # functional tests: comfortably above the smallest size that boots
BOOT_TIMEOUT_S = 120.0  # one TCG boot takes ~2-10 s here, more on a loaded host
# A stand-in for the proxy (the C proxy is built elsewhere): prints its arguments, then idles.
PROXY_STANDIN = b'#!/bin/sh\necho "vnflab-proxy-standin: args: $*"\nexec sleep 2147483647\n'

REQUIRED = {
    "qemu-system-x86_64": "qemu-system-x86",
    "cpio": "cpio",
    "lz4": "lz4",
    "dpkg-deb": "dpkg",
    "apt-get": "apt",
    "ip": "iproute2",
    "ping": "iputils-ping",
}


def _missing() -> list[str]:
    missing = [f"{cmd} ({pkg})" for cmd, pkg in REQUIRED.items() if shutil.which(cmd) is None]
    if not os.access("/bin/busybox", os.X_OK):
        missing.append("/bin/busybox (busybox-static)")
    return missing


pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="microVMs on host bridges need root"),
    pytest.mark.skipif(bool(_missing()), reason=f"missing (scripts/install.sh installs them): {', '.join(_missing())}"),
]


def run(*args: str | Path, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=check)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_build_info(directory: Path) -> dict[str, str]:
    lines = (directory / "BUILD-INFO").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def cpio_members(initramfs: Path) -> dict[str, bytes]:
    """Regular files of a newc cpio.gz: name -> content (enough for checking what was packed)."""
    data = gzip.decompress(initramfs.read_bytes())
    members: dict[str, bytes] = {}
    offset = 0
    while offset < len(data):
        header = data[offset : offset + 110]
        assert header[:6] == b"070701", f"not newc at {offset}"
        mode = int(header[14:22], 16)
        size = int(header[54:62], 16)
        namesize = int(header[94:102], 16)
        name = data[offset + 110 : offset + 110 + namesize - 1].decode()
        start = (offset + 110 + namesize + 3) & ~3
        if name == "TRAILER!!!":
            break
        if mode & 0o170000 == 0o100000:
            members[name] = data[start : start + size]
        offset = (start + size + 3) & ~3
    return members


# --- the image -----------------------------------------------------------------------------------


def build(outdir: Path, proxy: Path, *extra: str) -> None:
    run(BUILDER, "--cache-dir", CACHE / "debs", *extra, outdir, proxy, timeout=600)


@pytest.fixture(scope="module")
def proxy_standin() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "proxy-standin"
    if not path.exists() or path.read_bytes() != PROXY_STANDIN:
        path.write_bytes(PROXY_STANDIN)
    path.chmod(0o755)
    return path


def cached_image(proxy: Path, *extra: str) -> Path:
    """Build (or reuse) the image for these inputs under CACHE/images/<hash of the builder's key>."""
    key = run(BUILDER, "--print-key", *extra, CACHE / "unused", proxy, timeout=120).stdout
    directory = CACHE / "images" / hashlib.sha256(key.encode()).hexdigest()[:16]
    info = directory / "BUILD-INFO"
    if not info.exists() or not info.read_text().startswith(key):
        shutil.rmtree(directory, ignore_errors=True)
        build(directory, proxy, *extra)
    return directory


@pytest.fixture(scope="module")
def image(proxy_standin: Path) -> Path:
    """The image for the stand-in proxy, rebuilt only when an input changes (kernel, busybox, files)."""
    return cached_image(proxy_standin)


def kernel_of(image_dir: Path) -> Path:
    return image_dir / read_build_info(image_dir)["kernel_file"]


# --- the lab: bridges and VMs --------------------------------------------------------------------


def qemu_pids(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains marker."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if marker in cmdline and stat[stat.rfind(")") + 2 :][:1] not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


class Lab:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def start(self, name: str, image_dir: Path, index: int, *, mem: int = MEM_MB, role: str = "instance",
              nics: int = 1, proxy_args: str = "", extra: tuple[str, ...] = ()) -> list[str]:
        """Start VM `name` with address .(10+index) on each bridge; returns its addresses."""
        bridges = list(BRIDGES)[:nics]
        addresses = [f"{BRIDGES[br]}.{10 + index}" for br in bridges]
        append = [f"vnflab.role={role}"]
        append += [f"vnflab.if{i}={address}/{PREFIX}" for i, address in enumerate(addresses)]
        if proxy_args:
            append.append(f"vnflab.proxy={proxy_args}")
        macs = [f"52:54:00:fd:{i:02x}:{10 + index:02x}" for i in range(nics)]
        run(MICROVM, "start", name, "--kernel", kernel_of(image_dir), "--initrd", image_dir / "initramfs.cpio.gz",
            "--mem", str(mem), "--accel", "tcg", "--bridge", ",".join(bridges), "--mac", ",".join(macs),
            "--append", " ".join(append), "--state-dir", self.state_dir, *extra, timeout=60)
        return addresses

    def stop(self, name: str) -> None:
        run(MICROVM, "stop", name, "--state-dir", self.state_dir, timeout=60)

    def pid(self, name: str) -> int | None:
        done = run(MICROVM, "pid", name, "--state-dir", self.state_dir, check=False)
        return int(done.stdout) if done.returncode == 0 else None

    def console(self, name: str) -> str:
        try:
            return (self.state_dir / f"{name}.console").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def taps(self, name: str, nics: int = 1) -> list[str]:
        bridges = ",".join(list(BRIDGES)[:nics])
        return run(MICROVM, "taps", name, "--bridge", bridges).stdout.split()

    def wait_ping(self, name: str, address: str, timeout: float = BOOT_TIMEOUT_S) -> float:
        """Seconds until `ping -c 1 -W 1 address` succeeds; fails early if QEMU died."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if run("ping", "-n", "-c", "1", "-W", "1", address, check=False, timeout=10).returncode == 0:
                return time.monotonic() - start
            if self.pid(name) is None:
                raise AssertionError(f"QEMU of {name} died; console:\n{self.console(name)[-2000:]}")
        raise AssertionError(f"{name} ({address}) did not answer ping in {timeout:g} s:\n{self.console(name)[-2000:]}")

    def wait_console(self, name: str, text: str, timeout: float = BOOT_TIMEOUT_S) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.console(name):
                return
            if self.pid(name) is None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} on the console of {name}:\n{self.console(name)[-2000:]}")

    def assert_gone(self, name: str, nics: int = 1) -> None:
        assert qemu_pids(f"-pidfile {self.state_dir}/{name}.pid") == []
        for tap in self.taps(name, nics):
            assert not Path(f"/sys/class/net/{tap}").exists(), f"tap {tap} left behind"
        leftovers = sorted(p.name for p in self.state_dir.glob(f"{name}.*"))
        assert leftovers == [], f"state files left behind: {leftovers}"


def _delete_bridges() -> None:
    for bridge in BRIDGES:
        if Path(f"/sys/class/net/{bridge}").exists():
            run("ip", "link", "del", bridge, check=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    routes = run("ip", "-4", "route", "show").stdout
    for bridge, net in BRIDGES.items():
        if f"{net}.0/{PREFIX}" in routes and bridge not in routes:
            pytest.skip(f"{net}.0/{PREFIX} is already routed on this machine")
    _delete_bridges()  # leftovers of an interrupted run (these names belong to this test)
    state_dir = tmp_path_factory.mktemp("microvm-state")
    try:
        for bridge, net in BRIDGES.items():
            run("ip", "link", "add", bridge, "type", "bridge")
            run("ip", "addr", "add", f"{net}.1/{PREFIX}", "dev", bridge)
            run("ip", "link", "set", bridge, "up")
            # 10 ms ARP retries while polling addresses that do not exist yet (see LAB-NOTES).
            Path(f"/proc/sys/net/ipv4/neigh/{bridge}/retrans_time_ms").write_text("10\n")
        yield Lab(state_dir)
    finally:
        run(MICROVM, "stop-all", "--state-dir", state_dir, timeout=300, check=False)
        for pid in qemu_pids(f"-pidfile {state_dir}/"):  # only if stop-all failed: ours by state dir
            os.kill(pid, 9)
        _delete_bridges()


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_build_is_reproducible_and_packs_what_init_needs(image: Path, tmp_path: Path) -> None:
    info = read_build_info(image)
    for field in ("kernel_package", "kernel_version", "busybox_version", "proxy_sha256", "kernel_release"):
        assert info.get(field), f"BUILD-INFO lacks {field}"
    assert info["kernel_package"].startswith("linux-image-") and "cloud-amd64" in info["kernel_package"]
    members = cpio_members(image / "initramfs.cpio.gz")
    for name in ("init", "bin/busybox", "usr/sbin/vnflab-proxy", "etc/vnflab/modules"):
        assert name in members, f"{name} not in the initramfs"
    assert members["init"] == (SHARED_FILES / "microvm-init").read_bytes()
    assert hashlib.sha256(members["usr/sbin/vnflab-proxy"]).hexdigest() == info["proxy_sha256"]
    modules = members["etc/vnflab/modules"].decode().split()
    assert modules and modules[-1].endswith("/virtio_net.ko"), modules
    for module in modules:
        assert f"lib/modules/{info['kernel_release']}/{module}" in members

    # Same inputs, byte-identical outputs; a static binary (busybox) as the proxy lands at /usr/sbin.
    deb = next((CACHE / "debs").glob(f"{info['kernel_package']}_*.deb"))
    outputs = []
    for attempt in ("a", "b"):
        outdir = tmp_path / attempt
        run(BUILDER, "--kernel-deb", deb, outdir, "/bin/busybox", timeout=600)
        outputs.append({f.name: sha256(f) for f in sorted(outdir.iterdir())})
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {"BUILD-INFO", "initramfs.cpio.gz", info["kernel_file"]}
    packed = cpio_members(tmp_path / "a" / "initramfs.cpio.gz")["usr/sbin/vnflab-proxy"]
    assert packed == Path("/bin/busybox").read_bytes()


@pytest.mark.timeout(600)
def test_one_then_two_vms_answer_ping_and_stop_clean(lab: Lab, image: Path) -> None:
    (address,) = lab.start("vnfm-t0", image, 0)
    assert lab.pid("vnfm-t0") is not None
    lab.wait_ping("vnfm-t0", address)
    # The guest can answer ping a moment before its serial console shows the markers: wait for them.
    lab.wait_console("vnfm-t0", "vnflab: network up", timeout=30)
    lab.wait_console("vnfm-t0", "vnflab: instance ready", timeout=30)
    lab.stop("vnfm-t0")
    lab.assert_gone("vnfm-t0")
    lab.stop("vnfm-t0")  # idempotent

    names = ["vnfm-t1", "vnfm-t2"]
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        addresses = list(pool.map(lambda i: lab.start(names[i], image, 1 + i)[0], range(len(names))))
    for name, address in zip(names, addresses, strict=True):
        lab.wait_ping(name, address)
        lab.wait_console(name, "vnflab: instance ready", timeout=30)
    for name in names:
        lab.stop(name)
        lab.assert_gone(name)


@pytest.mark.timeout(300)
def test_two_nics_in_device_order_and_instance_runs_the_proxy(lab: Lab, image: Path) -> None:
    addresses = lab.start("vnfm-n2", image, 5, nics=2, proxy_args="--mode,raw,--proxy-a,198.18.253.15")
    for address in addresses:  # role=instance answers ping even with the proxy in raw mode
        lab.wait_ping("vnfm-n2", address)
    lab.wait_console("vnfm-n2", "vnflab-proxy-standin: args: --mode raw --proxy-a 198.18.253.15", timeout=30)
    neighbours = run("ip", "-4", "neigh", "show").stdout
    for i, address in enumerate(addresses):  # eth0 is the first -device, eth1 the second
        assert f"{address} dev {list(BRIDGES)[i]} lladdr 52:54:00:fd:{i:02x}:0f" in neighbours
    lab.stop("vnfm-n2")
    lab.assert_gone("vnfm-n2", nics=2)


@pytest.mark.timeout(300)
def test_proxy_role_runs_proxy_and_raw_mode_silences_the_guest_kernel(lab: Lab, image: Path) -> None:
    (address,) = lab.start("vnfm-px", image, 6, role="proxy", proxy_args="--mode,raw,--listen,198.18.253.16")
    lab.wait_console("vnfm-px", "vnflab: proxy ready")
    lab.wait_console("vnfm-px", "vnflab-proxy-standin: args: --mode raw --listen 198.18.253.16", timeout=30)
    console = lab.console("vnfm-px")
    assert "vnflab: network up" in console and "vnflab: error" not in console
    # The guest answers ARP but not ICMP echo (icmp_echo_ignore_all=1 in raw mode).
    arping = run("busybox", "arping", "-c", "1", "-w", "5", "-I", "vnfmbr0", address, check=False, timeout=20)
    assert "Received 1 response" in arping.stdout, arping.stdout
    assert run("ping", "-n", "-c", "2", "-W", "1", address, check=False, timeout=20).returncode != 0
    lab.stop("vnfm-px")
    lab.assert_gone("vnfm-px")


@pytest.mark.timeout(120)
def test_start_fails_cleanly_and_names_fit(lab: Lab, image: Path) -> None:
    done = run(MICROVM, "start", "vnfm-bad", "--kernel", kernel_of(image), "--initrd", image / "initramfs.cpio.gz",
               "--mem", "64", "--accel", "tcg", "--bridge", "vnfm-nobr", "--mac", "52:54:00:fd:00:99",
               "--append", "vnflab.role=instance", "--state-dir", lab.state_dir, check=False)
    assert done.returncode != 0 and "does not exist" in done.stderr
    lab.assert_gone("vnfm-bad")
    long_taps = run(MICROVM, "taps", "vnflab-kvm-instance-127", "--bridge", "a,b").stdout.split()
    assert len(long_taps) == 2 and len(set(long_taps)) == 2 and all(len(t) <= 15 for t in long_taps)
    assert run(MICROVM, "stop", "vnfm-never", "--state-dir", lab.state_dir).returncode == 0


@pytest.mark.timeout(120)
def test_kvm_probe_answers_in_bounded_time(image: Path) -> None:
    start = time.monotonic()
    done = run(KVM_PROBE, "--kernel", kernel_of(image), "--initrd", image / "initramfs.cpio.gz",
               "--timeout", "20", timeout=60)
    elapsed = time.monotonic() - start
    assert done.stdout.strip() in ("kvm", "tcg"), done.stdout
    assert elapsed < 20 + 15
    assert qemu_pids("vnflab-kvm-probe.") == []


# --- measurements (reported, not asserted) -------------------------------------------------------


def _first_replies(lab: Lab, names: list[str], addresses: list[str], timeout: float) -> dict[str, int | None]:
    """Kernel RX time (CLOCK_REALTIME ns) of each address's first echo reply, polled every 1 ms by the
    project's boot prober in 2 s rounds; gives up early on addresses whose QEMU has exited."""
    first: dict[str, int | None] = dict.fromkeys(addresses)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pending = [a for a in addresses if first[a] is None]
        if not pending:
            break
        result = wait_first_replies(pending, min(2.0, max(0.1, end - time.monotonic())), 0.001, 1000)
        first.update({a: ns for a, ns in result.first_reply_ns.items() if ns is not None})
        alive = [a for n, a in zip(names, addresses, strict=True) if first[a] is None and lab.pid(n) is not None]
        if not alive and any(first[a] is None for a in addresses):
            break
    return first


def pss_breakdown_mb(pid: int) -> dict[str, float]:
    """Pss, Pss_Anon and Pss_File of one process (MB) from /proc/PID/smaps_rollup."""
    values: dict[str, float] = {"Pss": process_pss_kib(pid) / 1024}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Pss_Anon", "Pss_File"):
                values[key] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return {k: round(v, 1) for k, v in values.items()}


def _boot_batch(lab: Lab, image: Path, n: int, mem: int, tag: str, extra: tuple[str, ...] = ()) -> dict[str, object]:
    """Start n VMs together (like the driver does) and time each until its first echo reply."""
    names = [f"vnfm-{tag}{i}" for i in range(n)]
    addresses = [f"{BRIDGES['vnfmbr0']}.{10 + i}" for i in range(n)]
    t0: dict[str, int] = {}

    def start(i: int) -> None:
        t0[names[i]] = realtime_ns()
        lab.start(names[i], image, i, mem=mem, extra=extra)

    try:
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            for future in [pool.submit(start, i) for i in range(n)]:
                future.result()
        replies = _first_replies(lab, names, addresses, BOOT_TIMEOUT_S)
        instance_ms = [None if replies[a] is None else (replies[a] - t0[nm]) / 1e6
                       for nm, a in zip(names, addresses, strict=True)]
        answered = [r for r in replies.values() if r is not None]
        pss: dict[str, float] = {}
        if len(answered) == n:
            time.sleep(2)
            pid = lab.pid(names[0])
            pss = pss_breakdown_mb(pid) if pid else {}
        failure = ""
        if len(answered) < n:
            consoles = "\n".join(lab.console(nm) for nm in names)
            lines = [ln for ln in consoles.splitlines() if "panic" in ln or "Out of memory" in ln]
            if lines:
                failure = lines[0][:200]
            elif not consoles.strip():
                failure = "QEMU exited with an empty console (guest reset before the console came up)"
            else:
                failure = "no reply"
        return {
            "n": n, "mem_mb": mem,
            "instance_ms": [None if ms is None else round(ms, 1) for ms in instance_ms],
            "all_ms": round((max(answered) - min(t0.values())) / 1e6, 1) if len(answered) == n else None,
            "pss_mb_first": pss.get("Pss"),
            "pss_anon_mb_first": pss.get("Pss_Anon"),
            "pss_file_mb_first": pss.get("Pss_File"),
            "load1": round(os.getloadavg()[0], 2),
            "failure": failure,
        }
    finally:
        for name in names:
            lab.stop(name)


@pytest.mark.heavy
@pytest.mark.timeout(3600)
def test_measure_report(lab: Lab, image: Path, proxy_standin: Path) -> None:
    report: dict[str, object] = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                 "build_info": read_build_info(image), "host_cpus": os.cpu_count()}
    report["boot_tcg"] = [_boot_batch(lab, image, n, MEM_MB, f"b{n}-") for n in (1, 2, 4)]

    memory: dict[int, list[dict[str, object]]] = {}
    for mem in (32, 48, 64, 80, 96, 128):
        memory[mem] = [_boot_batch(lab, image, 1, mem, f"m{mem}-{rep}") for rep in range(3)]
    report["memory_sweep"] = {str(m): runs for m, runs in memory.items()}
    reliable = [m for m, runs in memory.items() if all(r["all_ms"] is not None for r in runs)]
    report["smallest_reliable_mem_mb"] = min(reliable) if reliable else None

    # Variants: the compressed bzImage instead of the ELF vmlinux; a 32 MB TCG translation cache.
    vmlinuz = cached_image(proxy_standin, "--kernel-format", "vmlinuz")
    report["variants"] = {
        "vmlinuz": [_boot_batch(lab, vmlinuz, 1, MEM_MB, f"z{rep}-") for rep in range(3)],
        "vmlinux": [_boot_batch(lab, image, 1, MEM_MB, f"x{rep}-") for rep in range(3)],
        "vmlinux_tb32": [_boot_batch(lab, image, 1, MEM_MB, f"t{rep}-", ("--tb-size", "32")) for rep in range(3)],
    }

    start = time.monotonic()
    probe = run(KVM_PROBE, "--kernel", kernel_of(image), "--initrd", image / "initramfs.cpio.gz",
                "--timeout", "20", timeout=60)
    report["kvm_probe"] = {"answer": probe.stdout.strip(), "seconds": round(time.monotonic() - start, 2),
                           "why": probe.stderr.strip()[-300:]}

    (CACHE / "measurements.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


# --- cross-checks against QEMU's own record (issue 24; the same checks on the lab: tests/e2e/test_platform_probes.py)


def _library_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"vnflab_library_{name}", REPO / "library" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _microvm_driver(lab: Lab, image: Path) -> dict[str, Any]:
    """A driver specification like the kvm role's, on this test's bridge (instances at .30 and up)."""
    state = str(lab.state_dir)
    return {
        "name": "kvm", "label": "kvm/microvm (tcg, stand-in for OSv)", "instance_prefix": "vnfm-x",
        "network": {"cidr": f"{BRIDGES['vnfmbr0']}.0/{PREFIX}", "first_host": 30},
        "start": [str(MICROVM), "start", "${name}", "--kernel", str(kernel_of(image)), "--initrd",
                  str(image / "initramfs.cpio.gz"), "--mem", str(MEM_MB), "--accel", "tcg", "--bridge", "vnfmbr0",
                  "--mac", "${mac}", "--append", f"vnflab.role=instance vnflab.if0=${{address}}/{PREFIX}",
                  "--state-dir", state],
        "stop": [str(MICROVM), "stop", "${name}", "--state-dir", state],
        "pid": [str(MICROVM), "pid", "${name}", "--state-dir", state],
        "own_cgroup": False,
    }


def _params(spec: dict[str, Any], **extra: Any) -> SimpleNamespace:
    return SimpleNamespace(check_mode=False, params={
        "driver": spec, "count": 2, "state": "present", "timeout_s": BOOT_TIMEOUT_S, "poll_interval_ms": None,
        "max_pps": 20000, "max_parallel": None, **extra})


@pytest.mark.timeout(600)
def test_boot_times_agree_with_the_qemu_process_start(lab: Lab, image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """vnf_boot_time's own run(), 2 batches of 2 VMs: QEMU's process start (the kernel's record, found by the VM's
    MAC) lies after T0 and before both the start command's return and the first reply, within 1 ms + one tick."""
    boot_module = _library_module("vnf_boot_time")
    seen: list[dict[str, tuple[Instance, tuple[int, int] | Exception]]] = []

    class Watching(PlatformDriver):
        def stop(self, instances: Sequence[Instance]) -> list[str]:
            batch: dict[str, tuple[Instance, tuple[int, int] | Exception]] = {}
            for inst in instances:
                try:
                    (pid,) = crosscheck.processes_with_argument(f"mac={inst.mac}")
                    batch[inst.name] = (inst, crosscheck.process_start_realtime_ns(pid))
                except Exception as exc:  # reported below: the VMs are stopped first
                    batch[inst.name] = (inst, exc)
            seen.append(batch)
            return super().stop(instances)

    monkeypatch.setattr(boot_module, "PlatformDriver", Watching)
    problems: list[str] = []
    for _ in range(2):
        result = boot_module.run(_params(_microvm_driver(lab, image)))
        for entry, boot_ms in zip(result["instances"], result["boot_ms"], strict=True):
            assert boot_ms is not None, f"{entry['name']} never answered"
            inst, start = seen[-1][entry["name"]]
            if isinstance(start, Exception):
                raise start
            times = crosscheck.ProbeTimes(inst.name, inst.start_ns, inst.started_ns,
                                          inst.start_ns + round(boot_ms * 1e6))
            returned_ms = (inst.started_ns - inst.start_ns) / 1e6
            print(f"{inst.name}: QEMU started {(start[0] - inst.start_ns) / 1e6:.1f} ms after T0 (tick "
                  f"{start[1] / 1e6:g} ms), start command returned at {returned_ms:.1f} ms, first reply at "
                  f"{boot_ms:.1f} ms")
            problems += crosscheck.boot_disagreements(times, crosscheck.qemu_moments(*start))
    assert problems == []


@pytest.mark.timeout(600)
def test_qemu_pss_agrees_with_the_kernels_smaps(lab: Lab, image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """vnf_memory's own run(), 2 VMs: each recorded PSS between the per-mapping PSS of the QEMU process (found by the
    VM's MAC) read just before and just after, within 1 KiB per mapping."""
    memory_module = _library_module("vnf_memory")
    problems: list[str] = []
    checked: list[float] = []

    def smaps(instance: Instance) -> tuple[int, int]:
        (pid,) = crosscheck.processes_with_argument(f"mac={instance.mac}")
        return crosscheck.smaps_pss_kib(Path(f"/proc/{pid}/smaps").read_text())

    class Bracketing(PlatformDriver):
        def memory(self, instance: Instance) -> InstanceMemory:
            before = smaps(instance)
            recorded = super().memory(instance)
            after = smaps(instance)
            assert recorded.pss_mb is not None, f"{instance.name}: no PSS recorded"
            print(f"{instance.name}: recorded {recorded.pss_mb:.3f} MB, smaps {before[0] / 1024:.3f} then "
                  f"{after[0] / 1024:.3f} MB ({before[1]} mappings)")
            problem = crosscheck.bracket_problem(f"{instance.name} pss_mb", recorded.pss_mb, before[0] / 1024,
                                                 after[0] / 1024, max(before[1], after[1]) / 1024)
            problems.extend([problem] if problem else [])
            checked.append(recorded.pss_mb)
            return recorded

    monkeypatch.setattr(memory_module, "PlatformDriver", Bracketing)
    memory_module.run(_params(_microvm_driver(lab, image), settle_s=0.5, reads=1))
    assert len(checked) == 2 and min(checked) > MEM_MB / 8  # a booted TCG guest's QEMU: tens of MB at least
    assert problems == []
