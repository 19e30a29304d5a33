"""The platform contract (docs/platforms.md), checked mechanically for every platform in the inventories.

Static half: every selected platform has a VNF server, a role with the three entry points and their
argument specs, exactly one published driver with the required keys and only known template fields,
the manifest fact, role-prefixed defaults, and free lab addresses. The run-time half (the driver
implements the interface, the probes run against it with N = 1) is tests/e2e/test_platform_probes.py.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = [ROOT / "inventory" / "local", ROOT / "inventory" / "example-real"]
DRIVER_KEYS = {"name", "label", "instance_prefix", "network", "start", "stop"}
OPTIONAL_DRIVER_KEYS = {"pid", "own_cgroup", "memory_kib", "health", "server_available_mb", "max_parallel", "probe",
                        "migrate", "chain"}
TEMPLATE_FIELDS = {"name", "index", "address", "prefix_len", "gateway", "mac"}
LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) or {}


def servers_in(inventory: Path) -> dict[str, dict[str, Any]]:
    """Inventory host -> its variables (inline in hosts.yml, then host_vars/) for the hosts of vnf_servers."""
    hosts = _load(inventory / "hosts.yml")["all"]["children"]["vnf_servers"]["hosts"]
    result = {}
    for host, host_vars in hosts.items():
        merged = dict(host_vars or {})
        host_file = inventory / "host_vars" / f"{host}.yml"
        if host_file.exists():
            merged.update(_load(host_file))
        host_dir = inventory / "host_vars" / host
        if host_dir.is_dir():
            for part in sorted(host_dir.glob("*.yml")):
                merged.update(_load(part))
        result[host] = merged
    return result


def platforms_in(inventory: Path) -> dict[str, str]:
    """Inventory host -> vnflab_platform for the hosts of vnf_servers."""
    return {host: variables["vnflab_platform"] for host, variables in servers_in(inventory).items()}


def selected_platforms(inventory: Path) -> list[str]:
    return _load(inventory / "group_vars" / "all" / "lab.yml")["vnflab_platforms"]


CASES = sorted({(inv.name, platform) for inv in INVENTORIES for platform in selected_platforms(inv)})
PLATFORMS = sorted({p for _, p in CASES})


def role_of(platform: str) -> Path:
    return ROOT / "roles" / f"platform_{platform}"


def published(platform: str, fact: str) -> list[tuple[str, Any]]:
    """(tasks file, value) for every set_fact task of the role that sets ``fact``."""
    found = []
    for tasks_file in sorted((role_of(platform) / "tasks").glob("*.yml")):
        for task in _load(tasks_file) or []:
            for block_task in [task, *task.get("block", []), *task.get("rescue", []), *task.get("always", [])]:
                facts = block_task.get("ansible.builtin.set_fact") or {}
                if isinstance(facts, dict) and fact in facts:
                    found.append((tasks_file.name, facts[fact]))
    return found


def included_task_files(platform: str, entry: str) -> set[str]:
    """Task files reachable from tasks/<entry>.yml through import_tasks / include_tasks of the same role."""
    seen: set[str] = set()
    pending = [f"{entry}.yml"]
    while pending:
        name = pending.pop()
        path = role_of(platform) / "tasks" / name
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        text = path.read_text()
        pending += re.findall(r"ansible\.builtin\.(?:import|include)_tasks:\s*([\w.-]+\.yml)", text)
    return seen


@pytest.mark.parametrize(("inventory", "platform"), CASES)
def test_selected_platform_has_a_server_and_a_complete_role(inventory: str, platform: str) -> None:
    assert platform in platforms_in(ROOT / "inventory" / inventory).values(), f"no VNF server serves {platform}"
    role = role_of(platform)
    for entry in ("main", "proxy", "teardown"):
        assert (role / "tasks" / f"{entry}.yml").is_file(), f"{role.name} lacks tasks/{entry}.yml"
    specs = _load(role / "meta" / "argument_specs.yml")["argument_specs"]
    assert {"main", "proxy", "teardown"} <= set(specs), f"{role.name} lacks argument specs for an entry point"
    for entry in ("main", "proxy"):
        options = specs[entry]["options"]
        for variable in ("vnflab_platform", "vnflab_path", "vnflab_instance_cidr"):
            assert variable in options, f"{role.name}: argument spec {entry} does not declare {variable}"
    assert "vnflab_platform" in specs["teardown"]["options"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_platform_name_can_name_devices(platform: str) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9]{0,8}", platform), f"{platform}: at most 9 lower-case letters or digits"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_role_publishes_a_complete_driver(platform: str) -> None:
    """Exactly one task of the role sets vnflab_driver, reachable from main, with every required key."""
    drivers = published(platform, "vnflab_driver")
    assert len(drivers) == 1, f"platform_{platform} must set vnflab_driver exactly once, found {len(drivers)}"
    tasks_file, driver = drivers[0]
    assert tasks_file in included_task_files(platform, "main"), f"{tasks_file} is not part of the main entry point"
    assert isinstance(driver, dict), "vnflab_driver must be a dict (docs/design.md)"
    assert DRIVER_KEYS <= set(driver), f"missing driver keys: {DRIVER_KEYS - set(driver)}"
    unknown = set(driver) - DRIVER_KEYS - OPTIONAL_DRIVER_KEYS
    assert not unknown, f"unknown driver keys (the engine would ignore them): {unknown}"
    # Template fields in the driver and in the role variables it is built from (vars/main.yml).
    role_vars = role_of(platform) / "vars" / "main.yml"
    text = yaml.safe_dump(driver) + (role_vars.read_text() if role_vars.is_file() else "")
    fields = set(re.findall(r"\$\{(\w+)\}", text))
    assert fields <= TEMPLATE_FIELDS, f"unknown template fields: {fields - TEMPLATE_FIELDS}"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_role_publishes_what_the_results_depend_on(platform: str) -> None:
    infos = published(platform, "vnflab_platform_info")
    assert infos, f"platform_{platform} does not publish vnflab_platform_info (the manifest's platform_info)"
    assert all(tasks_file in included_task_files(platform, "main") for tasks_file, _ in infos)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_role_variables_carry_the_role_prefix(platform: str) -> None:
    defaults = role_of(platform) / "defaults" / "main.yml"
    names = set(_load(defaults)) if defaults.is_file() else set()
    stray = {name for name in names if not name.startswith(f"platform_{platform}_")}
    assert not stray, f"platform_{platform} defaults without the role prefix: {stray}"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_platform_is_documented(platform: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"`{platform}`" in readme, f"README.md does not mention `{platform}` (its label, real or stand-in)"


@pytest.mark.parametrize("inventory", INVENTORIES, ids=lambda inv: inv.name)
def test_lab_networks_are_benchmarking_addresses_and_do_not_overlap(inventory: Path) -> None:
    selected = set(selected_platforms(inventory))
    networks: list[tuple[str, ipaddress.IPv4Network]] = []
    for host, variables in servers_in(inventory).items():
        if variables["vnflab_platform"] not in selected:
            continue
        path = variables["vnflab_path"]
        for what, cidr in (("a_side_cidr", path["a_side_cidr"]), ("b_side_cidr", path["b_side_cidr"]),
                           ("vnflab_instance_cidr", variables["vnflab_instance_cidr"])):
            network = ipaddress.ip_network(cidr)
            assert network.subnet_of(LAB_RANGE), f"{host}: {what} {network} outside {LAB_RANGE}"
            networks.append((f"{host} {what}", network))
    for index, (name, network) in enumerate(networks):
        for other_name, other in networks[index + 1:]:
            assert not network.overlaps(other), f"{name} {network} overlaps {other_name} {other}"


def test_every_declared_server_platform_that_has_no_role_is_not_selected() -> None:
    for inventory in INVENTORIES:
        selected = set(selected_platforms(inventory))
        for host, platform in platforms_in(inventory).items():
            if not role_of(platform).is_dir():
                assert platform not in selected, f"{inventory.name}: {host} serves {platform}, which has no role"
