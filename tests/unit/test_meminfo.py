"""Memory accounting from /proc and cgroupfs (module_utils/vnflab_host/meminfo.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.module_utils.vnflab_host import meminfo

MEMINFO = """\
MemTotal:       16316412 kB
MemFree:         1218744 kB
MemAvailable:    9420528 kB
Buffers:          466412 kB
Cached:          7650412 kB
SwapTotal:             0 kB
HugePages_Total:       0
HugePages_Free:        0
Hugepagesize:       2048 kB
DirectMap1G:     2097152 kB
"""

SMAPS_ROLLUP = """\
559a0c364000-7ffdfb416000 ---p 00000000 00:00 0                          [rollup]
Rss:                1688 kB
Pss:                 246 kB
Pss_Dirty:           112 kB
Pss_Anon:            112 kB
Pss_File:            134 kB
Pss_Shmem:             0 kB
Shared_Clean:       1532 kB
Private_Dirty:       112 kB
Swap:                  0 kB
SwapPss:               0 kB
"""

CGROUP_V1 = """\
12:pids:/docker/4f1c
11:cpu,cpuacct:/docker/4f1c
9:name=systemd:/docker/4f1c
4:memory:/docker/4f1c
1:cpuset:/docker/4f1c
"""

CGROUP_V2 = "0::/system.slice/docker-4f1c.scope\n"

CGROUP_HYBRID = """\
0::/user.slice/session-3.scope
9:name=systemd:/user.slice/session-3.scope
4:memory:/user.slice/user-1000.slice
1:cpu,cpuacct:/user.slice
"""


def test_parse_meminfo() -> None:
    fields = meminfo.parse_meminfo(MEMINFO)
    assert fields["MemTotal"] == 16316412
    assert fields["MemAvailable"] == 9420528
    assert fields["SwapTotal"] == 0
    assert fields["HugePages_Total"] == 0  # no unit
    assert fields["DirectMap1G"] == 2097152
    assert len(fields) == 10


@pytest.mark.parametrize("text", ["", "\n", "garbage line\nMemTotal: unknown kB\n"])
def test_parse_meminfo_ignores_lines_without_a_number(text: str) -> None:
    assert meminfo.parse_meminfo(text) == {}


def test_mem_available_mb_reads_proc_root(tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text(MEMINFO, encoding="ascii")
    assert meminfo.mem_available_mb(str(tmp_path)) == pytest.approx(9420528 / 1024)


def test_mem_available_mb_of_this_machine_is_plausible() -> None:
    available = meminfo.mem_available_mb()
    total = meminfo.parse_meminfo(Path("/proc/meminfo").read_text(encoding="ascii"))["MemTotal"] / 1024
    assert 0 < available <= total


def test_parse_pss_kib_takes_the_pss_line_not_its_breakdown() -> None:
    assert meminfo.parse_pss_kib(SMAPS_ROLLUP) == 246
    # Pss_* lines before Pss: must not be taken for it
    reordered = "Pss_Anon:  7 kB\nPss_File:  9 kB\nPss:  16 kB\n"
    assert meminfo.parse_pss_kib(reordered) == 16


@pytest.mark.parametrize("text", ["", "Rss: 10 kB\nPss_Anon: 3 kB\n"])
def test_parse_pss_kib_without_pss_line(text: str) -> None:
    with pytest.raises(ValueError, match="no Pss line"):
        meminfo.parse_pss_kib(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CGROUP_V1, (1, "/docker/4f1c")),
        (CGROUP_V2, (2, "/system.slice/docker-4f1c.scope")),
        (CGROUP_HYBRID, (1, "/user.slice/user-1000.slice")),  # memory stays on v1 in hybrid mode
        ("0::/\n", (2, "/")),
        ("3:cpuset,memory:/lxc/web\n", (1, "/lxc/web")),
        ("0::/a:b\n", (2, "/a:b")),  # a colon in the path is part of it
        ("9:name=systemd:/x\n1:cpu:/x\n", None),  # v1 without a memory controller, no unified line
        ("", None),
    ],
)
def test_parse_memory_cgroup(text: str, expected: tuple[int, str] | None) -> None:
    assert meminfo.parse_memory_cgroup(text) == expected


def test_process_memory_cgroup_reads_proc_root(tmp_path: Path) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cgroup").write_text(CGROUP_HYBRID, encoding="ascii")
    assert meminfo.process_memory_cgroup(4242, str(tmp_path)) == (1, "/user.slice/user-1000.slice")


def test_cgroup_files_v1(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    root = str(tmp_path)
    assert meminfo.cgroup_memory_file(1, "/docker/4f1c", root) == str(
        tmp_path / "memory" / "docker" / "4f1c" / "memory.usage_in_bytes")
    assert meminfo.cgroup_procs_file(1, "/docker/4f1c", root) == str(
        tmp_path / "memory" / "docker" / "4f1c" / "cgroup.procs")


def test_cgroup_files_v2_unified_hierarchy(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n", encoding="ascii")
    root = str(tmp_path)
    path = "/system.slice/docker-4f1c.scope"
    assert meminfo.cgroup_memory_file(2, path, root) == str(
        tmp_path / "system.slice" / "docker-4f1c.scope" / "memory.current")
    assert meminfo.cgroup_procs_file(2, path, root) == str(
        tmp_path / "system.slice" / "docker-4f1c.scope" / "cgroup.procs")


def test_cgroup_files_v2_with_a_directory_named_unified(tmp_path: Path) -> None:
    # A pure v2 host (cgroup.controllers at the root) with a child cgroup called "unified".
    (tmp_path / "cgroup.controllers").write_text("memory\n", encoding="ascii")
    (tmp_path / "unified").mkdir()
    assert meminfo.cgroup_memory_file(2, "/a", str(tmp_path)) == str(tmp_path / "a" / "memory.current")


def test_cgroup_files_v2_on_a_hybrid_host(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("", encoding="ascii")
    assert meminfo.cgroup_memory_file(2, "/user.slice/x", str(tmp_path)) == str(
        tmp_path / "unified" / "user.slice" / "x" / "memory.current")
    assert meminfo.cgroup_memory_file(2, "/", str(tmp_path)) == str(tmp_path / "unified" / "memory.current")


def test_read_int_file_and_pids(tmp_path: Path) -> None:
    usage = tmp_path / "memory.current"
    usage.write_text("4718592\n", encoding="ascii")
    procs = tmp_path / "cgroup.procs"
    procs.write_text("17\n230\n4242\n", encoding="ascii")
    empty = tmp_path / "empty.procs"
    empty.write_text("", encoding="ascii")
    assert meminfo.read_int_file(str(usage)) == 4718592
    assert meminfo.read_pids(str(procs)) == [17, 230, 4242]
    assert meminfo.read_pids(str(empty)) == []


def test_process_pss_kib_reads_proc_root(tmp_path: Path) -> None:
    (tmp_path / "77").mkdir()
    (tmp_path / "77" / "smaps_rollup").write_text(SMAPS_ROLLUP, encoding="ascii")
    (tmp_path / "78").mkdir()
    (tmp_path / "78" / "smaps_rollup").write_text("", encoding="ascii")  # kernel thread: empty file
    assert meminfo.process_pss_kib(77, str(tmp_path)) == 246
    assert meminfo.process_pss_kib(78, str(tmp_path)) == 0


def test_process_pss_kib_of_a_vanished_pid_is_zero(tmp_path: Path) -> None:
    assert meminfo.process_pss_kib(4242, str(tmp_path)) == 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its /proc entry is gone
    assert not Path(f"/proc/{child.pid}").exists()
    assert meminfo.process_pss_kib(child.pid) == 0


def test_process_pss_kib_of_this_process_matches_the_kernel() -> None:
    pss = meminfo.process_pss_kib(os.getpid())
    text = Path("/proc/self/smaps_rollup").read_text(encoding="ascii")
    match = re.search(r"^Pss:\s+(\d+) kB$", text, re.MULTILINE)
    assert match is not None
    reference = int(match.group(1))
    assert pss > 0
    assert abs(pss - reference) <= 0.5 * reference
