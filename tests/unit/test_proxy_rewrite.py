"""The proxy VNF's packet rewrite (src/proxy/rewrite.c), checked against scapy.

Runs the C unit test (``make -C src/proxy test``), then feeds scapy-built packets through the
``rewrite-cli`` driver (same rewrite.c) and checks that the addresses changed as specified and
that every checksum the proxy produced equals scapy's own recomputation. Skips without gcc/make.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet, Raw
from scapy.utils import checksum as scapy_checksum

REPO = Path(__file__).resolve().parents[2]
PROXY_SRC = REPO / "src" / "proxy"

A, B = "198.18.251.2", "198.18.252.2"
PA, PB = "198.18.251.1", "198.18.252.1"
OTHER = "198.18.9.9"

# rule name, side the packet arrives on, (src, dst) in, (src, dst) out
RULES = [
    ("a-to-pa", "a", (A, PA), (A, B)),
    ("b-reply", "b", (B, A), (PA, A)),
    ("b-to-pb", "b", (B, PB), (B, A)),
    ("a-reply", "a", (A, B), (PB, B)),
]
L4 = {"udp": UDP, "tcp": TCP, "icmp": ICMP}


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("needs gcc and make")
    return tmp_path_factory.mktemp("proxy-build")


@pytest.fixture(scope="module")
def rewrite_cli(build_dir: Path) -> Path:
    done = subprocess.run(
        ["make", "-C", str(PROXY_SRC), f"O={build_dir}", "rewrite-cli"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return build_dir / "rewrite-cli"


def run_cli(cli: Path, packets: list[tuple[str, bytes]]) -> list[tuple[str, str, bytes | None]]:
    """(side, packet) pairs through rewrite-cli: (verdict, rule or reason, rewritten packet or None)."""
    text = "".join(f"{side} {data.hex()}\n" for side, data in packets)
    done = subprocess.run([str(cli), A, B, PA, PB], input=text, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    results: list[tuple[str, str, bytes | None]] = []
    for line in done.stdout.splitlines():
        parts = line.split()
        if parts[0] == "forward":
            results.append(("forward", parts[1], bytes.fromhex(parts[2])))
        else:
            results.append((parts[0], parts[1], None))
    assert len(results) == len(packets)
    return results


def payload(size: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.getrandbits(8) for _ in range(size))


def build(proto: str, src: str, dst: str, size: int, seed: int = 0, **ip_fields: object) -> Packet:
    """A scapy packet with size bytes of L4 payload; bytes() fills in every checksum."""
    ip = IP(src=src, dst=dst, id=0x4242, ttl=61, **ip_fields)
    if proto == "udp":
        layer: Packet = UDP(sport=40001, dport=7007)
    elif proto == "tcp":
        layer = TCP(
            sport=40001, dport=7007, seq=123456, ack=654321, flags="PA",
            options=[("MSS", 1460), ("NOP", None), ("NOP", None), ("Timestamp", (1, 2))],
        )  # fmt: skip
    else:
        layer = ICMP(type=8, id=0xBEEF, seq=7)
    return ip / layer / Raw(payload(size, seed))


def expected_bytes(packet: Packet, new_src: str, new_dst: str) -> bytes:
    """The packet with the new addresses and every checksum recomputed by scapy."""
    want = IP(bytes(packet))
    want.src, want.dst = new_src, new_dst
    del want.chksum
    for layer in (UDP, TCP, ICMP):
        if layer in want and not (layer is UDP and want[UDP].chksum == 0):
            del want[layer].chksum
    return bytes(want)


def test_c_unit_tests_pass(build_dir: Path) -> None:
    done = subprocess.run(
        ["make", "-C", str(PROXY_SRC), f"O={build_dir}", "test"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checks passed" in done.stdout


@pytest.mark.parametrize("size", [0, 1, 64, 1472])
@pytest.mark.parametrize("proto", ["udp", "tcp", "icmp"])
@pytest.mark.parametrize(("rule", "side", "before", "after"), RULES, ids=[rule[0] for rule in RULES])
def test_four_rewrites_match_scapy(
    rewrite_cli: Path, rule: str, side: str, before: tuple[str, str], after: tuple[str, str], proto: str, size: int
) -> None:
    packet = build(proto, *before, size, seed=size)
    original = bytes(packet)
    [(verdict, got_rule, out)] = run_cli(rewrite_cli, [(side, original)])
    assert (verdict, got_rule) == ("forward", rule)
    assert out is not None
    parsed = IP(out)
    assert (parsed.src, parsed.dst) == after
    assert out == expected_bytes(packet, *after)  # IP and L4 checksums as scapy computes them
    if proto == "icmp":
        assert parsed[ICMP].chksum == IP(original)[ICMP].chksum  # ICMP does not cover addresses


def test_side_any_serves_both_directions(rewrite_cli: Path) -> None:
    packets = [build("udp", *before, 100, seed=3) for _rule, _side, before, _after in RULES]
    results = run_cli(rewrite_cli, [("any", bytes(packet)) for packet in packets])
    for (rule, _side, _before, after), packet, (verdict, got_rule, out) in zip(RULES, packets, results, strict=True):
        assert (verdict, got_rule) == ("forward", rule)
        assert out == expected_bytes(packet, *after)


def test_udp_zero_checksum_stays_zero(rewrite_cli: Path) -> None:
    packet = IP(src=A, dst=PA, id=9) / UDP(sport=40001, dport=7007, chksum=0) / Raw(payload(500))
    [(verdict, _rule, out)] = run_cli(rewrite_cli, [("a", bytes(packet))])
    assert verdict == "forward" and out is not None
    parsed = IP(out)
    assert parsed.dst == B
    assert parsed[UDP].chksum == 0
    assert out == expected_bytes(packet, A, B)


def test_partial_checksum_is_completed(rewrite_cli: Path) -> None:
    """CHECKSUM_PARTIAL packets (veth, virtio) carry only the pseudo-header sum: completed in full."""
    for proto in ("udp", "tcp"):
        packet = IP(bytes(build(proto, A, PA, 333, seed=5)))
        l4_len = len(bytes(packet[L4[proto]]))
        pseudo = (
            bytes(int(octet) for octet in A.split("."))
            + bytes(int(octet) for octet in PA.split("."))
            + bytes([0, packet.proto])
            + l4_len.to_bytes(2, "big")
        )
        packet[L4[proto]].chksum = ~scapy_checksum(pseudo) & 0xFFFF  # the folded sum, not complemented
        [(verdict, _rule, out)] = run_cli(rewrite_cli, [("a:partial", bytes(packet))])
        assert verdict == "forward", proto
        assert out == expected_bytes(packet, A, B), proto


@pytest.mark.parametrize("proto", ["udp", "icmp"])
def test_65507_byte_datagram_in_fragments(rewrite_cli: Path, proto: str) -> None:
    """scapy's fragment(): each fragment rewritten alone; reassembled, the datagram is what scapy
    builds for A -> B (so the UDP checksum in the first fragment covers all 65507 bytes)."""
    data = payload(65507, seed=11)
    packet = build(proto, A, PA, 0) / Raw(data)
    packet = IP(bytes(packet))
    assert packet.len == 65535
    fragments = fragment(packet, fragsize=1480)
    assert len(fragments) == 45
    results = run_cli(rewrite_cli, [("a", bytes(frag)) for frag in fragments])
    pieces: dict[int, bytes] = {}
    for frag, (verdict, rule, out) in zip(fragments, results, strict=True):
        assert (verdict, rule) == ("forward", "a-to-pa")
        assert out is not None
        original, parsed = IP(bytes(frag)), IP(out)
        assert (parsed.src, parsed.dst) == (A, B)
        assert (parsed.id, parsed.frag, parsed.flags, parsed.ttl) == (
            original.id, original.frag, original.flags, original.ttl,
        )  # fmt: skip
        rebuilt = IP(out)
        del rebuilt.chksum
        assert bytes(rebuilt)[:20] == out[:20]  # IP header checksum as scapy computes it
        pieces[parsed.frag * 8] = out[parsed.ihl * 4 :]
        if parsed.frag > 0:
            assert out[20:] == bytes(frag)[20:]  # later fragments: payload untouched
    reassembled = b"".join(pieces[offset] for offset in sorted(pieces))
    want = IP(expected_bytes(packet, A, B))
    assert reassembled == bytes(want.payload)


def test_drops(rewrite_cli: Path) -> None:
    good = bytes(build("udp", A, PA, 64))
    bad_checksum = bytearray(good)
    bad_checksum[10] ^= 0xFF
    cases = [
        ("b", good, "no-rule"),  # right addresses, wrong interface
        ("a", bytes(build("udp", OTHER, PA, 64)), "no-rule"),
        ("a", bytes(build("udp", A, OTHER, 64)), "no-rule"),
        ("a", bytes(build("icmp", A, PB, 64)), "no-rule"),  # A to the B-side address
        ("any", bytes(build("icmp", B, PA, 64)), "no-rule"),
        ("a", bytes(build("icmp", PA, A, 64)), "no-rule"),  # the proxy's own packet
        ("a", good[:-1], "short"),
        ("a", good[:19], "short"),
        ("a", bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP() / Raw(b"x" * 40)), "not-ipv4"),
        ("a", bytes(bad_checksum), "bad-header"),
    ]
    results = run_cli(rewrite_cli, [(side, data) for side, data, _reason in cases])
    assert [(verdict, reason) for verdict, reason, _out in results] == [("drop", reason) for *_x, reason in cases]


def test_link_padding_is_not_forwarded(rewrite_cli: Path) -> None:
    packet = build("icmp", A, PA, 0)  # 28 bytes: Ethernet pads the frame to 46 bytes of payload
    [(verdict, _rule, out)] = run_cli(rewrite_cli, [("a", bytes(packet) + b"\0" * 18)])
    assert verdict == "forward"
    assert out == expected_bytes(packet, A, B)


def test_random_packets_match_scapy(rewrite_cli: Path) -> None:
    rng = random.Random(2024)
    packets, expected = [], []
    for index in range(300):
        rule, side, before, after = rng.choice(RULES)
        proto = rng.choice(["udp", "tcp"])
        packet = build(proto, *before, rng.randrange(0, 2000), seed=index, tos=rng.randrange(256))
        packet.id = rng.randrange(0x10000)
        packet[L4[proto]].sport = rng.randrange(1, 0x10000)
        packets.append((side, bytes(packet)))
        expected.append((rule, expected_bytes(packet, *after)))
    results = run_cli(rewrite_cli, packets)
    for (rule, want), (verdict, got_rule, out) in zip(expected, results, strict=True):
        assert (verdict, got_rule) == ("forward", rule)
        assert out == want
