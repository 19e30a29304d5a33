"""Jinja filters of the lab (filter_plugins/vnflab_lab.py): address plans and the servers a run measures."""

from __future__ import annotations

import importlib.util
import ipaddress
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

FILTER_FILE = Path(__file__).resolve().parents[2] / "filter_plugins" / "vnflab_lab.py"


def load_filters() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vnflab_filter_plugin", FILTER_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


flt = load_filters()


def test_filter_module_exports_every_filter() -> None:
    filters = flt.FilterModule().filters()
    assert set(filters) == {
        "vnflab_host_address", "vnflab_path_addresses", "vnflab_measured_servers",
        "vnflab_in_lab_range", "vnflab_network_vars", "vnflab_ifname", "vnflab_mac", "vnflab_netmask",
        "vnflab_keyvalue", "vnflab_network_of", "vnflab_emulated_servers", "vnflab_failed_points",
        "vnflab_lab_networks", "vnflab_network_problems", "vnflab_list_problems", "vnflab_chain_hops",
        "vnflab_chain_ends", "vnflab_limit", "vnflab_metric_batch", "vnflab_batched_metrics",
    }
    assert all(callable(function) for function in filters.values())


@pytest.mark.parametrize(
    ("cidr", "index", "with_prefix", "expected"),
    [
        ("198.18.11.0/24", 1, False, "198.18.11.1"),
        ("198.18.11.0/24", 2, False, "198.18.11.2"),
        ("198.18.11.0/24", 2, True, "198.18.11.2/24"),
        ("198.18.11.0/24", 254, False, "198.18.11.254"),
        ("198.19.8.0/22", 300, True, "198.19.9.44/22"),
        ("198.18.0.0/15", 65536, False, "198.19.0.0"),
        ("198.18.250.0/30", 2, True, "198.18.250.2/30"),
        ("198.18.11.0/24", "2", False, "198.18.11.2"),  # Jinja may hand the index over as a string
    ],
)
def test_host_address(cidr: str, index: int | str, with_prefix: bool, expected: str) -> None:
    assert flt.vnflab_host_address(cidr, index, with_prefix) == expected


@pytest.mark.parametrize(
    ("cidr", "index"),
    [
        ("198.18.11.0/24", 0),  # network address
        ("198.18.11.0/24", 255),  # broadcast
        ("198.18.11.0/24", 256),  # beyond the network
        ("198.18.11.0/24", -1),
        ("198.18.250.0/30", 3),
    ],
)
def test_host_address_rejects_indexes_that_are_no_host(cidr: str, index: int) -> None:
    with pytest.raises(AnsibleFilterError, match=f"index {index} is not a host address of {cidr}"):
        flt.vnflab_host_address(cidr, index)


@pytest.mark.parametrize(
    "cidr",
    [
        "10.0.0.0/8",
        "10.1.2.0/24",
        "192.168.0.0/16",
        "192.168.1.0/24",
        "172.16.0.0/12",
        "172.20.0.0/16",
        "198.20.0.0/24",
        "198.17.255.0/24",
        "198.16.0.0/14",  # contains the lab range, is not inside it
    ],
)
def test_networks_outside_the_benchmarking_range_are_rejected(cidr: str) -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        flt.vnflab_host_address(cidr, 1)
    message = str(caught.value)
    assert cidr in message
    assert "outside the benchmarking range 198.18.0.0/15" in message


@pytest.mark.parametrize("cidr", ["198.18.11.1/24", "not-a-network", "2001:db8::/64", "198.18.11.0/33"])
def test_malformed_or_non_ipv4_networks_are_rejected_naming_the_value(cidr: str) -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        flt.vnflab_host_address(cidr, 1)
    assert cidr in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("198.18.0.0/15", True),
        ("198.19.255.255", True),
        ("198.18.11.7/24", True),  # host bits allowed here
        ("198.20.0.1", False),
        ("10.0.0.0/8", False),
        ("2001:db8::1", False),
        ("nonsense", False),
    ],
)
def test_in_lab_range(value: str, expected: bool) -> None:
    assert flt.vnflab_in_lab_range(value) is expected


def test_path_addresses_follow_the_plan() -> None:
    plan = flt.vnflab_path_addresses({"a_side_cidr": "198.18.11.0/24", "b_side_cidr": "198.19.12.0/24"})
    assert plan == {
        "host_a": "198.18.11.2", "host_a_cidr": "198.18.11.2/24",
        "proxy_a": "198.18.11.1", "proxy_a_cidr": "198.18.11.1/24",
        "host_b": "198.19.12.2", "host_b_cidr": "198.19.12.2/24",
        "proxy_b": "198.19.12.1", "proxy_b_cidr": "198.19.12.1/24",
        "a_side_cidr": "198.18.11.0/24", "b_side_cidr": "198.19.12.0/24",
    }


