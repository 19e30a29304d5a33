# Copyright: vnflab contributors
# Apache License 2.0
"""Facts about a lab host for the run manifest: kernel, CPU, memory, KSM/THP state, tool versions."""

from __future__ import annotations

import os
import platform
import re
from typing import Callable, Mapping

# Tool name -> argv printing its version. Missing tools are reported as null, never guessed.
VERSION_COMMANDS: Mapping[str, list[str]] = {
    "docker_client": ["docker", "version", "--format", "{{.Client.Version}}"],
    "docker_server": ["docker", "version", "--format", "{{.Server.Version}}"],
    "containerd": ["containerd", "--version"],
    "runc": ["runc", "--version"],
    "iptables": ["iptables", "--version"],
    "qemu": ["qemu-system-x86_64", "--version"],
    "xl": ["xl", "info", "xen_version"],
    "ip": ["ip", "-V"],
}

Runner = Callable[[list[str]], "tuple[int, str, str]"]


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def cpu_model(cpuinfo: str) -> str | None:
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return match.group(1).strip() if match else None


def selected_mode(sysfs_text: str | None) -> str | None:
    """The bracketed choice of a sysfs mode file, e.g. 'always [madvise] never' -> 'madvise'."""
    if not sysfs_text:
        return None
    match = re.search(r"\[([^\]]+)\]", sysfs_text)
    return match.group(1) if match else sysfs_text


def first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def tool_versions(run: Runner) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name, argv in VERSION_COMMANDS.items():
        try:
            rc, out, _err = run(argv)
        except OSError:
            rc, out = 127, ""
        versions[name] = first_line(out) if rc == 0 and out.strip() else None
    return versions


def os_release() -> dict[str, str]:
    text = read_text("/etc/os-release") or ""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key: value.strip('"') for key, value in pairs}


def host_facts(run: Runner) -> dict:
    cpuinfo = read_text("/proc/cpuinfo") or ""
    meminfo = read_text("/proc/meminfo") or ""
    total = re.search(r"^MemTotal:\s+(\d+)", meminfo, re.MULTILINE)
    release = os_release()
    return {
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "machine": platform.machine(),
        "os": release.get("PRETTY_NAME"),
        "cpu_model": cpu_model(cpuinfo),
        "cpu_count": os.cpu_count(),
        "mem_total_mb": int(total.group(1)) / 1024.0 if total else None,
        "ksm_run": read_text("/sys/kernel/mm/ksm/run"),
        "thp_enabled": selected_mode(read_text("/sys/kernel/mm/transparent_hugepage/enabled")),
        "thp_defrag": selected_mode(read_text("/sys/kernel/mm/transparent_hugepage/defrag")),
        "kvm_device": os.path.exists("/dev/kvm"),
        "python": platform.python_version(),
        "tools": tool_versions(run),
    }
