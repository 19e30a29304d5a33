"""The platform contract (docs/platforms.md), checked mechanically for every platform in the inventories."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = [ROOT / "inventory" / "local", ROOT / "inventory" / "example-real"]
DRIVER_KEYS = {"name", "label", "instance_prefix", "network", "start", "stop"}


def platforms_in(inventory: Path) -> dict[str, str]:
    """Inventory host -> vnflab_platform for the hosts of vnf_servers."""
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]["vnf_servers"]["hosts"]
    result = {}
    for host, host_vars in hosts.items():
        merged = dict(host_vars or {})
        host_file = inventory / "host_vars" / f"{host}.yml"
        if host_file.exists():
            merged.update(yaml.safe_load(host_file.read_text()) or {})
        result[host] = merged["vnflab_platform"]
    return result


def selected_platforms(inventory: Path) -> list[str]:
    return yaml.safe_load((inventory / "group_vars" / "all" / "lab.yml").read_text())["vnflab_platforms"]


CASES = sorted({(inv.name, platform) for inv in INVENTORIES for platform in selected_platforms(inv)})


@pytest.mark.parametrize(("inventory", "platform"), CASES)
def test_selected_platform_has_a_server_and_a_complete_role(inventory: str, platform: str) -> None:
    assert platform in platforms_in(ROOT / "inventory" / inventory).values(), f"no VNF server serves {platform}"
    role = ROOT / "roles" / f"platform_{platform}"
    for entry in ("main", "proxy", "teardown"):
        assert (role / "tasks" / f"{entry}.yml").is_file(), f"{role.name} lacks tasks/{entry}.yml"
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    assert {"main", "proxy", "teardown"} <= set(specs), f"{role.name} lacks argument specs for an entry point"
    assert "vnflab_platform" in specs["main"]["options"]


@pytest.mark.parametrize("platform", sorted({p for _, p in CASES}))
def test_role_publishes_a_complete_driver(platform: str) -> None:
    """Some task of the role sets vnflab_driver with every required key."""
    role = ROOT / "roles" / f"platform_{platform}"
    drivers = []
    for tasks_file in (role / "tasks").glob("*.yml"):
        for task in yaml.safe_load(tasks_file.read_text()) or []:
            facts = task.get("ansible.builtin.set_fact") or {}
            if isinstance(facts, dict) and "vnflab_driver" in facts:
                drivers.append(facts["vnflab_driver"])
    assert len(drivers) == 1, f"{role.name} must set vnflab_driver exactly once, found {len(drivers)}"
    assert DRIVER_KEYS <= set(drivers[0]), f"missing driver keys: {DRIVER_KEYS - set(drivers[0])}"


def test_every_declared_server_platform_that_has_no_role_is_not_selected() -> None:
    for inventory in INVENTORIES:
        selected = set(selected_platforms(inventory))
        for host, platform in platforms_in(inventory).items():
            if not (ROOT / "roles" / f"platform_{platform}").is_dir():
                assert platform not in selected, f"{inventory.name}: {host} serves {platform}, which has no role"
