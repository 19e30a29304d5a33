"""Static checks of the Molecule scenarios (molecule/<scenario>/): complete, isolated from the main lab, lint clean,
and every role that runs on a lab host is converged by at least one scenario."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCENARIOS = sorted(path.parent for path in (ROOT / "molecule").glob("*/molecule.yml"))
BASE = yaml.safe_load((ROOT / ".config" / "molecule" / "config.yml").read_text())
MGMT = ipaddress.ip_network(BASE["provisioner"]["inventory"]["group_vars"]["all"]["vnflab_molecule_mgmt_cidr"])
# Roles that run only on the controller: Molecule's own create/destroy use emulated_server; the others open runs
# or cable the namespace lab that Molecule replaces with VMs. (The report is written by a play, not a role.)
CONTROLLER_ROLES = {"emulated_server", "lab_config", "local_lab"}
# Repository playbooks a scenario may import, and the roles they run on lab hosts.
PLAYBOOK_ROLES = {"lab.yml": {"vnf_path", "lab_host"}, "provision.yml": {"host_a", "host_b"}}


def load(path: Path) -> object:
    return yaml.safe_load(path.read_text())


def platforms() -> list[tuple[str, dict[str, object]]]:
    return [(scenario.name, platform) for scenario in SCENARIOS
            for platform in load(scenario / "molecule.yml")["platforms"]]  # type: ignore[index]


def test_scenarios_exist() -> None:
    assert {s.name for s in SCENARIOS} >= {"host_a", "host_b", "docker", "kvm", "xen", "native", "full_lab"}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_is_complete(scenario: Path) -> None:
    assert (scenario / "converge.yml").is_file() and (scenario / "verify.yml").is_file()
    config = load(scenario / "molecule.yml")
    assert isinstance(config, dict) and config["platforms"], "a scenario needs at least one platform"
    assert "driver" not in config, "instances come from the shared create/destroy (.config/molecule/config.yml)"


def test_instances_are_isolated_from_the_main_lab() -> None:
    names, addresses = [], []
    for scenario, platform in platforms():
        name = str(platform["name"])
        assert re.fullmatch(r"mol-[a-z0-9-]{1,7}", name), f"{scenario}: {name} must be mol-* (at most 11 characters)"
        address = ipaddress.ip_interface(str(platform["address"]))
        assert address.network == MGMT and address.ip != next(MGMT.hosts()), f"{scenario}: {address}"
        for bridge in platform.get("nics", []):  # type: ignore[attr-defined]
            assert re.fullmatch(r"vbr-m-[a-z0-9-]{1,8}", bridge), f"{scenario}: bridge {bridge} must be vbr-m-*"
        names.append(name)
        addresses.append(address.ip)
    assert len(set(names)) == len(names), "VM names are unique across scenarios (they name disks and taps)"
    assert len(set(addresses)) == len(addresses), "management addresses are unique across scenarios"


def converged_roles(scenario: Path) -> set[str]:
    text = (scenario / "converge.yml").read_text()
    roles = set(re.findall(r"^\s+name: ([a-z_]+)$", text, re.MULTILINE))
    for playbook, playbook_roles in PLAYBOOK_ROLES.items():
        if f"playbooks/{playbook}" in text:
            roles |= playbook_roles
    if "playbooks/provision.yml" in text:
        config = load(scenario / "molecule.yml")
        group_vars = config["provisioner"]["inventory"]["group_vars"]  # type: ignore[index]
        roles.add(f"platform_{group_vars['vnf_servers']['vnflab_platform']}")
    return roles


def test_every_lab_host_role_has_a_scenario() -> None:
    roles = {path.name for path in (ROOT / "roles").iterdir() if (path / "tasks" / "main.yml").is_file()}
    covered: set[str] = set()
    for scenario in SCENARIOS:
        covered |= converged_roles(scenario)
    for role in set(covered):  # dependencies converge with the role (meta/main.yml)
        meta = ROOT / "roles" / role / "meta" / "main.yml"
        if meta.is_file():
            covered |= {d["role"] if isinstance(d, dict) else d for d in (load(meta) or {}).get("dependencies") or []}
    missing = roles - covered - CONTROLLER_ROLES
    assert not missing, f"roles without a Molecule scenario: {sorted(missing)}"


def test_molecule_playbooks_lint_clean() -> None:
    done = subprocess.run([str(BIN / "ansible-lint"), "-q", "--nocolor", "molecule", ".config/molecule"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False,
                          env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", NO_COLOR="1"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_packages_built_into_an_image_are_the_roles_own() -> None:
    # An image's `include` saves minutes of apt under TCG; it must not install more than the role would (the
    # scenario would then pass on a package the role forgot) and the role still runs its apt task. A VM may
    # include only packages of the platform role it serves as a VNF server.
    platform_packages = {
        "docker": set(load(ROOT / "roles" / "platform_docker" / "defaults" / "main.yml")["platform_docker_packages"]),
    }
    for scenario, platform in platforms():
        included = set(platform.get("include", []))  # type: ignore[arg-type]
        if not included:
            continue
        group_vars = load(ROOT / "molecule" / scenario / "molecule.yml")["provisioner"]["inventory"]["group_vars"]
        groups = platform["groups"]
        assert "vnf_servers" in groups, f"{scenario}/{platform['name']}: includes packages, serves no VNF"  # type: ignore[operator]
        served = group_vars["vnf_servers"]["vnflab_platform"]
        assert served in platform_packages, f"{scenario}: say which role's packages the image includes"
        assert included <= platform_packages[served], f"{scenario}: {included - platform_packages[served]}"
