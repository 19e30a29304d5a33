"""Boot probe: when does each address answer its first ICMP echo request?

One raw ICMP socket sends echo requests round-robin to every address that has not answered yet
and records the kernel RX timestamp (CLOCK_REALTIME ns) of each address's first echo reply.
Addresses that do not exist yet make sends fail (EHOSTUNREACH, ENOBUFS, ...): ignored, counted.
Tip: set net.ipv4.neigh.<if>.retrans_time_ms low (e.g. 10) on the prober's interface, or ARP
retries every second round boot times up to whole seconds.

A clock read that leaps ahead is confirmed by a second read (``Deadline``): one bad read of the
monotonic clock would otherwise end the probe early and record every instance as lost (the
suspected cause of a probe that ended 16 s into a 300 s deadline on a Xen dom0 nested in emulated
hardware). Such reads are counted and reported, never hidden.
"""

from __future__ import annotations

import collections
import errno
import math
import random
import select
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from ansible.module_utils.vnflab_host.packets import build_echo_request, check_int, parse_echo_reply
from ansible.module_utils.vnflab_host.rtt_probe import (
    TRANSIENT_SEND_ERRNOS,
    check_number,
    open_icmp_socket,
    validate_ipv4,
)
from ansible.module_utils.vnflab_host.timestamps import enable_timestamps, realtime_ns, recv_timestamped

BOOT_PAYLOAD_BYTES = 56  # like ping's default
_RECV_BUFSIZE = 65536
CONFIRM_PAUSE_S = 0.001  # between a clock read that leaps ahead and the read that confirms it
MAX_GLITCHES_KEPT = 10
GIVE_UP_EVERY_S = 5.0
MAX_POLL_MS = 1000  # no wait for a reply is longer, whatever the clock arithmetic says

GiveUp = Callable[[list[str]], Mapping[str, str]]


@dataclass
class ClockGlitch:
    """A bad monotonic clock read (seconds from the start) and the value used instead."""

    read_s: float
    confirmed_s: float

    def as_dict(self) -> dict[str, float | str]:
        """JSON-safe: a read that was no number is written as "nan", "inf" or "-inf"."""
        return {"read_s": _json_seconds(self.read_s), "confirmed_s": _json_seconds(self.confirmed_s)}


def _json_seconds(value: float) -> float | str:
    return round(value, 6) if math.isfinite(value) else str(value)


