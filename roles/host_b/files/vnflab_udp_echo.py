#!/usr/bin/env python3
"""vnflab UDP echo server: sends every datagram (1..65507 bytes) back to its sender unchanged.

Usage: vnflab_udp_echo.py --bind ADDR [--bind ADDR ...] [--port 7007] [--verbose]
One socket per --bind address, so a real Host B answers on its lab addresses only, not on its management
network. A specific IPv4 address is bound with IP_FREEBIND: the service starts before the lab play has put the
address on. Bound to the IPv4 wildcard (0.0.0.0), replies leave from the address each request was sent to
(IP_PKTINFO), so a host with several addresses answers every one of them correctly.
Logs to stderr; exits 0 on SIGTERM or SIGINT. Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import errno
import logging
import selectors
import signal
import socket
import struct
import sys
from types import FrameType

DEFAULT_PORT = 7007
MAX_DATAGRAM = 65535  # larger than any UDP payload over IPv4 (65507)
SOCKET_BUFFER = 4 << 20
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux value; Python's socket module lacks it
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # Linux value
_IN_PKTINFO = struct.Struct("@i4s4s")  # ipi_ifindex, ipi_spec_dst, ipi_addr
_SEND_ERRNOS = frozenset(
    {
        errno.ENOBUFS,
        errno.EAGAIN,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ECONNREFUSED,
        errno.EPERM,
        errno.EMSGSIZE,
        errno.EINVAL,
    }
)
LOG = logging.getLogger("vnflab_udp_echo")


class _Stop(Exception):
    """Raised by the signal handler to leave the receive loop."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def open_socket(bind: str, port: int) -> socket.socket:
    info = socket.getaddrinfo(bind, port, 0, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST | socket.AI_PASSIVE)
    family, _type, _proto, _name, address = info[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        except OSError:
            pass
    if family == socket.AF_INET and address[0] != "0.0.0.0":
        sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    sock.bind(address)
    return sock


def is_ipv4_wildcard(sock: socket.socket) -> bool:
    return sock.family == socket.AF_INET and sock.getsockname()[0] == "0.0.0.0"


def reply_pktinfo(ancdata: list[tuple[int, int, bytes]]) -> list[tuple[int, int, bytes]]:
    """Ancillary data making the reply leave from the request's destination address."""
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= _IN_PKTINFO.size:
            _ifindex, _spec_dst, destination = _IN_PKTINFO.unpack_from(data)
            return [(socket.IPPROTO_IP, IP_PKTINFO, _IN_PKTINFO.pack(0, destination, bytes(4)))]
    return []


def serve(socks: socket.socket | list[socket.socket], stats: dict[str, int], verbose: bool = False) -> None:
    """Echo on every socket until a signal raises _Stop; count datagrams in stats["echoed"].

    One socket is served by a blocking receive loop (no select in the measured path); several by a selector."""
    socks = socks if isinstance(socks, list) else [socks]
    buffer = bytearray(MAX_DATAGRAM)
    stats.setdefault("echoed", 0)
    for sock in socks:
        if is_ipv4_wildcard(sock):
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    if len(socks) == 1:
        while True:
            echo_one(socks[0], buffer, stats, verbose)
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    while True:
        for key, _events in selector.select():
            echo_one(key.fileobj, buffer, stats, verbose)  # type: ignore[arg-type]


def echo_one(sock: socket.socket, buffer: bytearray, stats: dict[str, int], verbose: bool = False) -> None:
    """Receive one datagram on sock and send it back to its sender."""
    pktinfo = is_ipv4_wildcard(sock)
    ancbufsize = socket.CMSG_SPACE(_IN_PKTINFO.size) if pktinfo else 0
    try:
        size, ancdata, _flags, peer = sock.recvmsg_into([buffer], ancbufsize)
    except BlockingIOError:
        return
    except OSError as exc:  # e.g. ECONNREFUSED left by an ICMP error: keep serving
        LOG.warning("recvmsg: %s", exc)
        return
    view = memoryview(buffer)[:size]
    try:
        if pktinfo:
            sock.sendmsg([view], reply_pktinfo(ancdata), 0, peer)
        else:
            sock.sendto(view, peer)
    except OSError as exc:
        if exc.errno not in _SEND_ERRNOS:
            raise
        LOG.warning("send to %s: %s", peer, exc)
        return
    finally:
        view.release()
    stats["echoed"] += 1
    if verbose:
        LOG.info("echoed %d bytes to %s", size, peer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="UDP echo server for vnflab response-time probes")
    parser.add_argument("--bind", required=True, action="append",
                        help="address to listen on (IPv4 or IPv6 literal); repeat for several")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"UDP port (default {DEFAULT_PORT})")
    parser.add_argument("--verbose", action="store_true", help="log every datagram")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error("--port must be in 1..65535")
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s vnflab_udp_echo[%(process)d] %(levelname)s %(message)s",
    )
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    socks: list[socket.socket] = []
    try:
        for bind in args.bind:
            socks.append(open_socket(bind, args.port))
    except (OSError, socket.gaierror) as exc:
        LOG.error("cannot listen on %s port %d: %s", bind, args.port, exc)
        for sock in socks:
            sock.close()
        return 1
    except _Stop as stop:
        LOG.info("stopped by %s before listening", stop)
        return 0
    LOG.info("listening on %s port %d", ", ".join(args.bind), args.port)
    stats: dict[str, int] = {"echoed": 0}
    try:
        serve(socks, stats, args.verbose)
    except _Stop as stop:
        LOG.info("stopping on %s", stop)
    finally:
        for sock in socks:
            sock.close()
    LOG.info("exit after echoing %d datagrams", stats["echoed"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
