# Copyright: vnflab contributors
# Apache License 2.0
"""VNF migration: a bounded fixed-rate echo stream through the proxy, its downtime, and the driver's migrate step.

Host A sends one echo request every ``interval_s`` (1 ms by default) for at most ``duration_s`` while the VNF
server moves the proxy VNF (the driver's optional ``migrate`` command). Downtime is the longest time without a
reply: between two consecutive replies (arrival order), or from the stream's first request to the first reply,
or from the last reply to the end of the stream when the path never came back (``recovered`` is then false).

The driver's ``migrate`` command contract: exit 0 once the proxy runs at its new place, its last stdout line
optionally a JSON object with ``bytes`` (bytes the platform transferred) and ``platform_downtime_ms`` (the
platform's own downtime figure); exit ``MIGRATE_NOT_HERE`` (3) when the mechanism cannot run on this server,
stderr saying why (recorded as a skip); any other exit is a failure.
"""

from __future__ import annotations

import json
import random
import select
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from ansible.module_utils.vnflab_host.packets import (
    build_echo_request,
    build_udp_payload,
    check_int,
    parse_echo_reply,
    parse_udp_payload,
)
from ansible.module_utils.vnflab_host.rtt_probe import MODE_ICMP, MODES, open_icmp_socket

MIGRATE_NOT_HERE = 3
MAX_DURATION_S = 300.0  # a stream is bounded, whatever it is asked
MIN_INTERVAL_S = 0.0001
GAPS_KEPT = 10


@dataclass
class StreamSummary:
    """What a stream of echo requests saw (times in ns of CLOCK_REALTIME, durations in ms)."""

    sent: int
    replied: int
    lost: int
    downtime_ms: float | None
    downtime_start_ns: int | None
    downtime_end_ns: int | None
    recovered: bool
    start_ns: int | None = None  # the first request
    end_ns: int | None = None  # when the stream stopped sending
    gaps_ms: list[list[float]] = field(default_factory=list)  # [start offset ms, gap ms], longest first

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize(send_ns: Sequence[int], reply_ns: Sequence[int], end_ns: int, interval_ns: int) -> StreamSummary:
    """Downtime and losses of a stream: requests sent at ``send_ns``, replies arriving at ``reply_ns``.

    ``end_ns`` is when the stream stopped sending. A gap counts from the previous reply (or the first
    request) to the next reply (or ``end_ns`` when none came). Gaps above twice the interval are kept,
    the ``GAPS_KEPT`` longest, as offsets from the first request.
    """
    if not send_ns:
        return StreamSummary(0, 0, 0, None, None, None, False, None, end_ns)
    start = send_ns[0]
    replies = sorted(t for t in reply_ns if t >= start)
    edges = [start, *replies]
    recovered = bool(replies) and end_ns - replies[-1] <= max(2 * interval_ns, 1)
    if not recovered:
        edges.append(max(end_ns, edges[-1]))
    gaps = [(edges[i + 1] - edges[i], edges[i]) for i in range(len(edges) - 1)]
    longest, longest_start = max(gaps) if gaps else (0, start)
    kept = sorted((gap for gap in gaps if gap[0] > 2 * interval_ns), reverse=True)[:GAPS_KEPT]
    return StreamSummary(
        sent=len(send_ns), replied=len(replies), lost=len(send_ns) - len(replies),
        downtime_ms=longest / 1e6, downtime_start_ns=longest_start, downtime_end_ns=longest_start + longest,
        recovered=recovered, start_ns=start, end_ns=end_ns,
        gaps_ms=[[round((s - start) / 1e6, 3), round(g / 1e6, 3)] for g, s in kept])


