"""Kernel software timestamps on sockets (Linux): enable, parse ancillary data, read TX timestamps.

All kernel software timestamps are CLOCK_REALTIME nanoseconds, so the user-space fallback is
time.clock_gettime_ns(CLOCK_REALTIME). Socket option numbers are the asm-generic ones (x86, arm,
arm64, riscv, s390, powerpc); Python's socket module lacks most of them.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

# Socket options and control message types (SOL_SOCKET level). SCM_* equals SO_*.
SO_TIMESTAMPNS = 35  # SO_TIMESTAMPNS_OLD: struct timespec with the native long size
SO_TIMESTAMPING = 37  # SO_TIMESTAMPING_OLD: struct scm_timestamping (3 native timespecs)
SO_TIMESTAMPNS_NEW = 64  # 64-bit __kernel_timespec (only sent if a program asked for _NEW)
SO_TIMESTAMPING_NEW = 65
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
SCM_TIMESTAMPING = SO_TIMESTAMPING

# enum in linux/net_tstamp.h
SOF_TIMESTAMPING_TX_HARDWARE = 1 << 0
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_RX_HARDWARE = 1 << 2
SOF_TIMESTAMPING_RX_SOFTWARE = 1 << 3
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_TX_SCHED = 1 << 8
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11

# Error queue
MSG_ERRQUEUE = 0x2000
SOL_IP = 0
IP_RECVERR = 11
SOL_IPV6 = 41
IPV6_RECVERR = 25
SO_EE_ORIGIN_TIMESTAMPING = 4
SCM_TSTAMP_SND = 0  # ee_info of a TX timestamp: handed to the driver
SCM_TSTAMP_SCHED = 1
SCM_TSTAMP_ACK = 2

# Where a timestamp came from (reported with every measurement).
SOURCE_KERNEL_SOFTWARE = "kernel-software"  # SO_TIMESTAMPING software timestamps
SOURCE_KERNEL_TIMESTAMPNS = "kernel-timestampns"  # SO_TIMESTAMPNS (RX only)
SOURCE_USER = "user"  # clock_gettime_ns(CLOCK_REALTIME) in this process

_TIMESPEC_NATIVE = struct.Struct("@ll")
_TIMESPEC_64 = struct.Struct("@qq")
_SOCK_EXTENDED_ERR = struct.Struct("@IBBBBII")  # errno, origin, type, code, pad, info, data

# Room for SCM_TIMESTAMPING (48 bytes) and IP(V6)_RECVERR (sock_extended_err + offender address).
ANCILLARY_BUFSIZE = socket.CMSG_SPACE(3 * _TIMESPEC_64.size) + socket.CMSG_SPACE(64) + 128

Cmsg = tuple[int, int, bytes]

TX_RX_FLAGS = (
    SOF_TIMESTAMPING_TX_SOFTWARE
    | SOF_TIMESTAMPING_RX_SOFTWARE
    | SOF_TIMESTAMPING_SOFTWARE
    | SOF_TIMESTAMPING_OPT_ID
    | SOF_TIMESTAMPING_OPT_TSONLY
)
RX_FLAGS = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE


@dataclass(frozen=True)
class TimestampSources:
    """Which clock source a socket's TX and RX timestamps come from."""

    tx: str
    rx: str

    def describe(self) -> str:
        return f"tx={self.tx} rx={self.rx}"


@dataclass(frozen=True)
class TxTimestamp:
    """One TX timestamp read from the error queue."""

    key: int  # SOF_TIMESTAMPING_OPT_ID counter: one per datagram sent on the socket, from 0
    kind: int  # SCM_TSTAMP_SND, SCM_TSTAMP_SCHED or SCM_TSTAMP_ACK
    ns: int  # CLOCK_REALTIME nanoseconds


def realtime_ns() -> int:
    """User-space CLOCK_REALTIME in nanoseconds (the clock of kernel software timestamps)."""
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


def enable_timestamps(sock: socket.socket, tx: bool = True) -> TimestampSources:
    """Ask the kernel for software timestamps on sock; return the sources that will be used.

    Tries SO_TIMESTAMPING with TX+RX software stamps, OPT_ID and OPT_TSONLY (tx=True), then
    without OPT_TSONLY, then RX only, then SO_TIMESTAMPNS (RX only); TX then falls back to user
    space (realtime_ns() just before send) and, if nothing works, RX too.
    """
    attempts: list[tuple[int, int, TimestampSources]] = []
    if tx:
        attempts.append(
            (SO_TIMESTAMPING, TX_RX_FLAGS, TimestampSources(SOURCE_KERNEL_SOFTWARE, SOURCE_KERNEL_SOFTWARE))
        )
        attempts.append(
            (
                SO_TIMESTAMPING,
                TX_RX_FLAGS & ~SOF_TIMESTAMPING_OPT_TSONLY,
                TimestampSources(SOURCE_KERNEL_SOFTWARE, SOURCE_KERNEL_SOFTWARE),
            )
        )
    attempts.append((SO_TIMESTAMPING, RX_FLAGS, TimestampSources(SOURCE_USER, SOURCE_KERNEL_SOFTWARE)))
    attempts.append((SO_TIMESTAMPNS, 1, TimestampSources(SOURCE_USER, SOURCE_KERNEL_TIMESTAMPNS)))
    for option, value, sources in attempts:
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, value)
        except OSError:
            continue
        return sources
    return TimestampSources(SOURCE_USER, SOURCE_USER)


