"""Pure packet functions for the probes: checksum, ICMP echo, UDP probe payloads (IPv4)."""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

from ansible.module_utils.vnflab_host.limits import MAX_PAYLOAD

MIN_PAYLOAD_BYTES = 1
# Largest payload of one IPv4 datagram: 65535 - 20 (IPv4 header) - 8 (ICMP or UDP header).
MAX_PAYLOAD_BYTES = MAX_PAYLOAD

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ICMP_HEADER_LEN = 8
IPPROTO_ICMP = 1
IPV4_MIN_HEADER_LEN = 20

_ICMP_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_IPV4_FLAGS_MF = 0x2000
_IPV4_FRAG_OFFSET_MASK = 0x1FFF

# 16 bytes, easy to spot in a hex dump (tcpdump -X): pads every probe payload.
PAYLOAD_PATTERN_UNIT = b"vnflab-echo-pad."

UDP_MAGIC = b"VNFL"
_UDP_HEADER = struct.Struct("!4sIQ")  # magic, probe id (u32), seq (u64)
UDP_HEADER_LEN = _UDP_HEADER.size  # 16


class EchoReply(NamedTuple):
    """An ICMP echo reply found in a raw IPv4 packet."""

    ident: int
    seq: int
    payload_len: int
    source: str


class UdpProbeHeader(NamedTuple):
    """The header at the start of a UDP probe payload."""

    probe_id: int
    seq: int


def check_int(name: str, value: int, low: int, high: int) -> int:
    """Return value if it is an int (not bool) in low..high; else raise TypeError or ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return value


def validate_payload_bytes(payload_bytes: int) -> int:
    """Return payload_bytes if it is an int in 1..65507; else raise TypeError or ValueError."""
    return check_int("payload_bytes", payload_bytes, MIN_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES)


def internet_checksum(data: bytes) -> int:
    """RFC 1071 16-bit one's complement checksum of data (odd length is padded with a zero byte).

    Uses 2**16 == 1 (mod 0xffff): the one's complement sum of the big-endian 16-bit words is the
    value of the whole buffer as one big integer modulo 0xffff, computed in C even for 64 KB.
    """
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if total == 0 and value != 0:
        total = 0xFFFF  # end-around carry gives 0xffff (negative zero) for non-zero data
    return ~total & 0xFFFF


def payload_pattern(length: int) -> bytes:
    """length bytes of the repeating PAYLOAD_PATTERN_UNIT."""
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    unit = PAYLOAD_PATTERN_UNIT
    return (unit * (length // len(unit) + 1))[:length]


def build_echo_request(ident: int, seq: int, payload_bytes: int) -> bytes:
    """ICMP echo request (header + payload_bytes of pattern) with a valid checksum, no IP header."""
    check_int("ident", ident, 0, 0xFFFF)
    check_int("seq", seq, 0, 0xFFFF)
    validate_payload_bytes(payload_bytes)
    payload = payload_pattern(payload_bytes)
    header = _ICMP_HEADER.pack(ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    checksum = internet_checksum(header + payload)
    return _ICMP_HEADER.pack(ICMP_ECHO_REQUEST, 0, checksum, ident, seq) + payload


def parse_echo_reply(packet: bytes, verify_checksum: bool = False) -> EchoReply | None:
    """Parse a raw IPv4 packet (as read from a SOCK_RAW/IPPROTO_ICMP socket).

    Returns the echo reply's identifier, sequence, payload length and source address, or None for
    anything else: not IPv4, not ICMP, a fragment, truncated, another ICMP type or code, or (when
    verify_checksum) a bad ICMP checksum.
    """
    view = memoryview(packet)
    if len(view) < IPV4_MIN_HEADER_LEN:
        return None
    version_ihl = view[0]
    if version_ihl >> 4 != 4:
        return None
    header_len = (version_ihl & 0x0F) * 4
    if header_len < IPV4_MIN_HEADER_LEN:
        return None
    total_len = int.from_bytes(view[2:4], "big")
    flags_frag = int.from_bytes(view[6:8], "big")
    if view[9] != IPPROTO_ICMP:
        return None
    if flags_frag & (_IPV4_FLAGS_MF | _IPV4_FRAG_OFFSET_MASK):
        return None
    if total_len > len(view) or total_len < header_len + ICMP_HEADER_LEN:
        return None
    icmp = view[header_len:total_len]
    icmp_type, icmp_code, _checksum, ident, seq = _ICMP_HEADER.unpack(icmp[:ICMP_HEADER_LEN])
    if icmp_type != ICMP_ECHO_REPLY or icmp_code != 0:
        return None
    if verify_checksum and internet_checksum(icmp.tobytes()) != 0:
        return None
    source = socket.inet_ntoa(view[12:16].tobytes())
    return EchoReply(ident, seq, total_len - header_len - ICMP_HEADER_LEN, source)


def build_udp_payload(probe_id: int, seq: int, payload_bytes: int) -> bytes:
    """UDP probe payload of payload_bytes: 16-byte header (magic, probe id, seq) + pattern.

    Payloads shorter than the header carry its last payload_bytes bytes, i.e. the low-order bytes
    of seq, so consecutive requests still differ; replies are matched by exact equality with the
    request (the echo server returns the datagram unchanged).
    """
    check_int("probe_id", probe_id, 0, 0xFFFFFFFF)
    check_int("seq", seq, 0, 0xFFFFFFFFFFFFFFFF)
    validate_payload_bytes(payload_bytes)
    header = _UDP_HEADER.pack(UDP_MAGIC, probe_id, seq)
    if payload_bytes < UDP_HEADER_LEN:
        return header[UDP_HEADER_LEN - payload_bytes :]
    return header + payload_pattern(payload_bytes - UDP_HEADER_LEN)


def parse_udp_payload(payload: bytes) -> UdpProbeHeader | None:
    """The header of a UDP probe payload, or None if it is shorter than 16 bytes or lacks the magic."""
    if len(payload) < UDP_HEADER_LEN:
        return None
    magic, probe_id, seq = _UDP_HEADER.unpack(bytes(payload[:UDP_HEADER_LEN]))
    if magic != UDP_MAGIC:
        return None
    return UdpProbeHeader(probe_id, seq)
