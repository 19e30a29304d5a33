"""The C proxy VNF (src/proxy) on the wire: Host A -> proxy -> Host B in three network namespaces.

    vnfp-a                      vnfp-p (proxy)                        vnfp-b
    vnfp-a0 198.18.251.2 ---- vnfp-pa 198.18.251.1  vnfp-pb 198.18.252.1 ---- vnfp-b0 198.18.252.2
    vnfp-ad 198.18.253.1 ------------------- direct link (the floor) ------------ vnfp-bd 198.18.253.2

A routes 198.18.252.0/24 via 198.18.251.1, B routes 198.18.251.0/24 via 198.18.252.1. The proxy
namespace has ip_forward=0 and icmp_echo_ignore_all=1 (raw mode's contract). Raw mode runs the
static build, udp mode the PIE build (the OSv artifact). B runs the project's UDP echo server on
0.0.0.0:7007; A runs one too, for B-initiated flows. RTT medians are printed, never asserted.

Needs root. Only addresses in 198.18.251-253.0/24, inside these namespaces, no route beyond them.
Every namespace and process the fixtures create is removed by name or by PID.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nslab import in_ns as _in_ns
from nslab import run as _run
from nslab import wait_for

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
PROXY_SRC = REPO / "src" / "proxy"
HELPER = Path(__file__).resolve().parent / "proxy_wire_helper.py"
RUNNER = Path(__file__).resolve().parent / "probe_runner.py"
ECHO_SERVER = REPO / "roles" / "host_b" / "files" / "vnflab_udp_echo.py"
PYTHON = sys.executable

NS_A, NS_P, NS_B = "vnfp-a", "vnfp-p", "vnfp-b"
A, PA = "198.18.251.2", "198.18.251.1"
B, PB = "198.18.252.2", "198.18.252.1"
A_DIRECT, B_DIRECT = "198.18.253.1", "198.18.253.2"
LINKS = (  # (namespace, device, peer namespace, peer device, address/prefix, peer address/prefix)
    (NS_A, "vnfp-a0", NS_P, "vnfp-pa", f"{A}/24", f"{PA}/24"),
    (NS_P, "vnfp-pb", NS_B, "vnfp-b0", f"{PB}/24", f"{B}/24"),
    (NS_A, "vnfp-ad", NS_B, "vnfp-bd", f"{A_DIRECT}/24", f"{B_DIRECT}/24"),
)
UDP_PORT = 7007
SIZES = (64, 1472, 65507)
RTT_SAMPLES, RTT_WARMUP = 20, 3


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    wait_for(predicate, timeout, what, interval=0.02)


@dataclass
class Wire:
    """The three-namespace lab; processes it started are stopped by PID at teardown."""

    tmp: Path
    binaries: dict[str, Path]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as handle:
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def spawn_split(self, command: list[str], out: Path, err: Path) -> subprocess.Popen[bytes]:
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def cleanup(self) -> None:
        for process in reversed(self.processes):
            stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 5.0) -> int | None:
    """SIGTERM, then SIGKILL, the process we started (by its PID); returns its exit status."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        os.kill(process.pid, signum)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
    return process.poll()


def _delete_namespaces() -> None:
    for namespace in (NS_A, NS_P, NS_B):
        _run("ip", "netns", "del", namespace, check=False)


