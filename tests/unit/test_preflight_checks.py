"""Pre-flight checks of one host (module_utils/vnflab_host/preflight.py): each problem names the variable behind it."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.vnflab_host import preflight

IP_ADDR = json.dumps([
    {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifname": "eno1", "addr_info": [{"family": "inet", "local": "192.0.2.10", "prefixlen": 24},
                                     {"family": "inet6", "local": "fe80::1", "prefixlen": 64}]},
    {"ifname": "eno2", "addr_info": []},
    {"ifname": "vbr-docker-a", "addr_info": [{"family": "inet", "local": "198.18.11.1", "prefixlen": 24}]},
])


def test_every_interface_is_listed_with_its_ipv4_addresses_only() -> None:
    assert preflight.interface_addresses(IP_ADDR) == {
        "lo": ["127.0.0.1/8"], "eno1": ["192.0.2.10/24"], "eno2": [], "vbr-docker-a": ["198.18.11.1/24"]}


def test_the_management_nic_is_the_one_holding_the_address_ansible_connects_to() -> None:
    addresses = preflight.interface_addresses(IP_ADDR)
    assert preflight.interfaces_holding(["192.0.2.10", "not-an-address"], addresses) == {"eno1"}
    assert preflight.interfaces_holding(["203.0.113.1"], addresses) == set()


def test_route_device() -> None:
    assert preflight.route_device('[{"dst": "192.0.2.1", "dev": "eno1", "prefsrc": "192.0.2.10"}]') == "eno1"
    assert preflight.route_device("[]") is None


def test_nic_problems_name_the_variable() -> None:
    problems = preflight.nic_problems(
        {"vnflab_path_uplinks.a": "eno9", "vnflab_path_uplinks.b": "eno1", "vnflab_direct_iface": "eno2"},
        ["eno1", "eno2", "lo"], {"eno1"})
    assert problems == [
        "vnflab_path_uplinks.a: NIC eno9 does not exist (NICs here: eno1, eno2, lo)",
        "vnflab_path_uplinks.b: NIC eno1 carries the management connection (ansible_host's route); enslaving it to a"
        " lab bridge would cut this SSH session: name a NIC cabled to the lab switch",
    ]


@pytest.mark.parametrize(("cidr", "expected"), [
    ("192.0.2.0/24", ["vnflab_path.a_side_cidr: 192.0.2.0/24 collides with 192.0.2.10/24 on eno1"]),
    ("192.0.2.128/25", ["vnflab_path.a_side_cidr: 192.0.2.128/25 collides with 192.0.2.10/24 on eno1"]),
    ("192.0.0.0/16", ["vnflab_path.a_side_cidr: 192.0.0.0/16 collides with 192.0.2.10/24 on eno1"]),
    ("198.18.11.0/24", []),   # the lab's own bridge
    ("198.18.12.0/24", []),
])
def test_a_lab_network_over_a_host_address_outside_the_lab_collides(cidr: str, expected: list[str]) -> None:
    problems = preflight.network_problems({"vnflab_path.a_side_cidr": cidr}, preflight.interface_addresses(IP_ADDR),
                                          ["vbr-*"])
    assert [problem.split(", which")[0] for problem in problems] == expected


@pytest.mark.parametrize(("efivar", "efi", "state"), [
    (bytes([6, 0, 0, 0, 1]), True, "enabled"),
    (bytes([6, 0, 0, 0, 0]), True, "disabled"),
    (None, True, "unknown"),
    (None, False, "legacy-bios"),
])
def test_secure_boot_state(efivar: bytes | None, efi: bool, state: str) -> None:
    assert preflight.secure_boot_state(efivar, efi) == state


def test_memory_sources() -> None:
    assert preflight.meminfo_mb("MemTotal: 2097152 kB\nMemAvailable: 1048576 kB\n", "MemAvailable") == 1024
    assert preflight.meminfo_mb("MemTotal: 2097152 kB\n", "MemAvailable") is None
    assert preflight.xl_free_memory_mb("total_memory           : 32661\nfree_memory            : 28190\n") == 28190


def test_capacity_problems() -> None:
    assert preflight.capacity_problems(2048, 4096, "MemAvailable", "counts", 100, 200, "/var", "disk") == []
    problems = preflight.capacity_problems(8192, 4096, "MemAvailable", "counts", 300, 200, "/var", "disk")
    assert problems == [
        "counts: the sweep needs 8192 MB but MemAvailable is 4096 MB: lower the counts or set vnflab_max_instances"
        " for this server",
        "disk: 300 MB free needed under /var, 200 MB free there",
    ]
    assert preflight.capacity_problems(8192, None, "MemAvailable", "counts", 0, None, "/var", "disk") == []
