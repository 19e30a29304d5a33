"""Kernel timestamp helpers: ancillary-data parsing with synthetic cmsgs, fallbacks, a loopback check."""

from __future__ import annotations

import errno
import socket
import struct
import sys
import time
from typing import Any

import pytest
from ansible.module_utils.vnflab_host import timestamps as ts

SEC = 1_795_000_000
NSEC = 123_456_789
EXPECTED_NS = SEC * 1_000_000_000 + NSEC


def _timespecs(*pairs: tuple[int, int]) -> bytes:
    return b"".join(struct.pack("@ll", sec, nsec) for sec, nsec in pairs)


def _scm_timestamping(sec: int = SEC, nsec: int = NSEC) -> tuple[int, int, bytes]:
    return (socket.SOL_SOCKET, ts.SCM_TIMESTAMPING, _timespecs((sec, nsec), (0, 0), (0, 0)))


def _recverr(
    key: int,
    kind: int = ts.SCM_TSTAMP_SND,
    origin: int = ts.SO_EE_ORIGIN_TIMESTAMPING,
    level: int = ts.SOL_IP,
) -> tuple[int, int, bytes]:
    kind_type = ts.IP_RECVERR if level == ts.SOL_IP else ts.IPV6_RECVERR
    data = struct.pack("@IBBBBII", errno.ENOMSG, origin, 0, 0, 0, kind, key) + b"\x00" * 16
    return (level, kind_type, data)


def test_rx_from_scm_timestamping() -> None:
    assert ts.parse_rx_timestamp_ns([_scm_timestamping()]) == EXPECTED_NS


def test_rx_from_scm_timestampns() -> None:
    cmsg = (socket.SOL_SOCKET, ts.SCM_TIMESTAMPNS, _timespecs((SEC, NSEC)))
    assert ts.parse_rx_timestamp_ns([cmsg]) == EXPECTED_NS


@pytest.mark.parametrize("kind", [ts.SO_TIMESTAMPING_NEW, ts.SO_TIMESTAMPNS_NEW])
def test_rx_from_new_64bit_layouts(kind: int) -> None:
    data = struct.pack("@qq", SEC, NSEC) + b"\x00" * 32
    assert ts.parse_rx_timestamp_ns([(socket.SOL_SOCKET, kind, data)]) == EXPECTED_NS


def test_rx_hardware_only_stamp_is_not_software() -> None:
    cmsg = (socket.SOL_SOCKET, ts.SCM_TIMESTAMPING, _timespecs((0, 0), (0, 0), (SEC, NSEC)))
    assert ts.parse_rx_timestamp_ns([cmsg]) is None


@pytest.mark.parametrize(
    "cmsgs",
    [
        [],
        [(socket.SOL_SOCKET, ts.SCM_TIMESTAMPING, b"\x01\x02")],  # truncated
        [(socket.SOL_IP, ts.SCM_TIMESTAMPING, _timespecs((SEC, NSEC)))],  # wrong level
        [(socket.SOL_SOCKET, 29, _timespecs((SEC, NSEC)))],  # SO_TIMESTAMP (timeval): not parsed
    ],
)
def test_rx_absent(cmsgs: list[tuple[int, int, bytes]]) -> None:
    assert ts.parse_rx_timestamp_ns(cmsgs) is None


def test_rx_skips_unrelated_cmsgs() -> None:
    cmsgs = [(socket.SOL_IP, 8, b"\x00" * 12), _scm_timestamping()]  # IP_PKTINFO first
    assert ts.parse_rx_timestamp_ns(cmsgs) == EXPECTED_NS


@pytest.mark.parametrize("level", [ts.SOL_IP, ts.SOL_IPV6])
def test_tx_timestamp(level: int) -> None:
    for order in (
        [_scm_timestamping(), _recverr(41, level=level)],
        [_recverr(41, level=level), _scm_timestamping()],
    ):
        assert ts.parse_tx_timestamp(order) == ts.TxTimestamp(key=41, kind=ts.SCM_TSTAMP_SND, ns=EXPECTED_NS)


def test_tx_timestamp_kind_is_reported() -> None:
    stamp = ts.parse_tx_timestamp([_scm_timestamping(), _recverr(3, kind=ts.SCM_TSTAMP_SCHED)])
    assert stamp is not None and stamp.kind == ts.SCM_TSTAMP_SCHED


@pytest.mark.parametrize(
    "cmsgs",
    [
        [_scm_timestamping()],  # no extended error
        [_recverr(1)],  # no stamp
        [_scm_timestamping(), _recverr(1, origin=2)],  # SO_EE_ORIGIN_ICMP: an ICMP error, not a stamp
        [_scm_timestamping(), (ts.SOL_IP, ts.IP_RECVERR, b"\x00" * 8)],  # truncated extended error
        [_scm_timestamping(0, 0), _recverr(1)],  # empty software stamp
    ],
)
def test_tx_timestamp_absent(cmsgs: list[tuple[int, int, bytes]]) -> None:
    assert ts.parse_tx_timestamp(cmsgs) is None


class _FakeSocket:
    """setsockopt fails for the options listed in refuse."""

    def __init__(self, refuse: set[tuple[int, int]]) -> None:
        self.refuse = refuse
        self.calls: list[tuple[int, int]] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.calls.append((option, value))
        if (option, value) in self.refuse or (option, -1) in self.refuse:
            raise OSError(errno.EINVAL, "unsupported")