def stream(address: str, duration_s: float, interval_s: float = 0.001, mode: str = MODE_ICMP,
           udp_port: int = 7007, payload_bytes: int = 64, grace_s: float = 1.0) -> tuple[StreamSummary, int]:
    """Send one echo request every ``interval_s`` to ``address`` for ``duration_s``; return the summary and
    the requests that could not even be sent (send errors count as lost too)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise ValueError(f"duration_s must be in (0, {MAX_DURATION_S}], got {duration_s}")
    if interval_s < MIN_INTERVAL_S:
        raise ValueError(f"interval_s must be at least {MIN_INTERVAL_S}, got {interval_s}")
    check_int("udp_port", udp_port, 1, 65535)
    ident = random.randrange(1, 0x10000)
    if mode == MODE_ICMP:
        sock = open_icmp_socket()
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(("0.0.0.0", 0))
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    send_ns: list[int] = []
    send_errors = 0
    seen: set[int] = set()
    reply_ns: list[int] = []
    interval_ns = int(interval_s * 1e9)

    def receive() -> None:
        while True:
            try:
                data, source = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            now = time.clock_gettime_ns(time.CLOCK_REALTIME)
            if mode == MODE_ICMP:
                reply = parse_echo_reply(data)
                seq = reply.seq if reply is not None and reply.ident == ident and reply.source == address else None
            else:
                header = parse_udp_payload(data)
                seq = (header.seq if header is not None and header.probe_id == ident and source[0] == address
                       else None)
            if seq is not None and seq not in seen:
                seen.add(seq)
                reply_ns.append(now)

    try:
        start_mono = time.monotonic_ns()
        end_mono = start_mono + int(duration_s * 1e9)
        k = 0
        while True:
            due = start_mono + k * interval_ns
            if due >= end_mono:
                break
            now = time.monotonic_ns()
            if now < due:
                if poller.poll(max(0, (due - now) // 1_000_000)):
                    receive()
                continue
            seq = k & 0xFFFF if mode == MODE_ICMP else k
            packet = (build_echo_request(ident, seq, payload_bytes) if mode == MODE_ICMP
                      else build_udp_payload(ident, seq, payload_bytes))
            send_ns.append(time.clock_gettime_ns(time.CLOCK_REALTIME))
            try:
                sock.sendto(packet, (address, 0 if mode == MODE_ICMP else udp_port))
            except OSError:
                send_errors += 1
            k += 1
            receive()
            if mode == MODE_ICMP and k >= 0x10000:
                seen.discard(k & 0xFFFF)  # the 16-bit sequence wraps after 65 s at 1 ms
        end_ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
        grace_end = time.monotonic_ns() + int(grace_s * 1e9)
        while time.monotonic_ns() < grace_end and len(reply_ns) < len(send_ns):
            if poller.poll(10):
                receive()
    finally:
        sock.close()
    # Replies that arrived in the grace period count against loss, not towards recovery after end_ns.
    return summarize(send_ns, reply_ns, end_ns, interval_ns), send_errors


@dataclass
class MigrateOutcome:
    start_ns: int
    end_ns: int
    returncode: int
    skipped_reason: str | None = None
    error: str | None = None
    bytes: int | None = None
    platform_downtime_ms: float | None = None

    @property
    def total_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "total_ms": self.total_ms}


def parse_migrate_report(stdout: str) -> dict[str, Any]:
    """The JSON object on the last non-empty stdout line of a migrate command, or {} when there is none."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        return {}
    try:
        report = json.loads(lines[-1])
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}


def migrate(argv: Sequence[str], timeout_s: float, runner: Any = subprocess.run) -> MigrateOutcome:
    """Run the driver's migrate command once, timed with CLOCK_REALTIME (the stream's clock)."""
    start = time.clock_gettime_ns(time.CLOCK_REALTIME)
    try:
        done = runner([str(arg) for arg in argv], capture_output=True, text=True, errors="replace",
                      timeout=timeout_s, check=False)
        returncode, stdout, stderr = done.returncode, done.stdout or "", done.stderr or ""
    except (OSError, subprocess.SubprocessError) as exc:
        returncode, stdout, stderr = 127, "", f"{type(exc).__name__}: {exc}"
    outcome = MigrateOutcome(start_ns=start, end_ns=time.clock_gettime_ns(time.CLOCK_REALTIME),
                             returncode=returncode)
    message = (stderr or stdout).strip() or f"exit {returncode}"
    if returncode == MIGRATE_NOT_HERE:
        outcome.skipped_reason = message
    elif returncode != 0:
        outcome.error = message
    else:
        report = parse_migrate_report(stdout)
        if isinstance(report.get("bytes"), int) and report["bytes"] >= 0:
            outcome.bytes = report["bytes"]
        if isinstance(report.get("platform_downtime_ms"), (int, float)):
            outcome.platform_downtime_ms = float(report["platform_downtime_ms"])
    return outcome
