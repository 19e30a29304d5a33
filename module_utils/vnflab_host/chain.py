# Copyright: vnflab contributors
# Apache License 2.0
"""Service chains (the chain metric): k proxy VNFs in series on one server, A -> VNF1 -> ... -> VNFk -> B.

The server side starts and stops the hops through the platform driver's optional ``chain`` key
(``{"start": argv, "stop": argv}``): each hop's start command is ``chain.start`` followed by the hop's options
(:func:`hop_argv`), its stop command ``chain.stop`` followed by the hop's name. Host A's side waits for the first
echo through the whole chain (:func:`first_echo`), then measures RTTs through it with the response probe.
Times are CLOCK_REALTIME in ns, like the migration metric's: the boot time of a chain is Host A's first reply
minus the server's first start command.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.vnflab_host.rtt_probe import EchoProber

#: Exit status of a chain start command whose mechanism cannot run here (journaled as a skip with its reason).
CHAIN_NOT_HERE = 3

#: The options every hop's start command gets, in this order (values from the hop dict of the
#: ``vnflab_chain_hops`` filter).
HOP_OPTIONS: tuple[str, ...] = ("bridge_a", "address_a", "bridge_b", "address_b", "upstream", "downstream", "client",
                                "veth_a", "veth_b")


def hop_argv(start: Sequence[str], hop: Mapping[str, Any]) -> list[str]:
    """A hop's start command: the driver's ``chain.start``, the hop's name, then ``--bridge-a BR ...``."""
    argv = [str(arg) for arg in start] + [str(hop["name"])]
    for option in HOP_OPTIONS:
        argv += [f"--{option.replace('_', '-')}", str(hop[option])]
    return argv


@dataclass
class StartOutcome:
    start_ns: int
    end_ns: int
    started: list[str] = field(default_factory=list)
    skipped_reason: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "start_ms": (self.end_ns - self.start_ns) / 1e6}


def _run(argv: Sequence[str], timeout_s: float, runner: Any) -> tuple[int, str]:
    try:
        done = runner([str(arg) for arg in argv], capture_output=True, text=True, errors="replace",
                      timeout=timeout_s, check=False)
        return done.returncode, ((done.stderr or "") or (done.stdout or "")).strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return 127, f"{type(exc).__name__}: {exc}"


def start_chain(driver: Mapping[str, Any], hops: Sequence[Mapping[str, Any]], timeout_s: float,
                runner: Any = subprocess.run) -> StartOutcome:
    """Start every hop of the chain, the last hop (Host B's side) first and the first hop (Host A's) last: a hop
    then starts with the hops after it already up, and never sees Host A's requests before its next hop is there.
    Started first, a hop would forward them to a next hop not yet up, and its neighbour entry for that address,
    left INCOMPLETE, is retried only once a second: the chain's boot time rounded up to those retries (about 1 s
    at any k). Stops at the first failure; exit CHAIN_NOT_HERE is the mechanism's absence (a skip)."""
    chain = driver.get("chain") or {}
    outcome = StartOutcome(start_ns=time.clock_gettime_ns(time.CLOCK_REALTIME), end_ns=0)
    for hop in reversed(hops):
        code, message = _run(hop_argv(chain["start"], hop), timeout_s, runner)
        if code == CHAIN_NOT_HERE:
            outcome.skipped_reason = message or f"exit {code}"
            break
        if code != 0:
            outcome.error = f"hop {hop['name']}: {message or f'exit {code}'}"
            break
        outcome.started.append(str(hop["name"]))
    outcome.end_ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
    return outcome


def stop_chain(driver: Mapping[str, Any], names: Sequence[str], timeout_s: float,
               runner: Any = subprocess.run) -> list[str]:
    """Stop every named hop (idempotent stop commands); the failures' messages, empty when all stopped."""
    chain = driver.get("chain") or {}
    errors = []
    for name in names:
        code, message = _run([*chain["stop"], name], timeout_s, runner)
        if code != 0:
            errors.append(f"{name}: {message or f'exit {code}'}")
    return errors


@dataclass
class FirstEcho:
    first_request_ns: int
    reply_ns: int | None
    requests: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def first_echo(address: str, timeout_s: float, mode: str, bind_address: str | None = None,
               wait_s: float = 0.01, prober_factory: Any = EchoProber) -> FirstEcho:
    """Echo requests to ``address`` (one at a time, each waiting ``wait_s`` for its reply) until the first reply,
    for at most ``timeout_s``: the reply's CLOCK_REALTIME time (to within ``wait_s``), or None."""
    start = time.clock_gettime_ns(time.CLOCK_REALTIME)
    deadline = time.monotonic() + timeout_s
    requests = 0
    while time.monotonic() < deadline:
        requests += 1
        # Each request its own flow (a new prober: a new ICMP identifier or UDP source port): a hop that saw an
        # earlier request while it was half built (its rules not yet in, its next hop not yet there) may keep
        # connection-tracking state for that flow, which must not decide the later requests' fate.
        try:
            with prober_factory(mode=mode, bind_address=bind_address) as prober:
                measured = prober.measure({"chain": address}, payload_bytes=64, samples=1, warmup=0,
                                          interval_s=0.0, timeout_s=wait_s)
        except OSError:  # no route or neighbour yet: the chain is not up
            time.sleep(wait_s)
            continue
        if measured.rtt_us["chain"][0] is not None:
            return FirstEcho(start, time.clock_gettime_ns(time.CLOCK_REALTIME), requests)
    return FirstEcho(start, None, requests)