@pytest.mark.parametrize(("a_side", "b_side"), [("198.18.11.0/24", "198.18.12.0/24"),
                                                 ("198.18.20.0/30", "198.19.0.64/26")])
def test_path_addresses_are_consistent(a_side: str, b_side: str) -> None:
    plan = flt.vnflab_path_addresses({"a_side_cidr": a_side, "b_side_cidr": b_side})
    for side, cidr in (("a", a_side), ("b", b_side)):
        net = ipaddress.ip_network(cidr)
        host = ipaddress.ip_address(plan[f"host_{side}"])
        proxy = ipaddress.ip_address(plan[f"proxy_{side}"])
        assert host in net and proxy in net and host != proxy
        assert plan[f"host_{side}_cidr"] == f"{host}/{net.prefixlen}"
        assert plan[f"proxy_{side}_cidr"] == f"{proxy}/{net.prefixlen}"
        assert ipaddress.ip_interface(plan[f"proxy_{side}_cidr"]).network == net


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ({"a_side_cidr": "10.0.0.0/24", "b_side_cidr": "198.18.12.0/24"}, "10.0.0.0/24"),
        ({"a_side_cidr": "198.18.11.0/24", "b_side_cidr": "192.168.1.0/24"}, "192.168.1.0/24"),
        ({"a_side_cidr": "198.18.11.0/24", "b_side_cidr": "198.20.0.0/24"}, "198.20.0.0/24"),
    ],
)
def test_path_addresses_reject_out_of_range_sides(path: dict[str, str], bad: str) -> None:
    with pytest.raises(AnsibleFilterError, match=bad.replace(".", r"\.")):
        flt.vnflab_path_addresses(path)


@pytest.mark.parametrize("path", [{"a_side_cidr": "198.18.11.0/24"}, {}, None, "198.18.11.0/24"])
def test_path_addresses_need_both_sides(path: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="a_side_cidr and b_side_cidr"):
        flt.vnflab_path_addresses(path)


HOSTVARS: dict[str, dict[str, Any]] = {
    "vnf-docker": {"vnflab_platform": "docker"},
    "vnf-kvm": {"vnflab_platform": "kvm"},
    "vnf-xen": {"vnflab_platform": "xen"},
}


@pytest.mark.parametrize(
    ("platforms", "expected"),
    [
        (["docker"], ["vnf-docker"]),
        (["xen", "docker"], ["vnf-xen", "vnf-docker"]),
        (["kvm", "xen", "docker"], ["vnf-kvm", "vnf-xen", "vnf-docker"]),
        ([], []),
    ],
)
def test_measured_servers_follow_platform_order(platforms: list[str], expected: list[str]) -> None:
    assert flt.vnflab_measured_servers(list(HOSTVARS), HOSTVARS, platforms) == expected


def test_measured_servers_missing_platform_is_named() -> None:
    with pytest.raises(AnsibleFilterError, match="native"):
        flt.vnflab_measured_servers(list(HOSTVARS), HOSTVARS, ["docker", "native"])


def test_measured_servers_duplicate_platform_is_named() -> None:
    hostvars = {**HOSTVARS, "vnf-docker-2": {"vnflab_platform": "docker"}}
    with pytest.raises(AnsibleFilterError) as caught:
        flt.vnflab_measured_servers(list(hostvars), hostvars, ["docker"])
    message = str(caught.value)
    assert "'docker'" in message
    assert "vnf-docker" in message and "vnf-docker-2" in message


def test_measured_servers_only_look_at_listed_servers() -> None:
    hostvars = {**HOSTVARS, "vnf-docker-2": {"vnflab_platform": "docker"}}
    assert flt.vnflab_measured_servers(["vnf-docker-2", "vnf-kvm"], hostvars, ["docker"]) == ["vnf-docker-2"]


