#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: read-only pre-flight checks of one lab host (playbooks/preflight.yml)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnflab_preflight
short_description: Check that a lab host can take the lab before anything changes on it
description:
  - Finds the management NIC(s) of the host, those holding the address Ansible connects to (O(management_host),
    resolved on the host) and the one the route to the SSH client (O(ssh_client)) leaves by.
  - Checks that every NIC of O(nics) exists and is not a management NIC, that no lab network of O(networks)
    overlaps an address the host has on a NIC outside O(lab_interfaces) and O(nics), that the memory and disk the
    sweep needs are there and, for a Xen server (O(xen)), that Secure Boot is off.
  - Changes nothing. Every problem names the inventory variable behind it; the module fails only on its own errors,
    the play decides what to do with RV(problems).
version_added: "0.2.0"
author: vnflab contributors
options:
  management_host:
    description: The address or name Ansible connects to (C(ansible_host)); resolved on the host.
    type: str
    default: ""
  ssh_client:
    description: The SSH client's address as the host sees it (first field of C(SSH_CONNECTION)); empty for none.
    type: str
    default: ""
  nics:
    description: NICs the lab will use, as inventory variable (label) -> interface name.
    type: dict
    default: {}
  networks:
    description: Lab networks, as inventory variable (label) -> CIDR.
    type: dict
    default: {}
  lab_interfaces:
    description: Glob patterns of interfaces the lab owns (their addresses in lab networks are the lab's own).
    type: list
    elements: str
    default: ["vbr-*"]
  memory_need_mb:
    description: Memory the largest sweep point needs (0 skips the check).
    type: int
    default: 0
  memory_variable:
    description: What to name in the memory problem.
    type: str
    default: vnflab_boot_counts/vnflab_memory_counts
  xen:
    description:
      - A Xen server. Secure Boot must be off. Memory is Xen's C(free_memory) when C(xl info) answers, otherwise
        MemTotal less O(xen_dom0_memory_mb) (the server is not running Xen yet).
    type: bool
    default: false
  xen_dom0_memory_mb:
    description: dom0's memory once the server runs Xen.
    type: int
    default: 0
  disk_path:
    description: Where the lab's caches and images go.
    type: path
    default: /var
  disk_need_mb:
    description:
      - Free space needed under O(disk_path) (0 skips the check). A O(disk_path) that does not exist yet is judged
        by its nearest existing parent directory.
    type: int
    default: 0
  disk_variable:
    description: What to name in the disk problem.
    type: str
    default: vnflab_preflight_disk_mb
extends_documentation_fragment:
  - vnflab_attributes
  - vnflab_attributes.check_mode_full
"""

EXAMPLES = r"""
- name: Check the VNF server
  vnflab_preflight:
    management_host: "{{ ansible_host | default(inventory_hostname) }}"
    nics:
      vnflab_path_uplinks.a: eno2
      vnflab_path_uplinks.b: eno3
    networks:
      vnflab_path.a_side_cidr: 198.18.11.0/24
    memory_need_mb: 2048
  register: preflight

- name: Stop on any problem
  ansible.builtin.fail:
    msg: "{{ inventory_hostname }}: {{ preflight.problems | join('; ') }}"
  when: preflight.problems | length > 0
"""

RETURN = r"""
problems:
  description: One sentence per problem, each naming the inventory variable behind it.
  returned: always
  type: list
  elements: str
  sample: ["vnflab_path_uplinks.a: NIC eno9 does not exist (NICs here: eno1, eno2, lo)"]
interfaces:
  description: IPv4 addresses per interface.
  returned: always
  type: dict
  sample: {eno1: ["192.0.2.10/24"], lo: ["127.0.0.1/8"]}
management_interfaces:
  description: The NICs that carry the management connection.
  returned: always
  type: list
  elements: str
  sample: [eno1]
memory_mb:
  description: The memory the check compared with (see RV(memory_source)); null when unknown.
  returned: always
  type: int
  sample: 15872
memory_source:
  description: Where RV(memory_mb) comes from.
  returned: always
  type: str
  sample: MemAvailable
disk_free_mb:
  description: Free space under O(disk_path); null when the path is missing.
  returned: always
  type: int
  sample: 40960
secure_boot:
  description: enabled, disabled, legacy-bios or unknown.
  returned: always
  type: str
  sample: disabled
"""

import os
import socket

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vnflab_host.preflight import (
    SECURE_BOOT_EFIVAR,
    capacity_problems,
    interface_addresses,
    interfaces_holding,
    meminfo_mb,
    nearest_existing_dir,
    network_problems,
    nic_problems,
    route_device,
    secure_boot_state,
    xl_free_memory_mb,
)


def resolve_ipv4(name: str) -> list[str]:
    if not name:
        return []
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)})
    except OSError:
        return []


def read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            management_host=dict(type="str", default=""),
            ssh_client=dict(type="str", default=""),
            nics=dict(type="dict", default={}),
            networks=dict(type="dict", default={}),
            lab_interfaces=dict(type="list", elements="str", default=["vbr-*"]),
            memory_need_mb=dict(type="int", default=0),
            memory_variable=dict(type="str", default="vnflab_boot_counts/vnflab_memory_counts"),
            xen=dict(type="bool", default=False),
            xen_dom0_memory_mb=dict(type="int", default=0),
            disk_path=dict(type="path", default="/var"),
            disk_need_mb=dict(type="int", default=0),
            disk_variable=dict(type="str", default="vnflab_preflight_disk_mb"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    ip = module.get_bin_path("ip", required=True)
    rc, out, err = module.run_command([ip, "-j", "addr", "show"])
    if rc != 0:
        module.fail_json(msg=f"ip -j addr show: {err.strip()}")
    iface_addresses = interface_addresses(out)

    management = interfaces_holding(resolve_ipv4(params["management_host"]), iface_addresses)
    if params["ssh_client"]:
        rc, out, _err = module.run_command([ip, "-j", "route", "get", params["ssh_client"]])
        device = route_device(out) if rc == 0 else None
        if device:
            management.add(device)

    nics = {str(k): str(v) for k, v in params["nics"].items()}
    networks = {str(k): str(v) for k, v in params["networks"].items()}
    problems = nic_problems(nics, sorted(iface_addresses), management)
    problems += network_problems(networks, iface_addresses, list(params["lab_interfaces"]) + sorted(nics.values()))

    meminfo = (read_bytes("/proc/meminfo") or b"").decode()
    secure_boot = secure_boot_state(read_bytes(SECURE_BOOT_EFIVAR), os.path.isdir("/sys/firmware/efi"))
    if params["xen"]:
        xl = module.get_bin_path("xl")
        rc, out, _err = module.run_command([xl, "info"]) if xl else (1, "", "")
        memory = xl_free_memory_mb(out) if rc == 0 else None
        if memory is not None:
            source = "Xen's free_memory (xl info)"
        else:
            total = meminfo_mb(meminfo, "MemTotal")
            memory = None if total is None else total - params["xen_dom0_memory_mb"]
            source = "MemTotal less platform_xen_dom0_memory_mb (Xen not running yet)"
        if secure_boot == "enabled":
            problems.append(
                "platform_xen: Secure Boot is on, and GRUB will not load the Xen hypervisor under it (Debian's Xen is"
                " not signed for Secure Boot): turn Secure Boot off in the server's firmware setup, then run again"
            )
    else:
        memory = meminfo_mb(meminfo, "MemAvailable")
        source = "MemAvailable"

    disk_free = None
    disk_at = nearest_existing_dir(params["disk_path"])  # a results directory not made yet: its file system
    if os.path.isdir(disk_at):
        stat = os.statvfs(disk_at)
        disk_free = stat.f_bavail * stat.f_frsize // (1024 * 1024)
    problems += capacity_problems(
        params["memory_need_mb"],
        memory,
        source,
        params["memory_variable"],
        params["disk_need_mb"],
        disk_free,
        params["disk_path"],
        params["disk_variable"],
    )
    module.exit_json(
        changed=False,
        problems=problems,
        interfaces=iface_addresses,
        management_interfaces=sorted(management),
        memory_mb=memory,
        memory_source=source,
        disk_free_mb=disk_free,
        secure_boot=secure_boot,
    )


if __name__ == "__main__":
    main()
