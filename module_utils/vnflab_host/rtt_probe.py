"""Round-trip time through network paths with ICMP echo or UDP echo, timed by kernel timestamps.

One request is in flight at a time; paths are interleaved sample by sample so all see the same
conditions. RTT = kernel RX timestamp of the reply - kernel TX timestamp of the request (falls
back to user-space CLOCK_REALTIME per side when the kernel gives no timestamp; reported).
"""

from __future__ import annotations

import errno
import ipaddress
import math
import random
import select
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ansible.module_utils.vnflab_host.packets import (
    ICMP_ECHO_REPLY,
    build_echo_request,
    build_udp_payload,
    check_int,
    parse_echo_reply,
    validate_payload_bytes,
)
from ansible.module_utils.vnflab_host.timestamps import (
    SCM_TSTAMP_SND,
    SOURCE_KERNEL_SOFTWARE,
    SOURCE_USER,
    TimestampSources,
    TxTimestamp,
    clear_socket_error,
    disable_tx_timestamps,
    enable_timestamps,
    read_tx_timestamps,
    realtime_ns,
    recv_timestamped,
)

if TYPE_CHECKING:  # annotations only (never imported at run time): typing.Self is Python 3.11+
    from typing import Self

MODE_ICMP = "icmp"
MODE_UDP = "udp"
MODES = (MODE_ICMP, MODE_UDP)
DEFAULT_UDP_PORT = 7007

# Send errors that mean "no answer this time" (address not there yet, neighbour unresolved,
# queue full, filtered): the sample is lost, the probe goes on.
TRANSIENT_SEND_ERRNOS = frozenset(
    {
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
        errno.ENETDOWN,
        errno.ENOBUFS,
        errno.EAGAIN,
        errno.EWOULDBLOCK,
        errno.ECONNREFUSED,
        errno.EPERM,
        errno.EACCES,
        errno.EADDRNOTAVAIL,
    }
)

SOL_RAW = 255
ICMP_FILTER = 1
_RECV_BUFSIZE = 65536  # a whole IPv4 datagram (the kernel reassembles fragments)
_SOCKET_RCVBUF = 1 << 20
_TX_MISSES_BEFORE_USER_CLOCK = 3


def open_icmp_socket(bind_address: str | None = None) -> socket.socket:
    """Non-blocking raw ICMP socket (needs CAP_NET_RAW) that only receives echo replies."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        sock.setblocking(False)
        try:  # the kernel then drops every ICMP type except echo reply before queueing
            sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("@I", ~(1 << ICMP_ECHO_REPLY) & 0xFFFFFFFF))
        except OSError:
            pass  # replies are filtered in user space anyway
        _grow_rcvbuf(sock)
        if bind_address:
            sock.bind((bind_address, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _grow_rcvbuf(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_RCVBUF)
    except OSError:
        pass


def validate_ipv4(address: str) -> str:
    """Return address if it is a dotted IPv4 address; else raise TypeError or ValueError."""
    if not isinstance(address, str):
        raise TypeError(f"address must be a str, got {address!r}")
    try:
        ipaddress.IPv4Address(address)
    except ValueError as exc:
        raise ValueError(f"not an IPv4 address: {address!r}") from exc
    return address


def check_number(name: str, value: float, minimum: float, allow_equal: bool) -> float:
    """Return value as float if it is a finite number >= minimum (> if not allow_equal)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < minimum or (value == minimum and not allow_equal):
        relation = ">=" if allow_equal else ">"
        raise ValueError(f"{name} must be finite and {relation} {minimum}, got {value}")
    return float(value)


def validate_measure_args(
    targets: Mapping[str, str],
    payload_bytes: int,
    samples: int,
    warmup: int,
    interval_s: float,
    timeout_s: float,
) -> None:
    """Raise TypeError or ValueError for any argument measure() cannot use."""
    if not isinstance(targets, Mapping):
        raise TypeError("targets must be a mapping of path name to IPv4 address")
    if not targets:
        raise ValueError("targets must name at least one path")
    for name, address in targets.items():
        if not isinstance(name, str):
            raise TypeError(f"path names must be strings, got {name!r}")
        if not name:
            raise ValueError("path names must not be empty")
        validate_ipv4(address)
    validate_payload_bytes(payload_bytes)
    check_int("samples", samples, 1, 10**9)
    check_int("warmup", warmup, 0, 10**9)
    check_number("interval_s", interval_s, 0.0, allow_equal=True)
    check_number("timeout_s", timeout_s, 0.0, allow_equal=False)


