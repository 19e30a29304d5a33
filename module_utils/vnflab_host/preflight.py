# Copyright: vnflab contributors
# Apache License 2.0
"""Pre-flight checks of one lab host, as pure functions (no Ansible): which NIC carries the management
traffic, whether the NICs the inventory names exist and stay off it, whether a lab network collides with
an address the host already has, whether Secure Boot is on, and whether memory and disk suffice.

Every problem is one sentence naming the inventory variable that caused it; the play prefixes the host.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import os
from collections.abc import Callable, Mapping, Sequence

Runner = Callable[[list[str]], tuple[int, str, str]]

# EFI global variable GUID; SecureBoot-<guid> holds 4 attribute bytes, then 1 byte: 1 = enforcing.
SECURE_BOOT_EFIVAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098e032c5"


def interface_addresses(ip_addr_json: str) -> dict[str, list[str]]:
    """`ip -j addr show` -> {interface: ["198.18.0.1/24", ...]} (every interface, even without addresses)."""
    result: dict[str, list[str]] = {}
    for entry in json.loads(ip_addr_json or "[]"):
        name = entry.get("ifname")
        if not name:
            continue
        result[name] = [
            f"{info['local']}/{info['prefixlen']}"
            for info in entry.get("addr_info", [])
            if info.get("family", "inet") == "inet" and "local" in info
        ]
    return result


def route_device(ip_route_get_json: str) -> str | None:
    """`ip -j route get ADDR` -> the device the route leaves by (None when there is none)."""
    entries = json.loads(ip_route_get_json or "[]")
    return entries[0].get("dev") if entries else None


def interfaces_holding(addresses: Sequence[str], iface_addresses: Mapping[str, Sequence[str]]) -> set[str]:
    """Interfaces that carry one of these IPv4 addresses."""
    wanted = set()
    for address in addresses:
        try:
            wanted.add(ipaddress.IPv4Address(address))
        except ValueError:
            continue
    return {
        name
        for name, cidrs in iface_addresses.items()
        if any(ipaddress.IPv4Interface(cidr).ip in wanted for cidr in cidrs)
    }


def nic_problems(nics: Mapping[str, str], present: Sequence[str], management: set[str]) -> list[str]:
    """The NICs the inventory names (variable -> name) must exist and must not carry the management traffic."""
    problems = []
    for variable, nic in sorted(nics.items()):
        if nic not in present:
            problems.append(f"{variable}: NIC {nic} does not exist (NICs here: {', '.join(sorted(present))})")
        elif nic in management:
            problems.append(
                f"{variable}: NIC {nic} carries the management connection (ansible_host's route); enslaving it"
                " to a lab bridge would cut this SSH session: name a NIC cabled to the lab switch"
            )
    return problems


def is_lab_interface(name: str, lab_interfaces: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in lab_interfaces)


def network_problems(
    networks: Mapping[str, str], iface_addresses: Mapping[str, Sequence[str]], lab_interfaces: Sequence[str]
) -> list[str]:
    """Lab networks (variable -> CIDR) must not hold an address this host has on a NIC the lab does not own."""
    problems = []
    for variable, cidr in sorted(networks.items()):
        network = ipaddress.IPv4Network(cidr, strict=False)
        for name, cidrs in sorted(iface_addresses.items()):
            if is_lab_interface(name, lab_interfaces):
                continue
            for held in cidrs:
                interface = ipaddress.IPv4Interface(held)
                if interface.network.overlaps(network):
                    problems.append(
                        f"{variable}: {cidr} collides with {held} on {name}, which the lab does not own: pick a free"
                        " network inside 198.18.0.0/15"
                    )
    return problems


def secure_boot_state(efivar: bytes | None, efi_present: bool) -> str:
    """enabled, disabled, legacy-bios (no EFI) or unknown, from the SecureBoot EFI variable's bytes."""
    if not efi_present:
        return "legacy-bios"
    if efivar is None or len(efivar) < 5:
        return "unknown"
    return "enabled" if efivar[4] == 1 else "disabled"


def meminfo_mb(meminfo: str, key: str) -> int | None:
    for line in meminfo.splitlines():
        name, _, rest = line.partition(":")
        if name == key:
            return int(rest.split()[0]) // 1024
    return None


def xl_free_memory_mb(xl_info: str) -> int | None:
    for line in xl_info.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "free_memory":
            return int(value.strip())
    return None


def nearest_existing_dir(path: str) -> str:
    """``path`` or its nearest ancestor that is a directory: the file system a directory not yet made will be on."""
    current = os.path.abspath(path)
    while not os.path.isdir(current) and os.path.dirname(current) != current:
        current = os.path.dirname(current)
    return current


def capacity_problems(
    memory_need_mb: int,
    memory_have_mb: int | None,
    memory_source: str,
    memory_variable: str,
    disk_need_mb: int,
    disk_free_mb: int | None,
    disk_path: str,
    disk_variable: str,
) -> list[str]:
    problems = []
    if memory_need_mb > 0 and memory_have_mb is not None and memory_need_mb > memory_have_mb:
        problems.append(
            f"{memory_variable}: the sweep needs {memory_need_mb} MB but {memory_source} is {memory_have_mb} MB:"
            " lower the counts or set vnflab_max_instances for this server"
        )
    if disk_need_mb > 0 and disk_free_mb is not None and disk_need_mb > disk_free_mb:
        problems.append(
            f"{disk_variable}: {disk_need_mb} MB free needed under {disk_path}, {disk_free_mb} MB free there"
        )
    return problems
