"""vnflab.measure.crosscheck with known answers: the tolerance rule, the engines' records as they print them (docker
events, /proc/PID/stat, libxl's start_time through a fake xl and xenstore-read), and the kernel's own figures on a
process this test starts. The checks against a running lab: tests/e2e/test_platform_probes.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vnflab.measure import crosscheck
from vnflab.measure.crosscheck import EngineMoment, ProbeTimes

MS = 1_000_000
T0 = 1_765_000_000_000_000_000


def times(returned_ms: float = 300.0, reply_ms: float | None = 250.0) -> ProbeTimes:
    return ProbeTimes("vnflab-docker-0", T0, T0 + int(returned_ms * MS),
                      None if reply_ms is None else T0 + int(reply_ms * MS))


def docker(create_ms: float, connect_ms: float, start_ms: float) -> list[EngineMoment]:
    return crosscheck.docker_moments({("container", "create"): T0 + int(create_ms * MS),
                                      ("network", "connect"): T0 + int(connect_ms * MS),
                                      ("container", "start"): T0 + int(start_ms * MS)})


def test_docker_events_inside_the_probes_moments_agree() -> None:
    # created 40 ms after T0, network up at 240 ms, the reply at 250 ms, started at 290 ms, run returned at 300 ms
    assert crosscheck.boot_disagreements(times(), docker(40, 240, 290)) == []
    # the reply may precede the connect log line by the reporting delay (20 ms) and the probe's 1 ms
    assert crosscheck.boot_disagreements(times(reply_ms=250), docker(40, 270.5, 290)) == []


@pytest.mark.parametrize(("moments", "flagged"), [
    (docker(-3, 240, 290), "create at -3.000 ms (from T0) is 2.000 ms before the probe's start"),  # T0 taken late
    (docker(40, 240, 302), "start at 302.000 ms (from T0) is 1.000 ms after the probe's returned"),  # R taken early
    (docker(40, 272, 290), "connect at 272.000 ms (from T0) is 1.000 ms after the probe's reply"),  # T1 too early
])
def test_a_moment_beyond_the_tolerance_is_flagged(moments: list[EngineMoment], flagged: str) -> None:
    (problem,) = crosscheck.boot_disagreements(times(), moments)
    assert flagged in problem


def test_a_reply_rounded_up_to_an_arp_retry_is_flagged() -> None:
    """The failure the check exists for: T1 a whole ARP retry (1 s) after the instance could answer."""
    late = times(returned_ms=1300, reply_ms=1241)
    (problem,) = crosscheck.boot_disagreements(late, docker(40, 240, 290))
    assert "start at 290.000 ms (from T0) is 930.000 ms before the probe's reply" in problem
    # 20 ms after the start event (one ARP retransmission and scheduling) plus the probe's 1 ms: within
    assert crosscheck.boot_disagreements(times(reply_ms=311), docker(40, 240, 290)) == []
    (problem,) = crosscheck.boot_disagreements(times(reply_ms=312), docker(40, 240, 290))
    assert "1.000 ms before the probe's reply" in problem


def test_docker_event_times_take_the_newest_container_of_a_name_and_map_network_events() -> None:
    def event(kind: str, action: str, actor: str, ms: int, **attributes: str) -> str:
        return json.dumps({"Type": kind, "Action": action, "Actor": {"ID": actor, "Attributes": attributes},
                           "time": (T0 + ms * MS) // 10**9, "timeNano": T0 + ms * MS})
    lines = [
        event("container", "create", "old", -900, name="vnflab-docker-0"),
        event("network", "connect", "net1", -800, container="old", name="vnflab-inst", type="bridge"),
        event("container", "start", "old", -700, name="vnflab-docker-0"),
        event("container", "destroy", "old", -100, name="vnflab-docker-0"),
        event("container", "create", "new", 40, name="vnflab-docker-0"),
        event("network", "connect", "net1", 240, container="new", name="vnflab-inst", type="bridge"),
        event("container", "start", "new", 290, name="vnflab-docker-0"),
        "",
    ]
    events = crosscheck.docker_event_times(lines)
    assert events == {"vnflab-docker-0": {("container", "create"): T0 + 40 * MS,
                                          ("network", "connect"): T0 + 240 * MS,
                                          ("container", "start"): T0 + 290 * MS}}
    with pytest.raises(KeyError, match="no network connect"):
        crosscheck.docker_moments({("container", "create"): T0})


def test_docker_events_argv_asks_for_a_past_interval() -> None:
    argv = crosscheck.docker_events_argv(T0 + 5, T0 + 2 * 10**9)
    assert argv[:6] == ["docker", "events", "--since", "1765000000.000000005", "--until", "1765000002.000000000"]


def test_proc_stat_starttime_is_field_22_even_with_spaces_in_the_name() -> None:
    stat = "4242 (qemu ) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 3 0 987654 1000 200 " + " ".join(
        ["0"] * 30)
    assert crosscheck.parse_proc_stat_starttime(stat) == 987654


def test_a_process_start_time_lies_between_the_moments_around_its_spawn() -> None:
    """The QEMU method on a process this test starts: T0 before Popen, R once it returned."""
    before = time.clock_gettime_ns(time.CLOCK_REALTIME)
    child = subprocess.Popen(["sleep", "5"])
    returned = time.clock_gettime_ns(time.CLOCK_REALTIME)
    try:
        start_ns, tick_ns = crosscheck.process_start_realtime_ns(child.pid)
    finally:
        child.kill()
        child.wait()
    assert tick_ns == 10**9 // os.sysconf("SC_CLK_TCK")
    moments = [EngineMoment("process start", start_ns, tick_ns, "start", "returned")]
    probe = ProbeTimes("sleep", before, returned, returned)
    assert crosscheck.boot_disagreements(probe, moments) == []
    # the same process claimed to start 50 ms later than it did: flagged
    shifted = ProbeTimes("sleep", before + 50 * MS, returned + 50 * MS, returned + 50 * MS)
    assert crosscheck.boot_disagreements(shifted, moments) != []


@pytest.mark.parametrize(("text", "ns", "resolution"), [
    ("1765000000.25", 1_765_000_000_250_000_000, 10 * MS),
    ("1765000000.05\n", 1_765_000_000_050_000_000, 10 * MS),
    ("1765000000", 1_765_000_000_000_000_000, 1000 * MS),
])
def test_libxl_start_time_known_answers(text: str, ns: int, resolution: int) -> None:
    assert crosscheck.parse_xen_start_time(text) == (ns, resolution)


def test_xen_domain_creation_through_a_fake_xl(tmp_path: Path) -> None:
    """xl domid, then xenstore's vm path and its start_time, as libxl leaves them; placed among the probe's moments."""
    created_ns = T0 + 120 * MS
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "xl").write_text('#!/bin/sh\n[ "$1 $2" = "domid vnflab-xen-0" ] && echo 7 && exit 0\n'
                                'echo "xl: no domain $2" >&2; exit 1\n')
    (bin_dir / "xenstore-read").write_text(
        "#!/bin/sh\ncase $1 in\n  /local/domain/7/vm) echo /vm/0b5e-42 ;;\n"
        f"  /vm/0b5e-42/start_time) echo {created_ns // 10**9}.12 ;;\n  *) echo \"no key $1\" >&2; exit 1 ;;\nesac\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=env, **kwargs)  # type: ignore[call-overload,no-any-return]

    start_ns, resolution = crosscheck.xen_domain_start_ns("vnflab-xen-0", run)
    assert (start_ns, resolution) == (created_ns, 10 * MS)
    moments = crosscheck.xen_moments(start_ns, resolution)
    xen_times = ProbeTimes("vnflab-xen-0", T0, T0 + 2000 * MS, T0 + 2500 * MS)
    assert crosscheck.boot_disagreements(xen_times, moments) == []
    # xl create's T0 taken after libxl had built the domain: flagged
    late_t0 = ProbeTimes("vnflab-xen-0", T0 + 200 * MS, T0 + 2000 * MS, T0 + 2500 * MS)
    assert crosscheck.boot_disagreements(late_t0, moments) != []
    with pytest.raises(RuntimeError, match="no domain vnflab-xen-9"):
        crosscheck.xen_domain_start_ns("vnflab-xen-9", run)


def test_cgroup_stat_sums_known_answers() -> None:
    v2 = "anon 1000\nfile 200\nkernel 30\nkernel_stack 16\nsock 4\nshmem 200\n"
    assert crosscheck.cgroup_stat_bytes(v2) == 1234
    v1 = "cache 200\nrss 1000\nrss_huge 0\nshmem 0\ntotal_cache 200\ntotal_rss 1000\n"
    assert crosscheck.cgroup_stat_bytes(v1, kmem_usage_bytes=34) == 1234
    with pytest.raises(ValueError, match="kmem"):
        crosscheck.cgroup_stat_bytes(v1)


def test_cgroup_files_found_by_container_id(tmp_path: Path) -> None:
    container = "ab" * 32
    v1 = tmp_path / "memory" / "docker" / container
    v1.mkdir(parents=True)
    (tmp_path / "memory" / "memory.stat").write_text("cache 0\nrss 0\n")
    (v1 / "memory.usage_in_bytes").write_text("1300\n")
    (v1 / "memory.kmem.usage_in_bytes").write_text("100\n")
    (v1 / "memory.stat").write_text("cache 200\nrss 1000\ntotal_cache 200\ntotal_rss 1000\n")
    (v1 / "cgroup.procs").write_text("11\n12\n")
    assert crosscheck.cgroup_directories(container, str(tmp_path)) == [v1]
    assert crosscheck.cgroup_usage_and_stat_bytes(v1) == (1300, 1300)
    assert crosscheck.cgroup_pids(v1) == [11, 12]


def test_smaps_sum_matches_the_rollup_of_an_idle_process() -> None:
    """The kernel's PSS of one process two ways: per mapping (smaps) and in one line (smaps_rollup)."""
    from ansible.module_utils.vnflab_host.meminfo import process_pss_kib

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        time.sleep(0.5)
        rollup_before = process_pss_kib(child.pid)
        total, mappings = crosscheck.smaps_pss_kib(Path(f"/proc/{child.pid}/smaps").read_text())
        rollup_after = process_pss_kib(child.pid)
    finally:
        child.kill()
        child.wait()
    assert mappings > 10 and total > 0
    assert crosscheck.bracket_problem("pss", total, rollup_before, rollup_after, mappings) is None
    assert crosscheck.bracket_problem("pss", total * 2, rollup_before, rollup_after, mappings) is not None


def test_bracket_problem_names_the_figures() -> None:
    assert crosscheck.bracket_problem("x", 5.0, 4.0, 6.0, 0.0) is None
    assert crosscheck.bracket_problem("x", 6.5, 4.0, 6.0, 0.5) is None
    problem = crosscheck.bracket_problem("x", 7.0, 4.0, 6.0, 0.5)
    assert problem is not None and "recorded 7.000 outside [3.500, 6.500]" in problem
