"""inventory/example-real/ is complete for all four platforms: it renders, every row has its server and settings
(the ClickOS and OSv sources included), every platform variable it sets is one the role declares, SSH checks host
keys against the inventory's own known_hosts, a non-root login becomes root, and the validate play accepts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vnflab.run import runlock

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventory/example-real"
BIN = Path(sys.executable).parent
SOURCE_MIRROR = ROOT.parent / "shared/unikernels/sources"


def rendered() -> dict[str, dict[str, object]]:
    done = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list"], cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=120)
    return json.loads(done.stdout)


HOSTVARS = rendered()["_meta"]["hostvars"]
SERVERS = {name: hostvars for name, hostvars in HOSTVARS.items() if "vnflab_platform" in hostvars}


def test_every_platform_has_one_server_with_a_path() -> None:
    platforms = HOSTVARS["localhost"]["vnflab_platforms"]
    assert sorted(platforms) == ["docker", "kvm", "native", "xen"]
    assert sorted(str(server["vnflab_platform"]) for server in SERVERS.values()) == sorted(platforms)
    for name, server in SERVERS.items():
        assert set(server["vnflab_path"]) == {"a_side_cidr", "b_side_cidr"}, name  # type: ignore[arg-type]
        assert set(server["vnflab_path_uplinks"]) == {"a", "b"}, name  # type: ignore[arg-type]
        assert "vnflab_instance_cidr" in server, name


def test_the_unikernel_rows_say_where_their_sources_come_from() -> None:
    clickos, osv = SERVERS["clickos"], SERVERS["osv"]
    assert clickos["platform_xen_guest"] == "clickos"
    for variable in ("platform_xen_clickos_image", "platform_xen_clickos_build", "platform_xen_clickos_build_host",
                     "platform_xen_clickos_xen_mirror", "platform_xen_memory_mb", "vnflab_source_mirror"):
        assert variable in clickos, variable
    assert osv["platform_kvm_guest"] == "osv"
    assert osv["platform_kvm_proxy_mode"] == "udp" and osv["vnflab_response_mode"] == "udp"
    assert "vnflab_source_mirror" in osv and "platform_kvm_memory_mb" in osv


def declared_options(role: str) -> set[str]:
    specs = yaml.safe_load((ROOT / "roles" / role / "meta/argument_specs.yml").read_text())["argument_specs"]
    return {option for entry in specs.values() for option in (entry.get("options") or {})}


def test_every_platform_variable_set_is_declared_by_its_role() -> None:
    for name, server in SERVERS.items():
        role = f"platform_{server['vnflab_platform']}"
        set_here = {variable for variable in server if variable.startswith(role + "_")}
        assert set_here <= declared_options(role), (name, set_here - declared_options(role))


def test_ssh_checks_host_keys_against_the_inventorys_known_hosts() -> None:
    assert "host_key_checking" not in (ROOT / "ansible.cfg").read_text()
    assert (INVENTORY / "known_hosts").is_file()
    for name, hostvars in HOSTVARS.items():
        if hostvars.get("ansible_connection") == "local":
            continue
        arguments = str(hostvars["ansible_ssh_common_args"])
        assert "UserKnownHostsFile={{ inventory_dir }}/known_hosts" in arguments, name
        assert "StrictHostKeyChecking=yes" in arguments, name


def test_a_non_root_login_becomes_root_and_flatcar_logs_in_as_core() -> None:
    for name, hostvars in HOSTVARS.items():
        if hostvars.get("ansible_connection") == "local":
            assert not hostvars.get("ansible_become"), name  # the controller is never sudo'ed
        elif hostvars.get("ansible_user") != "root":
            assert hostvars.get("ansible_become") is True, name
    assert SERVERS["coreos"]["ansible_user"] == "core"


@pytest.mark.skipif(not (SOURCE_MIRROR / "SHA256SUMS").is_file(), reason="no source mirror beside the checkout")
def test_the_validate_play_accepts_it(tmp_path: Path) -> None:
    """Input checks only: the validate play reaches no server (platform checks are controller-side asserts)."""
    env = {**os.environ, "VNFLAB_RESULTS_DIR": str(tmp_path), "ANSIBLE_NOCOLOR": "1"}
    # Under the run lock this test process holds (a suite that ran a lab holds it already; see test_preflight).
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), "playbooks/validate.yml",
                           "-e", f"platform_xen_clickos_xen_mirror={SOURCE_MIRROR}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300,
                          pass_fds=(runlock.hold_for_process(),))
    assert done.returncode == 0, done.stdout[-4000:]
    assert "unreachable=1" not in done.stdout


def test_site_and_the_flatcar_bootstrap_parse_against_it() -> None:
    for playbook in ("site.yml", "playbooks/bootstrap-flatcar.yml"):
        done = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), "--syntax-check", playbook],
                              cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
        assert done.returncode == 0, playbook + done.stdout + done.stderr