def test_network_vars_list_every_declared_network() -> None:
    hostvars = {
        "vnf-docker": {"vnflab_path": {"a_side_cidr": "198.18.11.0/24", "b_side_cidr": "198.18.12.0/24"},
                       "vnflab_instance_cidr": "198.19.8.0/22"},
        "vnf-kvm": {"vnflab_path": {"a_side_cidr": "198.18.21.0/24"}},
        "vnf-bare": {},
    }
    rows = flt.vnflab_network_vars(["vnf-docker", "vnf-kvm", "vnf-bare"], hostvars)
    assert rows == [
        {"host": "vnf-docker", "variable": "vnflab_path.a_side_cidr", "value": "198.18.11.0/24"},
        {"host": "vnf-docker", "variable": "vnflab_path.b_side_cidr", "value": "198.18.12.0/24"},
        {"host": "vnf-docker", "variable": "vnflab_instance_cidr", "value": "198.19.8.0/22"},
        {"host": "vnf-kvm", "variable": "vnflab_path.a_side_cidr", "value": "198.18.21.0/24"},
        {"host": "vnf-kvm", "variable": "vnflab_path.b_side_cidr", "value": None},
        {"host": "vnf-kvm", "variable": "vnflab_instance_cidr", "value": None},
        {"host": "vnf-bare", "variable": "vnflab_path.a_side_cidr", "value": None},
        {"host": "vnf-bare", "variable": "vnflab_path.b_side_cidr", "value": None},
        {"host": "vnf-bare", "variable": "vnflab_instance_cidr", "value": None},
    ]


@pytest.mark.parametrize(
    ("pattern", "platform", "expected"),
    [
        ("vlb-{platform}-a", "docker", "vlb-docker-a"),
        ("vla-{platform}", "kvm", "vla-kvm"),
        ("{platform}", "x" * 15, "x" * 15),
        ("eth0", "docker", "eth0"),
    ],
)
def test_ifname(pattern: str, platform: str, expected: str) -> None:
    assert flt.vnflab_ifname(pattern, platform) == expected


@pytest.mark.parametrize(
    ("pattern", "platform", "name"),
    [
        ("vlb-{platform}-a", "firecracker", "vlb-firecracker-a"),  # 17 characters
        ("{platform}", "x" * 16, "x" * 16),
        ("{platform}", "", ""),
    ],
)
def test_ifname_length_limit(pattern: str, platform: str, name: str) -> None:
    with pytest.raises(AnsibleFilterError, match="1 to 15 characters") as caught:
        flt.vnflab_ifname(pattern, platform)
    assert repr(name) in str(caught.value)


def test_mac_matches_the_driver_rule() -> None:
    from ansible.module_utils.vnflab_host.driver import instance_mac

    for address in ("198.19.16.2", "198.18.21.1", "198.19.23.254"):
        assert flt.vnflab_mac(address) == instance_mac(address)
    assert flt.vnflab_mac("198.18.21.1/24") == "02:00:c6:12:15:01"


def test_netmask_and_keyvalue() -> None:
    assert flt.vnflab_netmask("198.19.16.0/21") == "255.255.248.0"
    with pytest.raises(AnsibleFilterError):
        flt.vnflab_netmask("10.0.0.0/8")
    assert flt.vnflab_keyvalue("a=1\nkernel_file=vmlinux\n\nnoise\nx=y=z\n") == {
        "a": "1", "kernel_file": "vmlinux", "x": "y=z"}


def test_network_of_an_interface_address() -> None:
    assert flt.vnflab_network_of("198.18.200.10/24") == "198.18.200.0/24"
    with pytest.raises(AnsibleFilterError, match="outside the benchmarking range"):
        flt.vnflab_network_of("10.0.0.5/24")
    with pytest.raises(AnsibleFilterError, match="prefix length"):
        flt.vnflab_network_of("198.18.200.10/33")


def test_emulated_servers_keep_inventory_order() -> None:
    hostvars = {"coreos": {"vnflab_platform": "docker"},
                "clickos": {"vnflab_platform": "xen", "vnflab_emulated_server": {"name": "vnflab-xen"}},
                "other": {"vnflab_emulated_server": {"name": "x"}}}
    assert flt.vnflab_emulated_servers(["other", "coreos", "clickos"], hostvars) == ["other", "clickos"]
    assert flt.vnflab_emulated_servers([], hostvars) == []


def test_failed_points_name_platform_metric_and_count() -> None:
    hostvars = {"coreos": {"vnflab_platform": "docker", "vnflab_boot_failures": []},
                "clickos": {"vnflab_platform": "xen", "vnflab_boot_failures": [2], "vnflab_memory_failures": [1, 2]},
                "osv": {"vnflab_platform": "kvm"}}
    assert flt.vnflab_failed_points(["coreos", "clickos", "osv"], hostvars) == [
        "xen boot N=2", "xen memory N=1", "xen memory N=2"]
    assert flt.vnflab_failed_points(["coreos", "osv"], hostvars) == []


def network_row(host: str, variable: str, value: str, address: bool = False) -> dict[str, Any]:
    return {"host": host, "variable": variable, "value": value, "address": address}


