"""Packet functions of the measuring core, checked against scapy-built packets."""

from __future__ import annotations

import random

import pytest
from ansible.module_utils.vnflab_host import packets
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum


@pytest.mark.parametrize("size", [0, 1, 2, 3, 20, 63, 64, 1471, 1472, 65507, 65536])
def test_checksum_matches_scapy(size: int) -> None:
    rng = random.Random(size)
    data = bytes(rng.getrandbits(8) for _ in range(size))
    assert packets.internet_checksum(data) == scapy_checksum(data)


@pytest.mark.parametrize("data", [b"", b"\x00" * 10, b"\xff\xff", b"\xff\xff\xff\xff", b"\x00\x01\xff\xfe"])
def test_checksum_edge_values_match_scapy(data: bytes) -> None:
    assert packets.internet_checksum(data) == scapy_checksum(data)


def test_checksum_of_packet_with_its_checksum_is_zero() -> None:
    request = packets.build_echo_request(0x1234, 7, 999)
    assert packets.internet_checksum(request) == 0


@pytest.mark.parametrize("size", [1, 56, 1472, 65507])
def test_echo_request_is_what_scapy_expects(size: int) -> None:
    raw = packets.build_echo_request(0xBEEF, 513, size)
    icmp = ICMP(raw)
    assert icmp.type == 8 and icmp.code == 0
    assert icmp.id == 0xBEEF and icmp.seq == 513
    assert len(bytes(icmp.payload)) == size
    assert bytes(icmp.payload) == packets.payload_pattern(size)
    rebuilt = ICMP(type=8, code=0, id=0xBEEF, seq=513) / Raw(packets.payload_pattern(size))
    assert bytes(rebuilt) == raw  # scapy computes the same checksum


def test_payload_pattern_is_recognizable() -> None:
    assert packets.payload_pattern(20) == b"vnflab-echo-pad.vnfl"
    assert packets.payload_pattern(0) == b""


def _reply(size: int = 56, **ip_fields: object) -> bytes:
    fields = {"src": "198.18.250.2", "dst": "198.18.250.1"}
    fields.update(ip_fields)
    return bytes(IP(**fields) / ICMP(type=0, id=0x4242, seq=9) / Raw(b"x" * size))


@pytest.mark.parametrize("size", [1, 56, 1472, 65507])
def test_parse_echo_reply(size: int) -> None:
    reply = packets.parse_echo_reply(_reply(size), verify_checksum=True)
    assert reply == packets.EchoReply(ident=0x4242, seq=9, payload_len=size, source="198.18.250.2")


def test_parse_echo_reply_with_ip_options() -> None:
    raw = bytes(
        IP(src="198.18.250.2", dst="198.18.250.1", options=b"\x01\x01\x01\x00")
        / ICMP(type=0, id=1, seq=2)
        / Raw(b"abc")
    )
    assert raw[0] & 0x0F == 6
    assert packets.parse_echo_reply(raw) == packets.EchoReply(1, 2, 3, "198.18.250.2")


def test_parse_echo_reply_ignores_trailing_bytes_after_total_length() -> None:
    assert packets.parse_echo_reply(_reply(10) + b"\x00" * 6) == packets.EchoReply(
        0x4242, 9, 10, "198.18.250.2"
    )


