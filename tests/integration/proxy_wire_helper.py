#!/usr/bin/env python3
"""Helpers run inside a network namespace (``ip netns exec``) by test_proxy_wire.py; print JSON.

Usage:
  proxy_wire_helper.py udp TARGET PORT SIZE[,SIZE...] [--timeout S]
      send one datagram of random bytes per size to TARGET:PORT, wait for the reply; per size:
      {"size", "ok" (reply identical), "source" [addr, port] or null, "error"}
  proxy_wire_helper.py sniff IFACE --count N --timeout S
      scapy-sniff IPv4 packets on IFACE; prints "ready" once capturing, then one JSON list of
      {"src", "dst", "proto", "id", "frag", "mf", "len"} when N packets were seen or S elapsed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
from typing import Any


def udp_roundtrips(target: str, port: int, sizes: list[int], timeout: float) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.settimeout(timeout)
        for size in sizes:
            payload = os.urandom(size)
            result: dict[str, Any] = {"size": size, "ok": False, "source": None, "error": None}
            try:
                sock.sendto(payload, (target, port))
                data, source = sock.recvfrom(65536)
                result["ok"] = data == payload
                result["source"] = list(source)
            except OSError as exc:
                result["error"] = str(exc)
            results.append(result)
    return results


def sniff(iface: str, count: int, timeout: float) -> list[dict[str, Any]]:
    from scapy.layers.inet import IP
    from scapy.sendrecv import AsyncSniffer

    started = threading.Event()
    # lfilter, not a BPF filter: compiling BPF needs tcpdump or libpcap, which may be absent
    sniffer = AsyncSniffer(
        iface=iface, lfilter=lambda packet: IP in packet, count=count, store=True, started_callback=started.set
    )
    sniffer.start()
    if not started.wait(10):
        raise SystemExit("sniffer did not start")
    print("ready", flush=True)
    sniffer.join(timeout)
    if sniffer.running:
        sniffer.stop()
    packets = sniffer.results or []
    records = []
    for packet in packets:
        if IP not in packet:
            continue
        ip = packet[IP]
        records.append(
            {
                "src": ip.src,
                "dst": ip.dst,
                "proto": ip.proto,
                "id": ip.id,
                "frag": ip.frag,
                "mf": bool(ip.flags.MF),
                "len": ip.len,
            }
        )
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="call", required=True)
    udp = sub.add_parser("udp")
    udp.add_argument("target")
    udp.add_argument("port", type=int)
    udp.add_argument("sizes")
    udp.add_argument("--timeout", type=float, default=1.0)
    sn = sub.add_parser("sniff")
    sn.add_argument("iface")
    sn.add_argument("--count", type=int, required=True)
    sn.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args()
    if args.call == "udp":
        sizes = [int(size) for size in args.sizes.split(",")]
        print(json.dumps(udp_roundtrips(args.target, args.port, sizes, args.timeout)))
    else:
        print(json.dumps(sniff(args.iface, args.count, args.timeout)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