def test_network_problems_names_every_overlapping_pair_and_host_bits() -> None:
    rows = [network_row("localhost", "vnflab_direct_cidr", "198.18.0.0/24"),
            network_row("a", "vnflab_path.a_side_cidr", "198.18.0.0/25"),
            network_row("a", "vnflab_instance_cidr", "198.19.8.1/21"),
            network_row("a", "platform_docker_bip", "198.19.252.1/24", address=True),
            network_row("b", "vnflab_instance_cidr", "198.19.252.0/24")]
    assert flt.vnflab_network_problems(rows) == [
        "a: vnflab_instance_cidr = 198.19.8.1/21 has host bits set (the network is 198.19.8.0/21); "
        "write the network address",
        "localhost: vnflab_direct_cidr = 198.18.0.0/24 overlaps a: vnflab_path.a_side_cidr = 198.18.0.0/25: "
        "the lab's routes would send one's traffic through the other",
        "a: platform_docker_bip = 198.19.252.1/24 is the same network as b: vnflab_instance_cidr = 198.19.252.0/24",
    ]


def test_network_problems_accepts_disjoint_networks_and_refuses_non_networks() -> None:
    ok = [network_row("localhost", "vnflab_direct_cidr", "198.18.0.0/24"),
          network_row("a", "vnflab_path.a_side_cidr", "198.18.1.0/24"),
          network_row("a", "platform_docker_bip", "198.18.2.1/24", address=True)]
    assert flt.vnflab_network_problems(ok) == []
    bad = [network_row("a", "vnflab_instance_cidr", "none"), network_row("a", "x", "2001:db8::/64")]
    assert flt.vnflab_network_problems(bad) == ["a: vnflab_instance_cidr = none is not an IPv4 network in CIDR form",
                                                "a: x = 2001:db8::/64 is not an IPv4 network"]


@pytest.mark.parametrize(("value", "problem"), [
    ([], "sizes is empty"),
    ("64", "sizes must be a list"),
    ({"a": 1}, "sizes must be a list"),
    ([64, 64, 128, 128, 1], "sizes: [64, 128] appear more than once"),
    ([0], "sizes: every value must be between 1 and 100, got 0"),
    ([101], "sizes: every value must be between 1 and 100, got 101"),
    ([True], "sizes: True is not a whole number"),
    ([1.5], "sizes: 1.5 is not a whole number"),
])
def test_list_problems(value: object, problem: str) -> None:
    assert problem in " ".join(flt.vnflab_list_problems(value, "sizes", 1, 100))


def test_list_problems_accepts_a_good_list() -> None:
    assert flt.vnflab_list_problems([1, "2", 100], "sizes", 1, 100) == []


def test_lab_networks_lists_the_docker_engines_and_the_management_networks() -> None:
    hostvars = {
        "coreos": {"vnflab_platform": "docker", "vnflab_path": {"a_side_cidr": "198.18.11.0/24",
                                                                 "b_side_cidr": "198.18.12.0/24"},
                   "vnflab_instance_cidr": "198.19.8.0/21",
                   "platform_docker_address_pools": [{"base": "198.19.240.0/22", "size": 24}]},
        "clickos": {"vnflab_platform": "xen", "vnflab_path": {}, "vnflab_instance_cidr": "198.19.24.0/21",
                    "vnflab_emulated_server": {"address": "198.18.200.10/24"}},
    }
    defaults = {"platform_docker_bip": "198.19.252.1/24",
                "platform_docker_address_pools": [{"base": "198.19.248.0/22", "size": 24}]}
    rows = flt.vnflab_lab_networks(["coreos", "clickos"], hostvars, "198.18.0.0/24", defaults)
    assert [(row["host"], row["variable"], row["value"]) for row in rows] == [
        ("localhost", "vnflab_direct_cidr", "198.18.0.0/24"),
        ("coreos", "vnflab_path.a_side_cidr", "198.18.11.0/24"),
        ("coreos", "vnflab_path.b_side_cidr", "198.18.12.0/24"),
        ("coreos", "vnflab_instance_cidr", "198.19.8.0/21"),
        ("clickos", "vnflab_path.a_side_cidr", None),
        ("clickos", "vnflab_path.b_side_cidr", None),
        ("clickos", "vnflab_instance_cidr", "198.19.24.0/21"),
        ("coreos", "platform_docker_bip", "198.19.252.1/24"),
        ("coreos", "platform_docker_address_pools[0].base", "198.19.240.0/22"),
        ("clickos", "vnflab_emulated_server.address (management network)", "198.18.200.10/24"),
    ]


PATH = {"a_side_cidr": "198.18.11.0/24", "b_side_cidr": "198.18.12.0/24"}