@dataclass
class EchoMeasurement:
    """RTT samples per path, in microseconds; None = no reply within timeout_s (lost, kept)."""

    mode: str
    payload_bytes: int
    rtt_us: dict[str, list[float | None]]
    tx_source: str  # SOURCE_KERNEL_SOFTWARE, SOURCE_USER or "mixed" (see tx_source_counts)
    rx_source: str
    tx_source_counts: dict[str, int] = field(default_factory=dict)
    rx_source_counts: dict[str, int] = field(default_factory=dict)
    warmup: int = 0
    interval_s: float = 0.0
    timeout_s: float = 0.0

    def lost(self) -> dict[str, int]:
        return {path: sum(1 for v in values if v is None) for path, values in self.rtt_us.items()}

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "payload_bytes": self.payload_bytes,
            "rtt_us": {path: list(values) for path, values in self.rtt_us.items()},
            "lost": self.lost(),
            "tx_source": self.tx_source,
            "rx_source": self.rx_source,
            "tx_source_counts": dict(self.tx_source_counts),
            "rx_source_counts": dict(self.rx_source_counts),
            "warmup": self.warmup,
            "interval_s": self.interval_s,
            "timeout_s": self.timeout_s,
        }


@dataclass
class _Exchange:
    rtt_us: float | None
    tx_source: str | None = None
    rx_source: str | None = None


def _summarize(counts: dict[str, int], configured: str) -> str:
    used = [source for source, n in counts.items() if n]
    if not used:
        return configured
    return used[0] if len(used) == 1 else "mixed"


