# Copyright: vnflab contributors
# Apache License 2.0
"""Memory accounting read from /proc and cgroupfs: MemAvailable, PSS per process, cgroup usage."""

from __future__ import annotations

import os

KIB_PER_MB = 1024.0


def parse_meminfo(text: str) -> dict[str, int]:
    """Parse /proc/meminfo text into a mapping of field name to kibibytes."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name.strip()] = int(parts[0])
    return fields


def mem_available_mb(proc_root: str = "/proc") -> float:
    """MemAvailable of the whole machine, in MB (MiB)."""
    with open(os.path.join(proc_root, "meminfo"), encoding="ascii") as handle:
        return parse_meminfo(handle.read())["MemAvailable"] / KIB_PER_MB


def parse_pss_kib(smaps_rollup: str) -> int:
    """Return the Pss value (KiB) of a /proc/PID/smaps_rollup text."""
    for line in smaps_rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise ValueError("no Pss line in smaps_rollup")


def process_pss_kib(pid: int, proc_root: str = "/proc") -> int:
    """PSS of one process in KiB; 0 if the process is gone or has no user memory (kernel thread)."""
    try:
        with open(os.path.join(proc_root, str(pid), "smaps_rollup"), encoding="ascii") as handle:
            text = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return parse_pss_kib(text) if text else 0


def parse_memory_cgroup(proc_cgroup: str) -> tuple[int, str] | None:
    """Find the memory cgroup of a process in /proc/PID/cgroup text.

    Returns (version, path): version 1 for the v1 ``memory`` controller, 2 for the unified hierarchy.
    A v1 memory controller wins over a unified entry (hybrid hosts keep memory on v1).
    """
    unified: tuple[int, str] | None = None
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if "memory" in controllers.split(","):
            return 1, path
        if hierarchy == "0" and controllers == "":
            unified = (2, path)
    return unified


def cgroup_memory_file(version: int, path: str, cgroup_root: str = "/sys/fs/cgroup") -> str:
    """Path of the file holding the current memory usage (bytes) of a cgroup."""
    relative = path.lstrip("/")
    if version == 1:
        return os.path.join(cgroup_root, "memory", relative, "memory.usage_in_bytes")
    unified_root = os.path.join(cgroup_root, "unified")
    base = unified_root if os.path.isdir(unified_root) and not os.path.exists(
        os.path.join(cgroup_root, "cgroup.controllers")) else cgroup_root
    return os.path.join(base, relative, "memory.current")


def cgroup_procs_file(version: int, path: str, cgroup_root: str = "/sys/fs/cgroup") -> str:
    """Path of the cgroup.procs file listing the processes of a cgroup."""
    return os.path.join(os.path.dirname(cgroup_memory_file(version, path, cgroup_root)), "cgroup.procs")


def process_memory_cgroup(pid: int, proc_root: str = "/proc") -> tuple[int, str] | None:
    with open(os.path.join(proc_root, str(pid), "cgroup"), encoding="ascii") as handle:
        return parse_memory_cgroup(handle.read())


def read_int_file(path: str) -> int:
    with open(path, encoding="ascii") as handle:
        return int(handle.read().split()[0])


def read_pids(path: str) -> list[int]:
    with open(path, encoding="ascii") as handle:
        return [int(line) for line in handle.read().split()]