class Deadline:
    """A deadline on a monotonic clock that one bad clock read can neither end nor stall.

    The start is the median of three reads a pause apart. ``now()`` never goes back: a read below the
    last trusted one is bad by definition (the last trusted one is used). A read that leaps more than
    LEAP_S past the last trusted one, or past the end, is confirmed by a second read after a short
    pause; a second read below the first proves the first was bad, and the second is used. Bad reads are
    kept as ``ClockGlitch`` (the first MAX_GLITCHES_KEPT of them; all are counted in ``glitch_count``).
    Without this, one bad read would end the probe at once, push the next request far into the future,
    or (on a Xen dom0 nested in emulated hardware, seen) overflow the poll timeout.
    """

    LEAP_S = 1.0

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic,
                 pause: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock
        self._pause = pause
        self.glitches: list[ClockGlitch] = []
        self.glitch_count = 0
        reads = []
        for index in range(3):
            if index:
                pause(CONFIRM_PAUSE_S)
            reads.append(clock())
        finite = sorted(read for read in reads if math.isfinite(read))
        if not finite:
            raise OSError(errno.EINVAL, f"the monotonic clock gave no finite reading: {reads}")
        self.start = finite[(len(finite) - 1) // 2]
        self.end = self.start + seconds
        self._trusted = self.start
        for read in reads:
            if not math.isfinite(read) or abs(read - self.start) > self.LEAP_S:
                self._glitch(read, self.start)

    def _glitch(self, read: float, used: float) -> None:
        self.glitch_count += 1
        if len(self.glitches) < MAX_GLITCHES_KEPT:
            self.glitches.append(ClockGlitch(read - self.start, used - self.start))

    def now(self) -> float:
        """A trusted read of the clock (never below an earlier one)."""
        reading = self._clock()
        if not math.isfinite(reading) or reading < self._trusted:
            self._glitch(reading, self._trusted)
            return self._trusted
        if reading - self._trusted > self.LEAP_S or reading >= self.end:
            self._pause(CONFIRM_PAUSE_S)
            second = self._clock()
            confirmed = max(second, self._trusted) if math.isfinite(second) else self._trusted
            if confirmed < reading:
                self._glitch(reading, confirmed)
                reading = confirmed
        self._trusted = reading
        return reading

    def expired(self, now: float) -> bool:
        """Whether ``now`` (a read from ``now()``) is past the deadline."""
        return now >= self.end

    def elapsed(self) -> float:
        return self.now() - self.start


@dataclass
class BootProbeResult:
    """First echo reply per address: kernel RX timestamp in CLOCK_REALTIME ns, None = none by deadline."""

    first_reply_ns: dict[str, int | None]
    poll_interval_s: float  # effective interval between two requests to one address (at the start)
    requested_poll_interval_s: float
    max_pps: int
    started_ns: int  # CLOCK_REALTIME when polling started
    deadline_ns: int  # CLOCK_REALTIME deadline; later replies are not counted
    rx_source: str
    requests_sent: int = 0
    send_errors: dict[str, int] = field(default_factory=dict)  # errno name -> count
    ended: str = ""  # "all answered", "gave up" (on some, the others answered) or "deadline" (some pending)
    elapsed_s: float = 0.0  # monotonic seconds from the first request to the end of polling
    late_replies: int = 0  # first replies whose RX timestamp was past deadline_ns (not counted)
    clock_glitches: int = 0  # monotonic reads found bad (back in time, or a leap the next read contradicted)
    clock_glitch_reads: list[dict[str, float]] = field(default_factory=list)  # the first few of them
    given_up: dict[str, str] = field(default_factory=dict)  # address -> why it was no longer waited for

    def diagnostics(self) -> dict[str, object]:
        """How the probe ran and ended: what a lost instance needs to be understood."""
        return {
            "ended": self.ended,
            "elapsed_s": round(self.elapsed_s, 6),
            "started_ns": self.started_ns,
            "deadline_ns": self.deadline_ns,
            "requests_sent": self.requests_sent,
            "send_errors": dict(self.send_errors),
            "late_replies": self.late_replies,
            "clock_glitches": self.clock_glitches,
            "clock_glitch_reads": list(self.clock_glitch_reads),
            "given_up": dict(self.given_up),
            "rx_source": self.rx_source,
            "poll_interval_s": self.poll_interval_s,
        }

    def as_dict(self) -> dict[str, object]:
        return {
            **self.diagnostics(),
            "first_reply_ns": dict(self.first_reply_ns),
            "requested_poll_interval_s": self.requested_poll_interval_s,
            "max_pps": self.max_pps,
        }


def effective_poll_interval(pending: int, poll_interval_s: float, max_pps: int) -> float:
    """Interval between requests to one address: poll_interval_s unless max_pps forces pending/max_pps."""
    if pending <= 0:
        return poll_interval_s
    return max(poll_interval_s, pending / max_pps)


def _validate(addresses: Sequence[str], deadline_s: float, poll_interval_s: float, max_pps: int) -> list[str]:
    if isinstance(addresses, (str, bytes)) or not isinstance(addresses, Sequence):
        raise TypeError("addresses must be a list of IPv4 addresses")
    check_number("deadline_s", deadline_s, 0.0, allow_equal=False)
    check_number("poll_interval_s", poll_interval_s, 0.0, allow_equal=False)
    check_int("max_pps", max_pps, 1, 10**7)
    unique: list[str] = []
    for address in addresses:
        validate_ipv4(address)
        if address not in unique:
            unique.append(address)
    return unique


def wait_first_replies(
    addresses: Sequence[str],
    deadline_s: float,
    poll_interval_s: float = 0.01,
    max_pps: int = 1000,
    bind_address: str | None = None,
    give_up: GiveUp | None = None,
    give_up_every_s: float = GIVE_UP_EVERY_S,
    ready: Callable[[str], bool] | None = None,
) -> BootProbeResult:
    """Poll addresses until each answered once or deadline_s (seconds from now) passed.

    ``ready``, if given, says whether an address may be polled yet (an instance whose start command has not
    returned is not); until it says so, no request goes to that address. On a platform whose start command
    returns only once the instance serves, this keeps requests to addresses that cannot answer yet (each an
    ARP broadcast to every instance already up) from loading the server while it starts the rest.

    ``give_up``, if given, is asked every ``give_up_every_s`` seconds with the addresses still pending
    and returns those not worth waiting for (an instance that failed to start or crashed) with the
    reason; they are dropped from polling and listed in ``given_up``. It runs in a helper thread, so
    requests keep going out while it works (a slow health check must not delay a first reply). It is
    asked once more about those still pending when the deadline passes.
    """
    unique = _validate(addresses, deadline_s, poll_interval_s, max_pps)
    check_number("give_up_every_s", give_up_every_s, 0.0, allow_equal=False)
    first: dict[str, int | None] = {address: None for address in unique}
    started_ns = sorted(realtime_ns() for _ in range(3))[1]  # one bad clock read cannot move the median
    deadline_ns = started_ns + int(deadline_s * 1e9)
    result = BootProbeResult(
        first_reply_ns=first,
        poll_interval_s=effective_poll_interval(len(unique), poll_interval_s, max_pps),
        requested_poll_interval_s=float(poll_interval_s),
        max_pps=max_pps,
        started_ns=started_ns,
        deadline_ns=deadline_ns,
        rx_source="",
    )
    sock = open_icmp_socket(bind_address)
    checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vnflab-give-up") if give_up else None
    try:
        sources = enable_timestamps(sock, tx=False)
        result.rx_source = sources.rx
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        ident = random.randrange(1, 0x10000)
        seq = 0
        pending: collections.deque[str] = collections.deque(unique)
        deadline = Deadline(deadline_s)
        next_send = deadline.start
        next_give_up = deadline.start + give_up_every_s
        check: Future[Mapping[str, str]] | None = None

        def apply(found: Mapping[str, str]) -> None:
            for address, reason in found.items():
                if address in pending:
                    pending.remove(address)
                    result.given_up[address] = reason

        def receive() -> None:
            while True:
                try:
                    datagram = recv_timestamped(sock, _RECV_BUFSIZE, sources.rx)
                except OSError:
                    return
                if datagram is None:
                    return
                reply = parse_echo_reply(datagram.data)
                if reply is None or reply.ident != ident or reply.source not in first:
                    continue
                if first[reply.source] is not None or reply.source in result.given_up:
                    continue  # answered already, or given up (its batch is a failed start either way)
                if datagram.rx_ns > deadline_ns:
                    result.late_replies += 1
                    continue
                first[reply.source] = datagram.rx_ns
                pending.remove(reply.source)

        while pending:
            now = deadline.now()
            if deadline.expired(now):
                break
            if check is not None and check.done():
                receive()  # replies already queued count first
                apply(check.result())
                check = None
                next_give_up = now + give_up_every_s
                continue
            if checker is not None and give_up is not None and check is None and now >= next_give_up:
                check = checker.submit(give_up, list(pending))
            while pending and now >= next_send:
                address = _next_ready(pending, ready)
                if address is None:  # none may be polled yet: look again in one interval
                    next_send = now + poll_interval_s
                    break
                request = build_echo_request(ident, seq & 0xFFFF, BOOT_PAYLOAD_BYTES)
                seq += 1
                try:
                    sock.sendto(request, (address, 0))
                except OSError as exc:
                    if exc.errno not in TRANSIENT_SEND_ERRNOS:
                        raise
                    name = errno_name(exc.errno)
                    result.send_errors[name] = result.send_errors.get(name, 0) + 1
                else:
                    result.requests_sent += 1
                active = len(pending) if ready is None else sum(1 for a in pending if ready(a))
                spacing = effective_poll_interval(active, poll_interval_s, max_pps) / max(1, active)
                next_send = max(next_send + spacing, now - spacing)
            wait_s = min(next_send, deadline.end) - deadline.now()
            wait_ms = min(MAX_POLL_MS, max(0, math.ceil(wait_s * 1000))) if math.isfinite(wait_s) else 0
            if poller.poll(wait_ms):
                receive()
        receive()  # replies already queued when the deadline passed (timestamps are checked)
        if checker is not None and give_up is not None and pending:
            # A last check for the unanswered (the one under way, or a new one): an instance that died
            # after the last periodic check is a failed start too, not a lost boot.
            last = check if check is not None else checker.submit(give_up, list(pending))
            apply(last.result())
        result.ended = "deadline" if pending else ("gave up" if result.given_up else "all answered")
        result.elapsed_s = deadline.elapsed()
        result.clock_glitches = deadline.glitch_count
        result.clock_glitch_reads = [glitch.as_dict() for glitch in deadline.glitches]
    finally:
        sock.close()
        if checker is not None:
            checker.shutdown(wait=True)
    return result


def _next_ready(pending: collections.deque[str], ready: Callable[[str], bool] | None) -> str | None:
    """The next address to poll, round robin over those ``ready`` allows (None when it allows none)."""
    for _ in range(len(pending)):
        address = pending[0]
        pending.rotate(-1)
        if ready is None or ready(address):
            return address
    return None


def errno_name(number: int | None) -> str:
    """Symbolic name of an errno value (e.g. "EHOSTUNREACH")."""
    return errno.errorcode.get(number or 0, str(number))