def test_chain_hops_link_each_hop_to_the_next_and_the_ends_to_the_path() -> None:
    hops = flt.vnflab_chain_hops(PATH, "198.18.13.0/24", 3, "docker")
    assert [h["name"] for h in hops] == ["vnflab-docker-c3-1", "vnflab-docker-c3-2", "vnflab-docker-c3-3"]
    assert [(h["bridge_a"], h["bridge_b"]) for h in hops] == [
        ("vbr-docker-a", "vbr-docker-1"), ("vbr-docker-1", "vbr-docker-2"), ("vbr-docker-2", "vbr-docker-b")]
    assert hops[0]["address_a"] == "198.18.11.3/24" and hops[-1]["address_b"] == "198.18.12.3/24"
    # each link: the upstream hop at .1, the downstream hop at .2
    for before, after in zip(hops, hops[1:], strict=False):
        assert before["downstream"] == after["address_a"].split("/")[0]
        assert after["upstream"] == before["address_b"].split("/")[0]
    assert hops[0]["upstream"] == hops[0]["client"] == "198.18.11.4" and hops[-1]["downstream"] == "198.18.12.2"
    assert all(len(h[key]) <= 15 for h in hops for key in ("bridge_a", "bridge_b", "veth_a", "veth_b"))


def test_a_chain_of_one_is_a_single_proxy_beside_the_path_proxy() -> None:
    [hop] = flt.vnflab_chain_hops(PATH, "198.18.13.0/24", 1, "kvm")
    assert (hop["bridge_a"], hop["bridge_b"]) == ("vbr-kvm-a", "vbr-kvm-b")
    assert (hop["address_a"], hop["address_b"]) == ("198.18.11.3/24", "198.18.12.3/24")
    assert flt.vnflab_chain_ends(PATH) == {"entry": "198.18.11.3", "client": "198.18.11.4",
                                           "client_cidr": "198.18.11.4/24", "exit": "198.18.12.3"}


@pytest.mark.parametrize(("cidr", "length"), [("198.18.13.0/24", 9), ("198.18.13.0/24", 0), ("198.18.13.0/30", 3),
                                              ("10.0.0.0/24", 2)])
def test_chain_hops_refuse_what_does_not_fit(cidr: str, length: int) -> None:
    with pytest.raises(AnsibleFilterError):
        flt.vnflab_chain_hops(PATH, cidr, length, "docker")


def test_the_chain_network_is_checked_for_overlaps() -> None:
    hostvars = {"s": {"vnflab_path": PATH, "vnflab_instance_cidr": "198.19.8.0/21",
                      "vnflab_chain_cidr": "198.18.12.0/25"}}
    rows = flt.vnflab_network_vars(["s"], hostvars)
    assert {"host": "s", "variable": "vnflab_chain_cidr", "value": "198.18.12.0/25"} in rows
    assert any("vnflab_chain_cidr" in problem and "overlaps" in problem
               for problem in flt.vnflab_network_problems(rows))


def test_limit_names_the_module_utils_value_and_refuses_unknown_names() -> None:
    assert flt.vnflab_limit("max_instances") == 1024
    assert flt.vnflab_limit("max_payload") == 65507
    assert flt.vnflab_limit("repeat_defaults")["confidence"] == 0.95
    with pytest.raises(AnsibleFilterError, match="no limit 'max_ram'"):
        flt.vnflab_limit("max_ram")


@pytest.mark.parametrize(("variable", "highest"), [("vnflab_boot_counts", 1024), ("vnflab_memory_counts", 1024),
                                                   ("vnflab_response_sizes", 65507)])
def test_list_problems_takes_the_range_of_the_metric_the_variable_sweeps(variable: str, highest: int) -> None:
    assert flt.vnflab_list_problems([1, highest], variable) == []
    assert flt.vnflab_list_problems([0, highest + 1], variable) == [
        f"{variable}: every value must be between 1 and {highest}, got 0",
        f"{variable}: every value must be between 1 and {highest}, got {highest + 1}"]
    with pytest.raises(AnsibleFilterError, match="vnflab_chain_lengths is no metric's sweep variable"):
        flt.vnflab_list_problems([1], "vnflab_chain_lengths")


def test_only_response_time_takes_a_batch_of_samples() -> None:
    assert flt.vnflab_metric_batch("response") == 20
    assert flt.vnflab_metric_batch("boot") is None and flt.vnflab_metric_batch("memory") is None
    assert flt.vnflab_metric_batch("no-such-metric") is None
    assert flt.vnflab_batched_metrics({"boot": {}, "response": {}, "memory": {}}) == ["response"]