def _build_proxy(out_dir: Path) -> dict[str, Path]:
    done = _run("make", "-C", str(PROXY_SRC), f"O={out_dir}", "static", "pie", check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return {"raw": out_dir / "vnflab-proxy", "udp": out_dir / "vnflab-proxy.so"}


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("needs gcc and make to build the proxy")
    tmp = tmp_path_factory.mktemp("proxy-wire")
    binaries = _build_proxy(tmp / "build")
    _delete_namespaces()  # leftovers of an interrupted run (our own names only)
    state = Wire(tmp=tmp, binaries=binaries)
    try:
        for namespace in (NS_A, NS_P, NS_B):
            _run("ip", "netns", "add", namespace)
            _run("ip", "-n", namespace, "link", "set", "lo", "up")
        for ns, dev, peer_ns, peer_dev, addr, peer_addr in LINKS:
            _run("ip", "link", "add", dev, "netns", ns, "type", "veth", "peer", "name", peer_dev, "netns", peer_ns)
            _run("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            _run("ip", "-n", peer_ns, "addr", "add", peer_addr, "dev", peer_dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
            _run("ip", "-n", peer_ns, "link", "set", peer_dev, "up")
        _run("ip", "-n", NS_A, "route", "add", "198.18.252.0/24", "via", PA)
        _run("ip", "-n", NS_B, "route", "add", "198.18.251.0/24", "via", PB)
        _run(*_in_ns(NS_P, "sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv4.icmp_echo_ignore_all=1"))
        for namespace, bind in ((NS_B, "0.0.0.0"), (NS_A, "0.0.0.0")):
            log = tmp / f"echo-{namespace}.log"
            state.spawn(_in_ns(namespace, PYTHON, str(ECHO_SERVER), "--bind", bind, "--port", str(UDP_PORT)), log)
            _wait_for(lambda log=log: "listening" in log.read_text(errors="replace"), 10, f"echo in {namespace}")
        yield state
    finally:
        state.cleanup()
        _delete_namespaces()
        leftover = _run("ip", "netns", "list", check=False).stdout
        assert not re.search(r"^vnfp-[apb]\b", leftover, re.M), leftover


@dataclass
class Proxy:
    mode: str
    process: subprocess.Popen[bytes]
    out: Path
    err: Path
    ready_line: str


def start_proxy(wire: Wire, mode: str) -> Proxy:
    out, err = wire.tmp / f"proxy-{mode}.out", wire.tmp / f"proxy-{mode}.err"
    command = _in_ns(
        NS_P, str(wire.binaries[mode]), "--mode", mode, "--host-a", A, "--host-b", B,
        "--proxy-a", PA, "--proxy-b", PB, "--udp-port", str(UDP_PORT),
    )  # fmt: skip
    process = wire.spawn_split(command, out, err)  # ip netns exec execs: process.pid is the proxy

    def ready() -> bool:
        assert process.poll() is None, f"proxy exited {process.returncode}: {err.read_text(errors='replace')}"
        return "vnflab-proxy: ready" in out.read_text(errors="replace")

    _wait_for(ready, 10, f"the {mode} proxy to be ready")
    return Proxy(mode, process, out, err, out.read_text().splitlines()[0])


def udp_roundtrip(namespace: str, target: str, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    sizes_arg = ",".join(str(size) for size in sizes)
    done = _run(*_in_ns(namespace, PYTHON, str(HELPER), "udp", target, str(UDP_PORT), sizes_arg), timeout=30)
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def rtt_medians(mode: str, sizes: tuple[int, ...]) -> dict[int, dict[str, float]]:
    """Probe (inside A) proxied and direct paths in turn; median RTT in us per size and path."""
    medians: dict[int, dict[str, float]] = {}
    for size in sizes:
        job = {
            "call": "measure", "mode": mode, "udp_port": UDP_PORT,
            "targets": {"proxy": PA, "direct": B_DIRECT}, "payload_bytes": size,
            "samples": RTT_SAMPLES, "warmup": RTT_WARMUP, "interval_s": 0.002, "timeout_s": 1.0,
        }  # fmt: skip
        done = _run(*_in_ns(NS_A, PYTHON, str(RUNNER), json.dumps(job)), check=False, timeout=60)
        assert done.returncode == 0, f"probe failed: {done.stderr}"
        result = json.loads(done.stdout)
        medians[size] = {}
        for path, values in result["rtt_us"].items():
            answered = [value for value in values if value is not None]
            assert len(answered) == RTT_SAMPLES, f"{mode} {size} B {path}: lost {result['lost']}"
            medians[size][path] = statistics.median(answered)
    return medians


def _print_medians(label: str, probe_mode: str, medians: dict[int, dict[str, float]]) -> None:
    for size, paths in medians.items():
        print(
            f"proxy {label}, probe {probe_mode}, {size} B: median RTT proxy {paths['proxy']:.1f} us, "
            f"direct {paths['direct']:.1f} us"
        )


def _assert_clean_exit(proxy: Proxy) -> None:
    assert stop(proxy.process) == 0
    text = proxy.err.read_text()
    assert "vnflab-proxy: exit on signal 15" in text, text
    assert "vnflab-proxy: error" not in text, text


# ------------------------------------------------------------------------------------------------
class TestRawMode:
    @pytest.fixture(scope="class")
    @classmethod
    def proxy(cls, wire: Wire) -> Iterator[Proxy]:
        proxy = start_proxy(wire, "raw")
        yield proxy
        stop(proxy.process)

    def test_ready_line(self, proxy: Proxy) -> None:
        assert proxy.ready_line == (
            f"vnflab-proxy: ready mode=raw host-a={A} host-b={B} proxy-a={PA} proxy-b={PB} "
            f"udp-port={UDP_PORT} iface-a=vnfp-pa iface-b=vnfp-pb"
        )
        assert "warning" not in proxy.err.read_text()  # sysctls as the contract asks

    @pytest.mark.timeout(60)
    @pytest.mark.parametrize("size", SIZES)
    def test_ping_through_proxy(self, proxy: Proxy, size: int) -> None:
        if shutil.which("ping") is None:
            pytest.skip("ping (iputils) not installed")
        done = _run(*_in_ns(NS_A, "ping", "-n", "-c", "5", "-i", "0.2", "-W", "2", "-s", str(size), PA), check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert " 5 received" in done.stdout
        assert f"from {PA}" in done.stdout

    @pytest.mark.timeout(60)
    def test_udp_comes_back_identical_from_proxy(self, proxy: Proxy) -> None:
        for result in udp_roundtrip(NS_A, PA, SIZES):
            assert result["ok"], result
            assert result["source"] == [PA, UDP_PORT], result

    @pytest.mark.timeout(60)
    def test_b_sees_a_to_b_and_replies_to_a(self, proxy: Proxy, wire: Wire) -> None:
        """B's wire carries A -> B and B -> A only (sniffed with scapy), fragments included."""
        sniff_out, sniff_err = wire.tmp / "sniff.json", wire.tmp / "sniff.err"
        expected = 2 * (1 + 3) + 2  # UDP 1472 and 3000 B (3 fragments) both ways, one ping both ways
        sniffer = wire.spawn_split(
            _in_ns(NS_B, PYTHON, str(HELPER), "sniff", "vnfp-b0", "--count", str(expected), "--timeout", "8"),
            sniff_out,
            sniff_err,
        )

        def sniffer_ready() -> bool:
            assert sniffer.poll() is None, f"sniffer exited: {sniff_err.read_text(errors='replace')}"
            return sniff_out.read_text().startswith("ready")

        _wait_for(sniffer_ready, 15, "the sniffer")
        assert all(result["ok"] for result in udp_roundtrip(NS_A, PA, (1472, 3000)))
        _run(*_in_ns(NS_A, "ping", "-n", "-c", "1", "-W", "2", "-s", "64", PA))
        assert sniffer.wait(timeout=20) == 0
        packets = json.loads(sniff_out.read_text().splitlines()[-1])
        inbound = [p for p in packets if p["dst"] == B]
        outbound = [p for p in packets if p["dst"] == A]
        assert len(packets) == expected, packets
        assert len(inbound) == len(outbound) == expected // 2, packets
        assert all(p["src"] == A for p in inbound), inbound
        assert all(p["src"] == B for p in outbound), outbound
        assert any(p["frag"] > 0 for p in inbound), "a non-first fragment went through"
        assert {p["proto"] for p in inbound} == {1, 17}

    @pytest.mark.timeout(60)
    def test_b_initiated_flow(self, proxy: Proxy) -> None:
        """B -> PB reaches A's echo server as B -> A; its reply comes back to B from PB."""
        for result in udp_roundtrip(NS_B, PB, (64, 1472, 65507)):
            assert result["ok"], result
            assert result["source"] == [PB, UDP_PORT], result

    @pytest.mark.timeout(300)
    @pytest.mark.parametrize("probe_mode", ["icmp", "udp"])
    def test_rtt_medians_with_the_probe(self, proxy: Proxy, probe_mode: str) -> None:
        _print_medians("raw", probe_mode, rtt_medians(probe_mode, SIZES))

    def test_exits_zero_on_sigterm(self, proxy: Proxy) -> None:
        _assert_clean_exit(proxy)
        assert re.search(r"forwarded=[1-9]\d* dropped=\d+ send_errors=0", proxy.err.read_text())


# ------------------------------------------------------------------------------------------------
class TestUdpMode:
    @pytest.fixture(scope="class")
    @classmethod
    def proxy(cls, wire: Wire) -> Iterator[Proxy]:
        proxy = start_proxy(wire, "udp")
        yield proxy
        stop(proxy.process)

    def test_ready_line(self, proxy: Proxy) -> None:
        assert proxy.ready_line == (
            f"vnflab-proxy: ready mode=udp host-a={A} host-b={B} proxy-a={PA} proxy-b={PB} udp-port={UDP_PORT}"
        )

    @pytest.mark.timeout(60)
    def test_udp_comes_back_identical_from_proxy(self, proxy: Proxy) -> None:
        for result in udp_roundtrip(NS_A, PA, SIZES):
            assert result["ok"], result
            assert result["source"] == [PA, UDP_PORT], result

    @pytest.mark.timeout(300)
    def test_rtt_medians_with_the_probe(self, proxy: Proxy) -> None:
        _print_medians("udp", "udp", rtt_medians("udp", SIZES))

    @pytest.mark.timeout(60)
    def test_b_initiated_flow(self, proxy: Proxy) -> None:
        for result in udp_roundtrip(NS_B, PB, (64, 1472, 65507)):
            assert result["ok"], result
            assert result["source"] == [PB, UDP_PORT], result

    def test_exits_zero_on_sigterm(self, proxy: Proxy) -> None:
        _assert_clean_exit(proxy)
