"""Cross-checks of the probes against the engines' own clocks and counters (issue 24, docs/statistics.md).

The boot probe's times are its own: T0 = CLOCK_REALTIME just before an instance's start command runs,
R = when that command returned, T1 = the kernel receive timestamp of the instance's first echo reply. Every
engine keeps its own record of the same moments, on the same CLOCK_REALTIME:

- Docker: the events ``create``, network ``connect`` and ``start`` of each container (``docker events``,
  nanoseconds, logged by dockerd just after the step is done);
- QEMU: the start time of the QEMU process (``/proc/PID/stat`` field 22, clock ticks since boot: 10 ms);
- Xen: the domain's creation time libxl writes to xenstore (``/vm/UUID/start_time``, seconds with two
  decimals: 10 ms), the one ``xl uptime`` reads.

An engine moment is placed between two probe moments: ``lo <= moment <= hi`` within a tolerance of the
probe's resolution (1 ms), the engine clock's own resolution, and, where the engine logs a step after it
happened, its reporting delay. Outside that is a disagreement: either the probe or the engine is wrong.

Memory: the figures the memory module records for an instance (``driver.memory``) against the kernel's own
cgroup files and ``/proc`` found through the engine (the container's cgroup by its ID, the QEMU process by
the instance's MAC on its command line), read just before and just after the recorded one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Runner = Callable[..., "subprocess.CompletedProcess[str]"]

NS_PER_MS = 1_000_000
#: The boot probe's resolution: one echo request per pending address every millisecond (poll_interval_ms).
PROBE_RESOLUTION_NS = 1 * NS_PER_MS
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
#: The kernel charges a memory cgroup in batches of MEMCG_CHARGE_BATCH pages kept per CPU ("stock"), and
#: flushes memory.stat only once that many updates per CPU are pending: either may leave a cgroup's usage
#: file and its memory.stat that far from the pages it holds, without any allocation.
MEMCG_CHARGE_BATCH_PAGES = 64


@dataclass(frozen=True)
class ProbeTimes:
    """The boot probe's moments of one instance, CLOCK_REALTIME ns."""

    name: str
    start_ns: int  # T0: just before its start command ran
    returned_ns: int  # R: its start command returned
    reply_ns: int | None  # T1: its first echo reply (None: never answered)


@dataclass(frozen=True)
class EngineMoment:
    """One moment as the engine recorded it, and where it must lie among the probe's moments."""

    what: str  # e.g. "docker event start"
    ns: int  # CLOCK_REALTIME, as the engine reports it
    resolution_ns: int  # the true moment lies in [ns, ns + resolution_ns) (the engine truncates)
    after: str  # the probe moment it cannot precede: "start" (T0), "returned" (R), "reply" (T1)
    before: str  # the probe moment it cannot follow
    late_by_ns: int = 0  # how long after the step the engine may log it (its reporting delay)
    early_by_ns: int = 0  # how long before the probe's ``after`` moment it may lie (a delay the probe adds)


def probe_moment(times: ProbeTimes, which: str) -> int | None:
    return {"start": times.start_ns, "returned": times.returned_ns, "reply": times.reply_ns}[which]


def boot_disagreements(times: ProbeTimes, moments: Sequence[EngineMoment],
                       probe_resolution_ns: int = PROBE_RESOLUTION_NS) -> list[str]:
    """Where the engine's moments contradict the probe's (empty when they agree).

    For each moment M: probe[after] - tolerance <= M <= probe[before] + tolerance, the tolerance being the
    probe's resolution plus M's resolution plus, below, the delay the probe may add after M (``early_by_ns``)
    and, above, M's reporting delay (``late_by_ns``: a step logged late may be logged after the probe saw its
    effect).
    """
    problems = []
    if times.reply_ns is None:
        return [f"{times.name}: never answered, nothing to check"]
    for moment in moments:
        low = probe_moment(times, moment.after)
        high = probe_moment(times, moment.before)
        assert low is not None and high is not None
        early_ns = low - (moment.ns + moment.resolution_ns) - probe_resolution_ns - moment.early_by_ns
        if early_ns > 0:
            problems.append(f"{times.name}: {moment.what} at {_ms(moment.ns - times.start_ns)} ms (from T0) is "
                            f"{_ms(early_ns)} ms before the probe's {moment.after} "
                            f"({_ms(low - times.start_ns)} ms) beyond the tolerance")
        late_ns = moment.ns - high - probe_resolution_ns - moment.late_by_ns
        if late_ns > 0:
            problems.append(f"{times.name}: {moment.what} at {_ms(moment.ns - times.start_ns)} ms (from T0) is "
                            f"{_ms(late_ns)} ms after the probe's {moment.before} "
                            f"({_ms(high - times.start_ns)} ms) beyond the tolerance")
    return list(dict.fromkeys(problems))  # a moment placed twice against one bound is one problem