@pytest.mark.parametrize(
    "packet",
    [
        bytes(IP(src="198.18.250.2") / ICMP(type=8, id=1, seq=1) / Raw(b"req")),  # echo request
        bytes(IP(src="198.18.250.2") / ICMP(type=3, code=1) / IP(dst="198.18.250.9") / ICMP()),  # unreachable
        bytes(IP(src="198.18.250.2") / ICMP(type=11, code=0) / IP() / ICMP()),  # time exceeded
        bytes(IP(src="198.18.250.2") / ICMP(type=0, code=1, id=1, seq=1)),  # echo reply, bad code
        bytes(IP(src="198.18.250.2") / UDP(sport=7007, dport=4000) / Raw(b"x" * 8)),  # not ICMP
        bytes(IPv6(src="2001:db8::1") / Raw(b"\x00" * 40)),  # not IPv4
        bytes(IP(src="198.18.250.2", flags="MF") / ICMP(type=0) / Raw(b"x" * 64)),  # first fragment
        bytes(IP(src="198.18.250.2", frag=10, proto=1) / Raw(b"x" * 64)),  # later fragment
        _reply(100)[:60],  # truncated
        b"",
        b"\x45" + b"\x00" * 10,
    ],
    ids=[
        "echo-request",
        "dest-unreachable",
        "time-exceeded",
        "bad-code",
        "udp",
        "ipv6",
        "first-fragment",
        "later-fragment",
        "truncated",
        "empty",
        "short",
    ],
)
def test_parse_echo_reply_rejects_everything_else(packet: bytes) -> None:
    assert packets.parse_echo_reply(packet) is None


def test_parse_echo_reply_checksum_verification() -> None:
    raw = bytearray(_reply(32))
    raw[-1] ^= 0xFF
    assert packets.parse_echo_reply(bytes(raw)) is not None
    assert packets.parse_echo_reply(bytes(raw), verify_checksum=True) is None


@pytest.mark.parametrize("size", [16, 17, 64, 1472, 65507])
def test_udp_payload_round_trip(size: int) -> None:
    payload = packets.build_udp_payload(0xDEADBEEF, 2**40 + 5, size)
    assert len(payload) == size
    assert payload[:4] == packets.UDP_MAGIC
    assert packets.parse_udp_payload(payload) == packets.UdpProbeHeader(0xDEADBEEF, 2**40 + 5)
    datagram = UDP(bytes(UDP(sport=1, dport=7007) / Raw(payload)))
    assert packets.parse_udp_payload(bytes(datagram.payload)) == (0xDEADBEEF, 2**40 + 5)


@pytest.mark.parametrize("size", [1, 2, 8, 15])
def test_short_udp_payload_carries_low_seq_bytes(size: int) -> None:
    first = packets.build_udp_payload(7, 1000, size)
    second = packets.build_udp_payload(7, 1001, size)
    assert len(first) == size and len(second) == size
    assert first != second
    assert first[-1] == 1000 & 0xFF
    assert packets.parse_udp_payload(first) is None


def test_parse_udp_payload_rejects_foreign_data() -> None:
    assert packets.parse_udp_payload(b"GET / HTTP/1.1\r\n\r\n") is None
    assert packets.parse_udp_payload(b"") is None


@pytest.mark.parametrize("size", [1, 65507])
def test_validate_payload_bytes_accepts_limits(size: int) -> None:
    assert packets.validate_payload_bytes(size) == size


@pytest.mark.parametrize("size", [0, -1, 65508, 100_000])
def test_validate_payload_bytes_rejects_out_of_range(size: int) -> None:
    with pytest.raises(ValueError, match="payload_bytes"):
        packets.validate_payload_bytes(size)


@pytest.mark.parametrize("size", [True, 1.5, "64", None])
def test_validate_payload_bytes_rejects_non_int(size: object) -> None:
    with pytest.raises(TypeError, match="payload_bytes"):
        packets.validate_payload_bytes(size)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ident", "seq", "size"),
    [(-1, 0, 8), (0x10000, 0, 8), (0, -1, 8), (0, 0x10000, 8), (0, 0, 0), (0, 0, 65508)],
)
def test_build_echo_request_validates(ident: int, seq: int, size: int) -> None:
    with pytest.raises(ValueError):
        packets.build_echo_request(ident, seq, size)


@pytest.mark.parametrize(("probe_id", "seq"), [(-1, 0), (2**32, 0), (0, -1), (0, 2**64)])
def test_build_udp_payload_validates(probe_id: int, seq: int) -> None:
    with pytest.raises(ValueError):
        packets.build_udp_payload(probe_id, seq, 64)