def disable_tx_timestamps(sock: socket.socket) -> TimestampSources:
    """Keep RX software timestamps but stop TX ones (used when the driver never stamps TX)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, RX_FLAGS)
    except OSError:
        return enable_timestamps(sock, tx=False)
    return TimestampSources(SOURCE_USER, SOURCE_KERNEL_SOFTWARE)


def _timespec_ns(data: bytes, offset: int, layout: struct.Struct) -> int | None:
    if len(data) < offset + layout.size:
        return None
    sec, nsec = layout.unpack_from(data, offset)
    if sec == 0 and nsec == 0:
        return None
    return int(sec) * 1_000_000_000 + int(nsec)


def _software_stamp_ns(level: int, kind: int, data: bytes) -> int | None:
    """The software timestamp of one SOL_SOCKET cmsg, or None if it carries none."""
    if level != socket.SOL_SOCKET:
        return None
    if kind in (SCM_TIMESTAMPING, SCM_TIMESTAMPNS):
        return _timespec_ns(data, 0, _TIMESPEC_NATIVE)  # ts[0] is the software stamp
    if kind in (SO_TIMESTAMPING_NEW, SO_TIMESTAMPNS_NEW):
        return _timespec_ns(data, 0, _TIMESPEC_64)
    return None


def parse_rx_timestamp_ns(cmsgs: Iterable[Cmsg]) -> int | None:
    """Software RX timestamp (ns) from recvmsg() ancillary data (SCM_TIMESTAMPING or SCM_TIMESTAMPNS)."""
    for level, kind, data in cmsgs:
        stamp = _software_stamp_ns(level, kind, data)
        if stamp is not None:
            return stamp
    return None


def parse_tx_timestamp(cmsgs: Iterable[Cmsg]) -> TxTimestamp | None:
    """TX timestamp from the ancillary data of one MSG_ERRQUEUE message, or None.

    Needs a software stamp (SCM_TIMESTAMPING) and an IP_RECVERR/IPV6_RECVERR sock_extended_err with
    origin SO_EE_ORIGIN_TIMESTAMPING (ee_info = kind, ee_data = OPT_ID key).
    """
    stamp: int | None = None
    key_kind: tuple[int, int] | None = None
    for level, kind, data in cmsgs:
        if (level, kind) in ((SOL_IP, IP_RECVERR), (SOL_IPV6, IPV6_RECVERR)):
            if len(data) < _SOCK_EXTENDED_ERR.size:
                continue
            ee_errno, origin, _t, _c, _p, info, key = _SOCK_EXTENDED_ERR.unpack_from(data, 0)
            if origin == SO_EE_ORIGIN_TIMESTAMPING and ee_errno == errno.ENOMSG:
                key_kind = (key, info)
        elif level == socket.SOL_SOCKET and kind in (SCM_TIMESTAMPING, SO_TIMESTAMPING_NEW):
            stamp = _software_stamp_ns(level, kind, data)
    if stamp is None or key_kind is None:
        return None
    return TxTimestamp(key=key_kind[0], kind=key_kind[1], ns=stamp)


def _require_no_timeout(sock: socket.socket) -> None:
    # With a Python-level timeout, MSG_DONTWAIT would make Python wait for POLLIN up to the timeout.
    if sock.gettimeout() not in (None, 0.0):
        raise ValueError("socket must be in blocking or non-blocking mode, not timeout mode")


def read_tx_timestamps(sock: socket.socket) -> list[TxTimestamp]:
    """Drain sock's error queue without blocking; return the TX timestamps found, in queue order.

    Other error-queue messages (e.g. ICMP errors with IP_RECVERR) are read and dropped.
    sock must not have a timeout (settimeout(t > 0)).
    """
    _require_no_timeout(sock)
    found: list[TxTimestamp] = []
    while True:
        try:
            _data, ancdata, _flags, _addr = sock.recvmsg(
                1, ANCILLARY_BUFSIZE, MSG_ERRQUEUE | socket.MSG_DONTWAIT
            )
        except (BlockingIOError, InterruptedError):
            break
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                break
            raise
        stamp = parse_tx_timestamp(ancdata)
        if stamp is not None:
            found.append(stamp)
    return found


def clear_socket_error(sock: socket.socket) -> int:
    """Read and clear a pending socket error (SO_ERROR), so poll() stops reporting POLLERR."""
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


@dataclass(frozen=True)
class TimestampedDatagram:
    """One datagram read with recv_timestamped()."""

    data: bytes
    address: tuple[str, int]
    rx_ns: int
    rx_source: str  # SOURCE_KERNEL_SOFTWARE / SOURCE_KERNEL_TIMESTAMPNS or SOURCE_USER (no cmsg)
    truncated: bool


def recv_timestamped(sock: socket.socket, bufsize: int, kernel_rx_source: str) -> TimestampedDatagram | None:
    """Read one datagram without blocking, with its RX timestamp; None if nothing is queued.

    kernel_rx_source names the kernel source enabled on sock; if the datagram carries no kernel
    timestamp the user-space clock is read instead and the source says so. sock must not have a
    timeout (settimeout(t > 0)).
    """
    _require_no_timeout(sock)
    try:
        data, ancdata, flags, address = sock.recvmsg(bufsize, ANCILLARY_BUFSIZE, socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return None
    stamp = parse_rx_timestamp_ns(ancdata)
    if stamp is None:
        return TimestampedDatagram(data, address, realtime_ns(), SOURCE_USER, bool(flags & socket.MSG_TRUNC))
    return TimestampedDatagram(data, address, stamp, kernel_rx_source, bool(flags & socket.MSG_TRUNC))