def _ms(ns: int) -> str:
    return f"{ns / NS_PER_MS:.3f}"


# Docker -------------------------------------------------------------------------------------------------

#: Where each Docker event of a container must lie: (type, action) -> [(after, before), ...]. create,
#: connect and start happen while `docker run` runs (T0 <= event <= R: dockerd logs each before it answers
#: the client). The container's address can answer from the moment its interface is up in the container's
#: network namespace: after the endpoint joined (the network "connect" event; with Docker's setkey prestart
#: hook, up to 20.10, the interface moves in later, while runc creates the container) and before the
#: process starts (the "start" event). So the first reply lies between the two: not before "connect" (less
#: its reporting delay, DOCKER_REPORTING_DELAY_NS) and not after "start" by more than the probe needs to see
#: a reply (DOCKER_ANSWER_DELAY_NS).
DOCKER_EVENT_PLACES: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("container", "create"): [("start", "returned")],
    ("network", "connect"): [("start", "reply")],
    ("container", "start"): [("start", "returned"), ("reply", "returned")],
}
#: dockerd logs "connect" after the endpoint joined the sandbox, having updated the container's DNS and join
#: settings: 20 ms covers that on a loaded 2-core machine.
DOCKER_REPORTING_DELAY_NS = 20 * NS_PER_MS
#: Once the address answers, the probe sees a reply within one poll interval (in PROBE_RESOLUTION_NS) plus one
#: ARP retransmission (the platform roles set retrans_time_ms = 10 on the prober's interface) plus scheduling
#: on a loaded 2-core machine: 20 ms in all. A T1 rounded up to an ARP retry of the kernel's default 1 s, the
#: failure the probe's notes warn of, is far outside.
DOCKER_ANSWER_DELAY_NS = 20 * NS_PER_MS


def docker_events_argv(since_ns: int, until_ns: int) -> list[str]:
    """`docker events` for the past interval [since, until] (it exits at `until`), as JSON lines."""
    return ["docker", "events", "--since", _docker_time(since_ns), "--until", _docker_time(until_ns),
            "--filter", "type=container", "--filter", "type=network", "--format", "{{json .}}"]


def _docker_time(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def docker_event_times(lines: Iterable[str]) -> dict[str, dict[tuple[str, str], int]]:
    """Per container name, (type, action) -> timeNano of the events ``docker events`` printed for the newest
    container of that name (an earlier batch's container of the same name may fall in the interval too).

    A network event names its container by ID (``Actor.Attributes.container``); the container's own events
    give the ID's name."""
    events = [json.loads(line) for line in lines if line.strip()]
    names: dict[str, str] = {}
    by_container: dict[str, dict[tuple[str, str], int]] = {}
    for event in events:
        kind, action = event.get("Type", ""), event.get("Action", "")
        attributes = event["Actor"].get("Attributes", {})
        if kind == "container":
            container = event["Actor"]["ID"]
            names.setdefault(container, attributes.get("name", ""))
        else:
            container = attributes.get("container", "")
        if container:
            by_container.setdefault(container, {}).setdefault((kind, action), int(event["timeNano"]))
    newest: dict[str, str] = {}
    for container, times in by_container.items():
        name = names.get(container)
        if name and (name not in newest or min(times.values()) > min(by_container[newest[name]].values())):
            newest[name] = container
    return {name: by_container[container] for name, container in newest.items()}


def docker_moments(events: Mapping[tuple[str, str], int], reporting_delay_ns: int = DOCKER_REPORTING_DELAY_NS,
                   answer_delay_ns: int = DOCKER_ANSWER_DELAY_NS) -> list[EngineMoment]:
    """The Docker events of one container placed among the probe's moments (DOCKER_EVENT_PLACES).

    Raises KeyError naming an event the engine did not report."""
    moments = []
    for key, places in DOCKER_EVENT_PLACES.items():
        if key not in events:
            raise KeyError(f"docker reported no {key[0]} {key[1]} event (it reported {sorted(events)})")
        for after, before in places:
            moments.append(EngineMoment(f"docker event {key[0]} {key[1]}", events[key], 0, after, before,
                                        late_by_ns=reporting_delay_ns if before == "reply" else 0,
                                        early_by_ns=answer_delay_ns if after == "reply" else 0))
    return moments


# Processes (QEMU) ---------------------------------------------------------------------------------------

def parse_proc_stat_starttime(stat: str) -> int:
    """Field 22 of /proc/PID/stat: the process's start, in clock ticks after boot (the comm may hold spaces)."""
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])  # fields after the comm start at field 3