class EchoProber:
    """RTT prober: mode "icmp" (raw socket, kernel answers) or "udp" (echo server on udp_port)."""

    def __init__(
        self,
        mode: str = MODE_ICMP,
        udp_port: int = DEFAULT_UDP_PORT,
        bind_address: str | None = None,
        tx_grace_s: float = 0.001,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        check_int("udp_port", udp_port, 1, 65535)
        if bind_address is not None:
            validate_ipv4(bind_address)
        self.mode = mode
        self.udp_port = udp_port
        self._tx_grace_ms = math.ceil(check_number("tx_grace_s", tx_grace_s, 0.0, True) * 1000)
        self._ident = random.randrange(1, 0x10000)  # ICMP identifier / UDP probe id (low 16 bits)
        self._probe_id = random.randrange(0, 0x100000000)
        self._seq = 0
        self._next_tx_key = 0
        self._tx_misses = 0
        if mode == MODE_ICMP:
            self._sock = open_icmp_socket(bind_address)
        else:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
            _grow_rcvbuf(self._sock)
            self._sock.bind((bind_address or "0.0.0.0", 0))
        self.sources: TimestampSources = enable_timestamps(self._sock, tx=True)
        self._poller = select.poll()
        self._poller.register(self._sock.fileno(), select.POLLIN)

    # context manager -----------------------------------------------------------------------
    def close(self) -> None:
        try:
            self._poller.unregister(self._sock.fileno())
        except (KeyError, ValueError):
            pass
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # public ------------------------------------------------------------------------------
    def measure(
        self,
        targets: Mapping[str, str],
        payload_bytes: int,
        samples: int,
        warmup: int = 3,
        interval_s: float = 0.002,
        timeout_s: float = 1.0,
    ) -> EchoMeasurement:
        """samples RTTs (us) per path; paths interleaved, each first gets warmup discarded exchanges.

        interval_s is the minimum time between two consecutive requests (any path); a request is
        never sent before the previous one was answered or timed out.
        """
        validate_measure_args(targets, payload_bytes, samples, warmup, interval_s, timeout_s)
        paths = list(targets.items())
        rtts: dict[str, list[float | None]] = {name: [] for name, _ in paths}
        tx_counts: dict[str, int] = {}
        rx_counts: dict[str, int] = {}
        next_send = time.monotonic()

        def paced(address: str) -> _Exchange:
            nonlocal next_send
            delay = next_send - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_send = time.monotonic() + interval_s
            return self._exchange(address, payload_bytes, timeout_s)

        for _name, address in paths:
            for _ in range(warmup):
                paced(address)
        for _ in range(samples):
            for name, address in paths:
                result = paced(address)
                rtts[name].append(result.rtt_us)
                if result.tx_source:
                    tx_counts[result.tx_source] = tx_counts.get(result.tx_source, 0) + 1
                if result.rx_source:
                    rx_counts[result.rx_source] = rx_counts.get(result.rx_source, 0) + 1
        return EchoMeasurement(
            mode=self.mode,
            payload_bytes=payload_bytes,
            rtt_us=rtts,
            tx_source=_summarize(tx_counts, self.sources.tx),
            rx_source=_summarize(rx_counts, self.sources.rx),
            tx_source_counts=tx_counts,
            rx_source_counts=rx_counts,
            warmup=warmup,
            interval_s=float(interval_s),
            timeout_s=float(timeout_s),
        )

    # one exchange ------------------------------------------------------------------------
    def _request(self, payload_bytes: int) -> tuple[bytes, int]:
        seq = self._seq
        self._seq += 1
        if self.mode == MODE_ICMP:
            return build_echo_request(self._ident, seq & 0xFFFF, payload_bytes), seq
        return build_udp_payload(self._probe_id, seq, payload_bytes), seq

    def _is_reply(self, data: bytes, source: tuple[str, int], address: str, seq: int, request: bytes) -> bool:
        if self.mode == MODE_ICMP:
            reply = parse_echo_reply(data)
            return (
                reply is not None
                and reply.ident == self._ident
                and reply.seq == seq & 0xFFFF
                and reply.source == address
                and reply.payload_len == len(request) - 8
            )
        return source[0] == address and source[1] == self.udp_port and data == request

    def _drain(self) -> None:
        """Drop stale replies and TX timestamps before a new request."""
        while True:
            try:
                if recv_timestamped(self._sock, _RECV_BUFSIZE, self.sources.rx) is None:
                    break
            except OSError:
                clear_socket_error(self._sock)
                break
        if self.sources.tx == SOURCE_KERNEL_SOFTWARE:
            self._take_tx_stamp(read_tx_timestamps(self._sock))
        clear_socket_error(self._sock)

    def _take_tx_stamp(self, stamps: list[TxTimestamp]) -> int | None:
        """The driver (SND) stamp of the newest request, if among stamps; advances the expected key.

        Keys count datagrams sent on the socket; stale queues are drained before every send, so a
        stamp with a key at or past the next expected one belongs to the request just sent.
        """
        found: int | None = None
        for stamp in stamps:
            if stamp.kind == SCM_TSTAMP_SND and stamp.key >= self._next_tx_key:
                found = stamp.ns
                self._next_tx_key = stamp.key + 1
        return found

    def _exchange(self, address: str, payload_bytes: int, timeout_s: float) -> _Exchange:
        request, seq = self._request(payload_bytes)
        destination = (address, 0 if self.mode == MODE_ICMP else self.udp_port)
        self._drain()
        kernel_tx = self.sources.tx == SOURCE_KERNEL_SOFTWARE
        user_tx_ns = realtime_ns()
        try:
            self._sock.sendto(request, destination)
        except OSError as exc:
            if exc.errno in TRANSIENT_SEND_ERRNOS:
                return _Exchange(None)
            raise
        deadline = time.monotonic() + timeout_s
        tx_ns: int | None = None
        rx: tuple[int, str] | None = None
        while rx is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for _fd, events in self._poller.poll(math.ceil(remaining * 1000)):
                if events & select.POLLERR:
                    stamps = read_tx_timestamps(self._sock)
                    if stamps:
                        tx_ns = self._take_tx_stamp(stamps) or tx_ns
                    else:
                        clear_socket_error(self._sock)
                if events & select.POLLIN:
                    rx = self._receive_reply(address, seq, request)
        if rx is None:
            return _Exchange(None)
        if kernel_tx and tx_ns is None:
            tx_ns = self._wait_tx_stamp()
        tx_source = SOURCE_KERNEL_SOFTWARE
        if tx_ns is None:
            tx_ns, tx_source = user_tx_ns, SOURCE_USER
            if kernel_tx:
                self._note_tx_miss()
        elif kernel_tx:
            self._tx_misses = 0
        rx_ns, rx_source = rx
        return _Exchange((rx_ns - tx_ns) / 1000.0, tx_source, rx_source)

    def _receive_reply(self, address: str, seq: int, request: bytes) -> tuple[int, str] | None:
        while True:
            try:
                datagram = recv_timestamped(self._sock, _RECV_BUFSIZE, self.sources.rx)
            except OSError:
                clear_socket_error(self._sock)
                return None
            if datagram is None:
                return None
            if not datagram.truncated and self._is_reply(
                datagram.data, datagram.address, address, seq, request
            ):
                return datagram.rx_ns, datagram.rx_source

    def _wait_tx_stamp(self) -> int | None:
        found = self._take_tx_stamp(read_tx_timestamps(self._sock))
        if found is None and self._tx_grace_ms:
            self._poller.poll(self._tx_grace_ms)  # POLLERR wakes it early
            found = self._take_tx_stamp(read_tx_timestamps(self._sock))
        return found

    def _note_tx_miss(self) -> None:
        """After a few replies without a TX stamp, stop asking (the driver does not stamp TX)."""
        self._tx_misses += 1
        if self._tx_misses >= _TX_MISSES_BEFORE_USER_CLOCK:
            self.sources = disable_tx_timestamps(self._sock)