def test_enable_prefers_tx_and_rx_software() -> None:
    sock: Any = _FakeSocket(set())
    assert ts.enable_timestamps(sock) == ts.TimestampSources(
        ts.SOURCE_KERNEL_SOFTWARE, ts.SOURCE_KERNEL_SOFTWARE
    )
    assert sock.calls == [(ts.SO_TIMESTAMPING, ts.TX_RX_FLAGS)]
    assert ts.TX_RX_FLAGS & ts.SOF_TIMESTAMPING_OPT_ID and ts.TX_RX_FLAGS & ts.SOF_TIMESTAMPING_OPT_TSONLY


def test_enable_without_tsonly() -> None:
    sock: Any = _FakeSocket({(ts.SO_TIMESTAMPING, ts.TX_RX_FLAGS)})
    assert ts.enable_timestamps(sock).tx == ts.SOURCE_KERNEL_SOFTWARE
    assert sock.calls[-1] == (ts.SO_TIMESTAMPING, ts.TX_RX_FLAGS & ~ts.SOF_TIMESTAMPING_OPT_TSONLY)


def test_enable_falls_back_to_rx_only_then_timestampns_then_user() -> None:
    tx_refused = {
        (ts.SO_TIMESTAMPING, ts.TX_RX_FLAGS),
        (ts.SO_TIMESTAMPING, ts.TX_RX_FLAGS & ~ts.SOF_TIMESTAMPING_OPT_TSONLY),
    }
    sock: Any = _FakeSocket(tx_refused)
    assert ts.enable_timestamps(sock) == ts.TimestampSources(ts.SOURCE_USER, ts.SOURCE_KERNEL_SOFTWARE)
    sock = _FakeSocket({(ts.SO_TIMESTAMPING, -1)})
    assert ts.enable_timestamps(sock) == ts.TimestampSources(ts.SOURCE_USER, ts.SOURCE_KERNEL_TIMESTAMPNS)
    assert sock.calls[-1] == (ts.SO_TIMESTAMPNS, 1)
    sock = _FakeSocket({(ts.SO_TIMESTAMPING, -1), (ts.SO_TIMESTAMPNS, -1)})
    assert ts.enable_timestamps(sock) == ts.TimestampSources(ts.SOURCE_USER, ts.SOURCE_USER)


def test_enable_rx_only_when_tx_not_wanted() -> None:
    sock: Any = _FakeSocket(set())
    assert ts.enable_timestamps(sock, tx=False) == ts.TimestampSources(
        ts.SOURCE_USER, ts.SOURCE_KERNEL_SOFTWARE
    )
    assert sock.calls == [(ts.SO_TIMESTAMPING, ts.RX_FLAGS)]


def test_realtime_clock_is_the_wall_clock() -> None:
    import time

    assert abs(ts.realtime_ns() - time.time_ns()) < 50_000_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux socket timestamping")
def _wait_for_rx_timestamping(receiver: socket.socket) -> None:
    """Return once the kernel stamps datagrams arriving at receiver (its timestamping is enabled).

    When no socket on the host wants timestamps, enabling them turns the kernel's netstamp static key
    on from a workqueue, so a datagram sent at once may arrive unstamped. Throwaway datagrams from
    another socket are sent until one arrives stamped; each is read before the next is sent.
    """
    warm = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.settimeout(1.0)
    try:
        for _ in range(100):
            warm.sendto(b"w", receiver.getsockname())
            _data, ancdata, _flags, _addr = receiver.recvmsg(64, ts.ANCILLARY_BUFSIZE)
            if ts.parse_rx_timestamp_ns(ancdata) is not None:
                return
            time.sleep(0.01)
        pytest.fail("the kernel never stamped a loopback datagram on receive")
    finally:
        receiver.settimeout(None)
        warm.close()


def test_loopback_udp_tx_and_rx_stamps() -> None:
    """Real kernel: OPT_ID keys count datagrams from 0, TX precedes RX, sources are kernel."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        sources = ts.enable_timestamps(sender)
        assert sources.tx == ts.SOURCE_KERNEL_SOFTWARE
        assert ts.enable_timestamps(receiver, tx=False).rx == ts.SOURCE_KERNEL_SOFTWARE
        _wait_for_rx_timestamping(receiver)
        before = ts.realtime_ns()
        for _ in range(2):
            sender.sendto(b"x" * 100, receiver.getsockname())
        stamps = []
        for _ in range(100):
            stamps += ts.read_tx_timestamps(sender)
            if len(stamps) >= 2:
                break
        assert [s.key for s in stamps] == [0, 1]
        assert all(s.kind == ts.SCM_TSTAMP_SND and s.ns >= before for s in stamps)
        receiver.settimeout(1.0)
        _data, ancdata, _flags, _addr = receiver.recvmsg(2048, ts.ANCILLARY_BUFSIZE)
        with pytest.raises(ValueError, match="timeout mode"):
            ts.recv_timestamped(receiver, 2048, ts.SOURCE_KERNEL_SOFTWARE)
        receiver.setblocking(False)
        rx = ts.parse_rx_timestamp_ns(ancdata)
        assert rx is not None and rx >= stamps[0].ns
        assert ts.read_tx_timestamps(sender) == []
        datagram = ts.recv_timestamped(receiver, 2048, ts.SOURCE_KERNEL_SOFTWARE)
        assert datagram is not None and datagram.rx_source == ts.SOURCE_KERNEL_SOFTWARE
        assert ts.recv_timestamped(receiver, 2048, ts.SOURCE_KERNEL_SOFTWARE) is None
    finally:
        sender.close()
        receiver.close()