def process_start_realtime_ns(pid: int, proc_root: str = "/proc") -> tuple[int, int]:
    """When process PID started, CLOCK_REALTIME ns (truncated to the clock tick), and the tick in ns.

    The kernel keeps the start on CLOCK_BOOTTIME; the offset to CLOCK_REALTIME is read now (it changes only
    when the wall clock is set)."""
    ticks = parse_proc_stat_starttime(Path(proc_root, str(pid), "stat").read_text())
    hertz = os.sysconf("SC_CLK_TCK")
    offset_ns = _realtime_minus_boottime_ns()
    return ticks * 1_000_000_000 // hertz + offset_ns, 1_000_000_000 // hertz


def _realtime_minus_boottime_ns() -> int:
    reads = []
    for _ in range(3):
        before = time.clock_gettime_ns(time.CLOCK_REALTIME)
        boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        after = time.clock_gettime_ns(time.CLOCK_REALTIME)
        reads.append((after - before, (before + after) // 2 - boot))
    return min(reads)[1]  # the read with the narrowest bracket


def qemu_moments(start_ns: int, resolution_ns: int) -> list[EngineMoment]:
    """QEMU's process start: after T0, before the start command returned (it returns once QEMU daemonized)
    and before the guest's first reply."""
    return [EngineMoment("QEMU process start", start_ns, resolution_ns, "start", "returned"),
            EngineMoment("QEMU process start", start_ns, resolution_ns, "start", "reply")]


def processes_with_argument(argument: str, proc_root: str = "/proc") -> list[int]:
    """PIDs whose command line holds ``argument`` within one of its words (e.g. a VM's MAC in -device ...)."""
    found = []
    for entry in Path(proc_root).iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(argument.encode() in word for word in words):
            found.append(int(entry.name))
    return sorted(found)


# Xen ----------------------------------------------------------------------------------------------------

def parse_xen_start_time(text: str) -> tuple[int, int]:
    """libxl's ``/vm/UUID/start_time`` ("SECONDS.CC", gettimeofday in dom0): CLOCK_REALTIME ns and its
    resolution (10 ms with two decimals, 1 s without)."""
    match = re.fullmatch(r"\s*(\d+)(?:\.(\d+))?\s*", text)
    if match is None:
        raise ValueError(f"not a libxl start_time: {text!r}")
    seconds, fraction = match.group(1), match.group(2) or ""
    resolution_ns = 10 ** (9 - len(fraction)) if fraction else 1_000_000_000
    return int(seconds) * 1_000_000_000 + (int(fraction) * resolution_ns if fraction else 0), resolution_ns


def xen_domain_start_ns(name: str, run: Runner = subprocess.run) -> tuple[int, int]:
    """When domain NAME was created, as libxl recorded it: ``xl domid``, then xenstore's ``/local/domain/ID/vm``
    and ``<vm>/start_time`` (run in dom0). CLOCK_REALTIME ns and its resolution."""
    domid = _output(run, ["xl", "domid", name])
    vm_path = _output(run, ["xenstore-read", f"/local/domain/{int(domid)}/vm"])
    return parse_xen_start_time(_output(run, ["xenstore-read", f"{vm_path}/start_time"]))


def _output(run: Runner, argv: list[str]) -> str:
    done = run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (exit {done.returncode}): {done.stderr.strip()}")
    return str(done.stdout).strip()


def xen_moments(start_ns: int, resolution_ns: int) -> list[EngineMoment]:
    """The domain's creation: after T0, before `xl create` returned and before the domain's first reply."""
    return [EngineMoment("xl domain creation", start_ns, resolution_ns, "start", "returned"),
            EngineMoment("xl domain creation", start_ns, resolution_ns, "start", "reply")]


# Memory -------------------------------------------------------------------------------------------------

def cgroup_charge_fuzz_bytes(cpus: int | None = None) -> int:
    """How far a cgroup's usage file may be from its pages without any allocation (per-CPU stock)."""
    return MEMCG_CHARGE_BATCH_PAGES * PAGE_BYTES * (cpus or os.cpu_count() or 1)


def cgroup_stat_bytes(stat: str, kmem_usage_bytes: int | None = None) -> int:
    """What a memory cgroup's memory.stat adds up to, comparable with its usage file.

    cgroup v2 (``anon``): anon + file + kernel + sock. cgroup v1 (``rss``): rss + cache + the kernel memory
    charged beside them (memory.kmem.usage_in_bytes, given as ``kmem_usage_bytes``); swap is not usage.
    """
    fields = {name: int(value) for name, value in (line.split()[:2] for line in stat.splitlines() if line.strip())}
    if "anon" in fields:
        return sum(fields.get(name, 0) for name in ("anon", "file", "kernel", "sock"))
    if "rss" in fields:
        if kmem_usage_bytes is None:
            raise ValueError("cgroup v1: memory.stat needs memory.kmem.usage_in_bytes beside it")
        # the hierarchical totals, like the usage file (a container's cgroup has no children: the same figures)
        return fields.get("total_rss", fields["rss"]) + fields.get("total_cache", fields["cache"]) + kmem_usage_bytes
    raise ValueError("memory.stat has neither anon (v2) nor rss (v1)")


def smaps_pss_kib(smaps: str) -> tuple[int, int]:
    """The sum of the per-mapping Pss lines of /proc/PID/smaps (KiB) and how many mappings: the kernel's figure,
    mapping by mapping, that smaps_rollup gives as one line. Each mapping's line is truncated to whole KiB, so
    the sum may fall short of the rollup by less than 1 KiB per mapping."""
    values = [int(line.split()[1]) for line in smaps.splitlines() if line.startswith("Pss:")]
    return sum(values), len(values)


def cgroup_directories(container_id: str, cgroup_root: str = "/sys/fs/cgroup") -> list[Path]:
    """The memory cgroup directories named after a container ID (``ID``, ``docker-ID.scope``), cgroup v1's memory
    hierarchy if mounted, else the unified one."""
    root = Path(cgroup_root, "memory") if Path(cgroup_root, "memory", "memory.stat").exists() else Path(cgroup_root)
    found = []
    for directory, subdirectories, _files in os.walk(root):
        for name in subdirectories:
            if container_id in name:
                found.append(Path(directory, name))
    return sorted(found)


def cgroup_usage_and_stat_bytes(directory: Path) -> tuple[int, int]:
    """A memory cgroup's usage file (v1 memory.usage_in_bytes, v2 memory.current) and its memory.stat's sum."""
    stat = (directory / "memory.stat").read_text()
    if (directory / "memory.usage_in_bytes").exists():
        kmem = int((directory / "memory.kmem.usage_in_bytes").read_text())
        return int((directory / "memory.usage_in_bytes").read_text()), cgroup_stat_bytes(stat, kmem)
    return int((directory / "memory.current").read_text()), cgroup_stat_bytes(stat)


def cgroup_pids(directory: Path) -> list[int]:
    return [int(word) for word in (directory / "cgroup.procs").read_text().split()]


def bracket_problem(what: str, recorded: float, before: float, after: float, tolerance: float) -> str | None:
    """None when ``recorded`` (read between ``before`` and ``after``) lies between them within tolerance."""
    low, high = min(before, after) - tolerance, max(before, after) + tolerance
    if low <= recorded <= high:
        return None
    return (f"{what}: recorded {recorded:.3f} outside [{low:.3f}, {high:.3f}] (read before {before:.3f}, "
            f"after {after:.3f}, tolerance {tolerance:.3f})")
