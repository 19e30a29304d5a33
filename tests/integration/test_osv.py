"""OSv on this machine: the kernel and Capstan built from the source mirror with the role's scripts, the C proxy
composed into a ROFS image, booted by ``vnflab-microvm --osv`` under QEMU TCG.

Builds once per input set under ``.cache/osv-test/<key>`` (key: the mirror's SHA256SUMS, the build scripts, the
Capstan patch, the proxy sources); the first OSv build takes 5-15 min on 2 cores, so the module is marked heavy.
Topology (root namespace bridges ``osvt-br0``/``osvt-br1``, namespaces ``osvt-a``/``osvt-b``)::

    osvt-a 198.18.249.2/30 -- osvt-br0 -- OSv eth0 .1 | eth1 198.18.249.5 -- osvt-br1 -- osvt-b 198.18.249.6/30

Needs root, qemu-system-x86, the OSv and Capstan build packages (vnflab-build-osv/-capstan --print-packages) and the
source mirror (VNFLAB_SOURCE_MIRROR, default ../shared/unikernels/sources).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nslab import in_ns, pid_alive, run, wait_for

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "roles" / "platform_kvm" / "files"
MICROVM = FILES / "vnflab-microvm"
ECHO = REPO / "roles" / "host_b" / "files" / "vnflab_udp_echo.py"
MIRROR = Path(os.environ.get("VNFLAB_SOURCE_MIRROR", REPO.parent / "shared" / "unikernels" / "sources"))
CACHE = REPO / ".cache" / "osv-test"
SIZES = (64, 1472, 8192, 16384, 32768, 65507)
PORT = 7007
A, PA, PB, B = "198.18.249.2", "198.18.249.1", "198.18.249.5", "198.18.249.6"
MASK = "255.255.255.252"
BOOT_TIMEOUT_S = 90.0

pytestmark = [
    pytest.mark.lab,
    pytest.mark.heavy,
    pytest.mark.skipif(os.geteuid() != 0, reason="VMs on host bridges need root"),
    pytest.mark.skipif(not (MIRROR / "SHA256SUMS").exists(), reason=f"no source mirror at {MIRROR}"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 missing"),
]


def cache_key() -> str:
    digest = hashlib.sha256((MIRROR / "SHA256SUMS").read_bytes())
    for path in sorted([FILES / "vnflab-build-osv", FILES / "vnflab-build-capstan", FILES / "vnflab-osv-compose",
                        *FILES.glob("patches/*.patch"), *(REPO / "src" / "proxy").glob("*.[ch]")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def unpack(archive: str, into: Path) -> None:
    with tarfile.open(MIRROR / archive) as tar:
        tar.extractall(into, filter="tar")


@pytest.fixture(scope="module")
def artifacts() -> dict[str, Path]:
    """loader-stripped.elf and the composed proxy image (command line in the image: the proxy's --help)."""
    out = CACHE / cache_key()
    image = out / "vnflab-proxy.qcow2"
    if not image.exists():
        shutil.rmtree(out, ignore_errors=True)
        work = out / "src"
        work.mkdir(parents=True)
        unpack("osv.tar.gz", work)
        for name in ("musl_1.2.1", "musl_0.9.12", "kbuild"):
            unpack(f"{name}.tar.gz", work / "osv")
        unpack("acpica.tar.gz", work / "osv" / "external" / "x64")
        unpack("capstan.tar.gz", work)
        run(str(FILES / "vnflab-build-osv"), "--src", str(work / "osv"), "--out", str(out / "osv"), timeout=3600)
        run(str(FILES / "vnflab-build-capstan"), "--src", str(work / "capstan"), "--out", str(out / "capstan"),
            timeout=600)
        run("make", "-s", "-C", str(REPO / "src" / "proxy"), f"O={out / 'proxy'}", "pie", timeout=120)
        run(str(FILES / "vnflab-osv-compose"), "--capstan", str(out / "capstan" / "capstan"),
            "--loader", str(out / "osv" / "loader.img"), "--app", str(out / "proxy" / "vnflab-proxy.so"),
            "--name", "vnflab-proxy", "--cmdline", "/vnflab-proxy.so --help", "--out", str(image), timeout=300)
        shutil.rmtree(work)
    return {"kernel": out / "osv" / "loader-stripped.elf", "image": image}


class OsvLab:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.names: list[str] = []

    def start(self, name: str, artifacts: dict[str, Path], bridges: list[str], ips: list[str], append: str,
              mem: int = 64, check: bool = True) -> subprocess.CompletedProcess[str]:
        self.names.append(name)
        macs = ",".join(f"52:54:00:0e:{len(self.names):02x}:{i:02x}" for i in range(len(bridges)))
        args = [str(MICROVM), "start", name, "--osv", "--kernel", str(artifacts["kernel"]),
                "--disk", str(artifacts["image"]), "--mem", str(mem), "--accel", "tcg", "--bridge", ",".join(bridges),
                "--mac", macs, "--state-dir", str(self.state_dir), "--append", append]
        for ip in ips:
            args += ["--ip", ip]
        return run(*args, check=check, timeout=60)

    def console(self, name: str) -> str:
        path = self.state_dir / f"{name}.console"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_console(self, name: str, marker: str, timeout: float = BOOT_TIMEOUT_S) -> None:
        try:
            wait_for(lambda: marker in self.console(name), timeout, f"{marker!r} on {name}'s console", 0.05)
        except AssertionError as error:
            raise AssertionError(f"{error}; console:\n{self.console(name)[-3000:]}") from None

    def pid(self, name: str) -> int | None:
        done = run(str(MICROVM), "pid", name, "--state-dir", str(self.state_dir), check=False)
        return int(done.stdout) if done.returncode == 0 else None

    def stop(self, name: str) -> None:
        pid = self.pid(name)
        run(str(MICROVM), "stop", name, "--state-dir", str(self.state_dir), timeout=60)
        assert pid is None or not pid_alive(pid)
        taps = run(str(MICROVM), "taps", name, "--bridge", "x,y").stdout.split()
        assert not [t for t in taps if Path(f"/sys/class/net/{t}").exists()]
        assert not list(self.state_dir.glob(f"{name}.*"))


@pytest.fixture()
def lab(tmp_path: Path) -> Iterator[OsvLab]:
    for br in ("osvt-br0", "osvt-br1"):
        run("ip", "link", "add", br, "type", "bridge")
        run("ip", "link", "set", br, "up")
    for ns, br, address in (("osvt-a", "osvt-br0", f"{A}/30"), ("osvt-b", "osvt-br1", f"{B}/30")):
        run("ip", "netns", "add", ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "link", "add", f"{ns}-h", "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "link", "set", f"{ns}-h", "master", br)
        run("ip", "link", "set", f"{ns}-h", "up")
        run("ip", "-n", ns, "addr", "add", address, "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
    osv_lab = OsvLab(tmp_path / "state")
    try:
        yield osv_lab
    finally:
        for name in osv_lab.names:
            run(str(MICROVM), "stop", name, "--state-dir", str(osv_lab.state_dir), check=False, timeout=60)
        for ns in ("osvt-a", "osvt-b"):
            run("ip", "netns", "del", ns, check=False)
        for br in ("osvt-br0", "osvt-br1"):
            run("ip", "link", "del", br, check=False)


SENDER = r"""
import os, socket, sys
bind, dest, sizes, count = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split(",")], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((bind, 0))
s.settimeout(3.0)
for size in sizes:
    ok = 0
    for i in range(count):
        payload = os.urandom(size)
        s.sendto(payload, (dest, 7007))
        try:
            while s.recvfrom(65535)[0] != payload:
                pass
            ok += 1
        except socket.timeout:
            pass
    print(size, ok, flush=True)
"""


def relay(namespace: str, bind: str, dest: str, count: int) -> dict[int, int]:
    done = run(*in_ns(namespace, sys.executable, "-c", SENDER, bind, dest, ",".join(map(str, SIZES)), str(count)),
               timeout=600)
    return {int(size): int(ok) for size, ok in (line.split() for line in done.stdout.split("\n") if line)}


@pytest.mark.timeout(1800)
def test_proxy_relays_every_size_both_ways(lab: OsvLab, artifacts: dict[str, Path]) -> None:
    append = f"/vnflab-proxy.so --mode udp --host-a {A} --host-b {B} --proxy-a {PA} --proxy-b {PB} --udp-port {PORT}"
    lab.start("osvt-proxy", artifacts, ["osvt-br0", "osvt-br1"], [f"eth0,{PA},{MASK}", f"eth1,{PB},{MASK}"], append)
    lab.wait_console("osvt-proxy", "vnflab-proxy: ready mode=udp")
    console = lab.console("osvt-proxy")
    assert f"eth0: {PA}" in console and f"eth1: {PB}" in console
    # OSv refuses 4 MiB: the proxy settles below its cap, far above one 64 KB datagram.
    for option in ("SO_RCVBUF", "SO_SNDBUF"):
        match = re.search(rf"{option} asked (\d+) bytes \((\d+) tries\), kernel reports (\d+)", console)
        assert match, console[-2000:]
        asked, tries, reported = map(int, match.groups())
        assert 1 << 20 < asked < 2 << 20 and tries > 1 and reported >= asked, match.group(0)
    echoes = []
    try:
        for ns, bind in (("osvt-b", B), ("osvt-a", A)):
            echoes.append(subprocess.Popen(in_ns(ns, sys.executable, str(ECHO), "--bind", bind, "--port", str(PORT)),
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        count = 10
        assert relay("osvt-a", A, PA, count) == dict.fromkeys(SIZES, count)  # A -> OSv -> B's echo -> back
        assert relay("osvt-b", B, PB, count) == dict.fromkeys(SIZES, count)  # B -> OSv -> A's echo -> back
    finally:
        for echo in echoes:
            echo.terminate()
            echo.wait(timeout=10)
    lab.stop("osvt-proxy")


@pytest.mark.timeout(600)
def test_probe_instance_answers_ping_and_append_replaces_the_image_command(lab: OsvLab,
                                                                            artifacts: dict[str, Path]) -> None:
    append = f"/vnflab-proxy.so --mode udp --host-a {A} --host-b {B} --proxy-a {PA} --proxy-b {PA}"
    lab.start("osvt-probe", artifacts, ["osvt-br0"], [f"eth0,{PA},{MASK}"], append, mem=32)
    lab.wait_console("osvt-probe", "vnflab-proxy: ready mode=udp")
    assert "usage: vnflab-proxy" not in lab.console("osvt-probe")  # the image's own command is --help
    done = run(*in_ns("osvt-a", "ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", PA), check=False, timeout=60)
    assert done.returncode == 0 and " 0% packet loss" in done.stdout, done.stdout
    lab.stop("osvt-probe")


@pytest.mark.timeout(600)
def test_an_osv_abort_ends_qemu_and_health_names_it(lab: OsvLab, artifacts: dict[str, Path]) -> None:
    # Two fields only: OSv aborts ("incorrect parameter on --ip"); --power-off-on-abort ends QEMU.
    lab.start("osvt-abort", artifacts, ["osvt-br0"], [], f"--ip=eth0,{PA} /vnflab-proxy.so --help", mem=32)
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while time.monotonic() < deadline:
        health = run(str(MICROVM), "health", "osvt-abort", "--state-dir", str(lab.state_dir), check=False)
        if health.returncode != 0:
            break
        time.sleep(0.2)
    assert health.returncode == 1
    assert "incorrect parameter on --ip" in health.stderr, health.stderr + lab.console("osvt-abort")[-2000:]
    lab.stop("osvt-abort")
