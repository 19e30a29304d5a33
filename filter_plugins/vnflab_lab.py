# Copyright: vnflab contributors
# Apache License 2.0
"""Jinja filters of the vnflab lab: address plans and the servers a run measures."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

from vnflab.limits import LIMITS
from vnflab.metrics import METRICS

LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")
PROXY_INDEX = 1
HOST_INDEX = 2
#: A service chain's ends on the path networks: its first hop's A side and its last hop's B side (.3), and the
#: address Host A's requests into the chain come from (.4 of the A side), beside the single proxy (.1) and the
#: hosts (.2), so that the chain and the path proxy share the path bridges without sharing an address.
CHAIN_END_INDEX = 3
CHAIN_CLIENT_INDEX = 4
#: Longest chain (its k - 1 internal links are /30s of vnflab_chain_cidr, bridges vbr-<platform>-1..7).
MAX_CHAIN_LENGTH = 8


def lab_network(cidr: str, what: str = "network") -> ipaddress.IPv4Network:
    """Parse a lab network and insist it lies in the RFC 2544 benchmarking range."""
    try:
        net = ipaddress.ip_network(str(cidr), strict=True)
    except ValueError as exc:
        raise AnsibleFilterError(f"{what}: {cidr!r} is not a network address: {exc}") from exc
    if net.version != 4 or not net.subnet_of(LAB_RANGE):
        raise AnsibleFilterError(f"{what}: {cidr} is outside the benchmarking range {LAB_RANGE}")
    return net


def vnflab_host_address(cidr: str, index: int, with_prefix: bool = False) -> str:
    """The index-th address of a lab network ('198.18.11.0/24', 2 -> '198.18.11.2')."""
    net = lab_network(cidr)
    address = net.network_address + int(index)
    if address not in net or address in (net.network_address, net.broadcast_address):
        raise AnsibleFilterError(f"index {index} is not a host address of {net}")
    return f"{address}/{net.prefixlen}" if with_prefix else str(address)


def vnflab_path_addresses(path: Mapping[str, str]) -> dict[str, str]:
    """Addresses on a platform's proxy path: Host A, the proxy's two sides, Host B (with and without prefix)."""
    try:
        a_side, b_side = path["a_side_cidr"], path["b_side_cidr"]
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"vnflab_path needs a_side_cidr and b_side_cidr, got {path!r}") from exc
    return {
        "host_a": vnflab_host_address(a_side, HOST_INDEX),
        "host_a_cidr": vnflab_host_address(a_side, HOST_INDEX, True),
        "proxy_a": vnflab_host_address(a_side, PROXY_INDEX),
        "proxy_a_cidr": vnflab_host_address(a_side, PROXY_INDEX, True),
        "host_b": vnflab_host_address(b_side, HOST_INDEX),
        "host_b_cidr": vnflab_host_address(b_side, HOST_INDEX, True),
        "proxy_b": vnflab_host_address(b_side, PROXY_INDEX),
        "proxy_b_cidr": vnflab_host_address(b_side, PROXY_INDEX, True),
        "a_side_cidr": str(lab_network(a_side)),
        "b_side_cidr": str(lab_network(b_side)),
    }


def vnflab_chain_hops(path: Mapping[str, str], chain_cidr: str, length: int, platform: str) -> list[dict[str, Any]]:
    """The k hops of a service chain A -> VNF1 -> ... -> VNFk -> B on one server, in order.

    Hop i's A side is the path's A-side network (i = 1, address .3) or internal link i - 1, its B side link i or the
    path's B-side network (i = k, address .3). Link j is the j-th /30 of ``chain_cidr`` on bridge
    ``vbr-<platform>-<j>`` (hop j at .1, hop j + 1 at .2). ``upstream``/``downstream``: the neighbour each side
    talks to (Host A's chain address .4 and Host B at the ends); ``client``: Host A's chain address, the source a
    destination-rewriting proxy keeps; ``veth_a``/``veth_b``: host-end device names where the platform needs them.
    """
    k = int(length)
    if not 1 <= k <= MAX_CHAIN_LENGTH:
        raise AnsibleFilterError(f"vnflab_chain_hops: a chain has 1 to {MAX_CHAIN_LENGTH} VNFs, not {length}")
    ends = vnflab_path_addresses(path)
    net = lab_network(chain_cidr, "vnflab_chain_cidr")
    if k > 1 and net.prefixlen > 30 - (k - 2).bit_length():  # 2 ** (30 - prefix) /30s for k - 1 links
        raise AnsibleFilterError(f"vnflab_chain_cidr: {net} holds fewer than {k - 1} /30 links")
    links = list(net.subnets(new_prefix=30))[:k - 1] if k > 1 else []
    a_side, b_side = ends["a_side_cidr"], ends["b_side_cidr"]
    client = vnflab_host_address(a_side, CHAIN_CLIENT_INDEX)
    hops = []
    for i in range(1, k + 1):
        before = links[i - 2] if i > 1 else None
        after = links[i - 1] if i < k else None
        hops.append({
            "index": i,
            "name": f"vnflab-{platform}-c{k}-{i}",
            "bridge_a": f"vbr-{platform}-{'a' if before is None else i - 1}",
            "bridge_b": f"vbr-{platform}-{'b' if after is None else i}",
            "address_a": (vnflab_host_address(a_side, CHAIN_END_INDEX, True) if before is None
                          else f"{before.network_address + 2}/30"),
            "address_b": (vnflab_host_address(b_side, CHAIN_END_INDEX, True) if after is None
                          else f"{after.network_address + 1}/30"),
            "upstream": client if before is None else str(before.network_address + 1),
            "downstream": ends["host_b"] if after is None else str(after.network_address + 2),
            "client": client,
            "veth_a": f"vp-{platform}-{i}a",
            "veth_b": f"vp-{platform}-{i}b",
        })
    return hops


def vnflab_chain_ends(path: Mapping[str, str]) -> dict[str, str]:
    """Where Host A meets a chain: its first hop's A-side address (``entry``), Host A's chain address
    (``client``, with its prefix in ``client_cidr``) and the last hop's B-side address (``exit``)."""
    ends = vnflab_path_addresses(path)
    return {"entry": vnflab_host_address(ends["a_side_cidr"], CHAIN_END_INDEX),
            "client": vnflab_host_address(ends["a_side_cidr"], CHAIN_CLIENT_INDEX),
            "client_cidr": vnflab_host_address(ends["a_side_cidr"], CHAIN_CLIENT_INDEX, True),
            "exit": vnflab_host_address(ends["b_side_cidr"], CHAIN_END_INDEX)}


def vnflab_measured_servers(server_names: Sequence[str], hostvars: Mapping[str, Any],
                            platforms: Sequence[str]) -> list[str]:
    """Inventory names of the VNF servers whose platform is selected for this run, in platform order."""
    by_platform: dict[str, str] = {}
    for name in server_names:
        platform = hostvars[name].get("vnflab_platform")
        if platform in by_platform:
            raise AnsibleFilterError(f"platform {platform!r} is served by both {by_platform[platform]} and {name}")
        by_platform[str(platform)] = name
    missing = [p for p in platforms if p not in by_platform]
    if missing:
        raise AnsibleFilterError(f"vnflab_platforms: no host in group vnf_servers serves {missing}")
    return [by_platform[p] for p in platforms]


def vnflab_emulated_servers(server_names: Sequence[str], hostvars: Mapping[str, Any]) -> list[str]:
    """The servers the local lab emulates (hosts with vnflab_emulated_server), in the given order."""
    return [name for name in server_names if "vnflab_emulated_server" in hostvars[name]]


def vnflab_failed_points(server_names: Sequence[str], hostvars: Mapping[str, Any]) -> list[str]:
    """The boot and memory points that failed (the plays' vnflab_<metric>_failures facts), as
    "<platform> <metric> N=<count>", servers in the given order."""
    return [f"{hostvars[name].get('vnflab_platform', name)} {metric} N={count}"
            for name in server_names for metric in ("boot", "memory")
            for count in hostvars[name].get(f"vnflab_{metric}_failures") or []]


def vnflab_network_vars(server_names: Sequence[str], hostvars: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every lab network a VNF server declares, as {host, variable, value} (value None when missing)."""
    rows = []
    for name in server_names:
        path = hostvars[name].get("vnflab_path") or {}
        for key in ("a_side_cidr", "b_side_cidr"):
            rows.append({"host": name, "variable": f"vnflab_path.{key}", "value": path.get(key)})
        instance_cidr = hostvars[name].get("vnflab_instance_cidr")
        rows.append({"host": name, "variable": "vnflab_instance_cidr", "value": instance_cidr})
        if hostvars[name].get("vnflab_chain_cidr") is not None:  # optional: the chain metric's internal links
            rows.append({"host": name, "variable": "vnflab_chain_cidr", "value": hostvars[name]["vnflab_chain_cidr"]})
    return rows


def vnflab_lab_networks(server_names: Sequence[str], hostvars: Mapping[str, Any], direct_cidr: str,
                        docker_defaults: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every network the run will configure, as {host, variable, value, address}: the direct link, each measured
    server's path and instance networks, the Docker engine's bridge (an address: host bits allowed) and address
    pools on a Docker server, and an emulated server's management network (of its address)."""
    rows = [{"host": "localhost", "variable": "vnflab_direct_cidr", "value": direct_cidr, "address": False}]
    for row in vnflab_network_vars(server_names, hostvars):
        rows.append({**row, "address": False})
    for name in server_names:
        server = hostvars[name]
        if server.get("vnflab_platform") == "docker":
            bip = server.get("platform_docker_bip", docker_defaults.get("platform_docker_bip"))
            rows.append({"host": name, "variable": "platform_docker_bip", "value": bip, "address": True})
            pools = server.get("platform_docker_address_pools", docker_defaults.get("platform_docker_address_pools"))
            for index, pool in enumerate(pools or []):
                base = pool.get("base") if isinstance(pool, Mapping) else None
                rows.append({"host": name, "variable": f"platform_docker_address_pools[{index}].base", "value": base,
                             "address": False})
        emulated = server.get("vnflab_emulated_server")
        if isinstance(emulated, Mapping) and emulated.get("address"):
            rows.append({"host": name, "variable": "vnflab_emulated_server.address (management network)",
                         "value": emulated["address"], "address": True})
    return rows


def vnflab_network_problems(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """What is wrong with the run's networks: a value that is no IPv4 network, host bits set in a network, and
    every pair that overlaps (a duplicate is an overlap), each naming the host and variable."""
    problems = []
    parsed: list[tuple[str, ipaddress.IPv4Network]] = []
    for row in rows:
        name = f"{row['host']}: {row['variable']} = {row['value']}"
        try:
            if row.get("address"):
                net = ipaddress.ip_interface(str(row["value"])).network
            else:
                net = ipaddress.ip_network(str(row["value"]), strict=False)
        except ValueError:
            problems.append(f"{name} is not an IPv4 network in CIDR form")
            continue
        if net.version != 4:
            problems.append(f"{name} is not an IPv4 network")
            continue
        if not row.get("address") and str(net) != str(row["value"]).strip():
            problems.append(f"{name} has host bits set (the network is {net}); write the network address")
        parsed.append((name, net))
    for index, (name, net) in enumerate(parsed):
        for other_name, other in parsed[index + 1:]:
            if net == other:
                problems.append(f"{name} is the same network as {other_name}")
            elif net.overlaps(other):
                problems.append(f"{name} overlaps {other_name}: the lab's routes would send one's traffic "
                                "through the other")
    return problems


def sweep_limits(variable: str) -> tuple[int, int]:
    """The smallest and largest x of the metric that ``variable`` (vnflab_boot_counts, ...) sweeps."""
    for metric in METRICS.values():
        if metric.sweep_variable == variable and metric.limits is not None:
            return metric.limits
    raise AnsibleFilterError(f"{variable} is no metric's sweep variable (vnflab.metrics)")


def vnflab_list_problems(value: Any, variable: str, lowest: int | None = None, highest: int | None = None) -> list[str]:
    """What is wrong with a sweep list (sizes, counts): not a list, empty, not whole numbers, out of range,
    repeated. Each message names the variable. The range is the metric's (vnflab.metrics) unless given."""
    if lowest is None or highest is None:
        lowest, highest = sweep_limits(variable)
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        return [f"{variable} must be a list, got {value!r}"]
    if not value:
        return [f"{variable} is empty: a run needs at least one point (to skip the metric, leave out its tag)"]
    problems = []
    numbers = []
    for item in value:
        if isinstance(item, bool) or not (isinstance(item, int) or (isinstance(item, str) and item.strip().isdigit())):
            problems.append(f"{variable}: {item!r} is not a whole number")
            continue
        number = int(item)
        if not lowest <= number <= highest:
            problems.append(f"{variable}: every value must be between {lowest} and {highest}, got {number}")
        numbers.append(number)
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    if repeated:
        problems.append(f"{variable}: {repeated} appear more than once (each point is measured once per run)")
    return problems


def vnflab_metric_batch(name: str) -> int | None:
    """The samples one batch of metric ``name`` takes by default (repeat.batch), or None where a batch gives one value
    per start of the metric's instances (vnflab.metrics: Metric.batch_samples)."""
    metric = METRICS.get(str(name))
    return metric.batch_samples if metric is not None else None


def vnflab_batched_metrics(names: Any) -> list[str]:
    """The metrics among ``names`` (a list, or vnflab_repeat's keys) whose batch takes several samples."""
    return [str(name) for name in names if vnflab_metric_batch(name) is not None]


def vnflab_limit(name: str) -> Any:
    """A limit or default of module_utils/vnflab_host/limits.py by name ('max_instances' | vnflab_limit)."""
    try:
        return LIMITS[name]
    except KeyError:
        raise AnsibleFilterError(f"vnflab_limit: no limit {name!r}; known: {', '.join(sorted(LIMITS))}") from None


def vnflab_in_lab_range(cidr_or_address: str) -> bool:
    try:
        net = ipaddress.ip_network(str(cidr_or_address), strict=False)
    except ValueError:
        return False
    return net.version == 4 and net.subnet_of(LAB_RANGE)


def vnflab_ifname(pattern: str, platform: str) -> str:
    name = str(pattern).replace("{platform}", str(platform))
    if not 1 <= len(name) <= 15:
        raise AnsibleFilterError(f"interface name {name!r} (from {pattern!r}) must have 1 to 15 characters")
    return name


def vnflab_keyvalue(text: str) -> dict[str, str]:
    """Parse 'key=value' lines (BUILD-INFO files); blank lines and lines without '=' are skipped."""
    pairs = (line.split("=", 1) for line in str(text).splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def vnflab_network_of(interface: str) -> str:
    """Lab network of an interface address ('198.18.200.10/24' -> '198.18.200.0/24')."""
    try:
        net = ipaddress.ip_interface(str(interface)).network
    except ValueError as exc:
        raise AnsibleFilterError(f"{interface!r} is not an address with a prefix length: {exc}") from exc
    return str(lab_network(str(net)))


def vnflab_netmask(cidr: str) -> str:
    """Dotted netmask of a lab network ('198.18.11.0/24' -> '255.255.255.0')."""
    return str(lab_network(cidr).netmask)


def vnflab_mac(address: str) -> str:
    """Locally administered MAC derived from an IPv4 address (same rule as the platform driver's ${mac})."""
    try:
        packed = ipaddress.IPv4Address(str(address).split("/")[0]).packed
    except ValueError as exc:
        raise AnsibleFilterError(f"vnflab_mac: {address!r} is not an IPv4 address") from exc
    return "02:00:" + ":".join(f"{byte:02x}" for byte in packed)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "vnflab_host_address": vnflab_host_address,
            "vnflab_path_addresses": vnflab_path_addresses,
            "vnflab_measured_servers": vnflab_measured_servers,
            "vnflab_in_lab_range": vnflab_in_lab_range,
            "vnflab_network_vars": vnflab_network_vars,
            "vnflab_lab_networks": vnflab_lab_networks,
            "vnflab_network_problems": vnflab_network_problems,
            "vnflab_list_problems": vnflab_list_problems,
            "vnflab_limit": vnflab_limit,
            "vnflab_metric_batch": vnflab_metric_batch,
            "vnflab_batched_metrics": vnflab_batched_metrics,
            "vnflab_ifname": vnflab_ifname,
            "vnflab_mac": vnflab_mac,
            "vnflab_netmask": vnflab_netmask,
            "vnflab_network_of": vnflab_network_of,
            "vnflab_emulated_servers": vnflab_emulated_servers,
            "vnflab_failed_points": vnflab_failed_points,
            "vnflab_keyvalue": vnflab_keyvalue,
            "vnflab_chain_hops": vnflab_chain_hops,
            "vnflab_chain_ends": vnflab_chain_ends,
        }
