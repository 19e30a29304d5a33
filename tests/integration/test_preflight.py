"""The pre-flight play (playbooks/preflight.yml, run by site.yml before the lab play) rejects a host that cannot
take the lab, naming the host and the variable, before anything changes on any host.

A "real" lab in a network namespace: Host A, Host B and a native VNF server are all the namespace, reached with the
netns connection; mgmt0 holds the management address (ansible_host), lab1/lab2 are free NICs for the lab, other0
holds an address of some other network of the host. The unreachable host is an SSH host whose port is closed, and
the sudo that refuses is a fake sudo (ansible_become_exe). Each rejection runs site.yml up to the lab play
(--tags lab: the first stage that changes hosts, kept small should the pre-flight ever let a bad host through) and
checks that no task after the pre-flight's ran, nothing changed, and the namespace has no lab bridge.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from vnflab.run import runlock

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

PREFLIGHT_TASKS = {task["name"] for play in yaml.safe_load((ROOT / "playbooks/preflight.yml").read_text())
                   for task in play["tasks"]}
MGMT_ADDRESS = "198.18.250.2"
OTHER_CIDR = "198.18.251.0/24"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    name = f"vnflab-pf-{uuid.uuid4().hex[:6]}"
    ip("netns", "add", name)
    try:
        for nic, peer in (("mgmt0", "mgmt1"), ("lab1", "lab2"), ("other0", "other1")):
            ip("-n", name, "link", "add", nic, "type", "veth", "peer", "name", peer)
            ip("-n", name, "link", "set", nic, "up")
            ip("-n", name, "link", "set", peer, "up")
        ip("-n", name, "addr", "add", f"{MGMT_ADDRESS}/24", "dev", "mgmt0")
        ip("-n", name, "addr", "add", "198.18.251.1/24", "dev", "other0")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, timeout=30)


def netns_host(namespace: str, **extra: object) -> dict[str, object]:
    return {"ansible_connection": "netns", "ansible_netns_name": namespace, "ansible_host": MGMT_ADDRESS,
            "ansible_python_interpreter": "/usr/bin/python3", **extra}


def inventory(namespace: str, server: dict[str, object] | None = None,
              host_b: dict[str, object] | None = None) -> dict[str, object]:
    server_vars = {
        "vnflab_platform": "native",
        "vnflab_path": {"a_side_cidr": "198.18.253.0/24", "b_side_cidr": "198.18.254.0/24"},
        "vnflab_path_uplinks": {"a": "lab1", "b": "lab2"},
        "vnflab_instance_cidr": "198.19.248.0/21",
        **(server or {}),
    }
    return {"all": {
        "vars": {"vnflab_lab_kind": "real", "vnflab_platforms": ["native"], "vnflab_profile": "quick",
                 "vnflab_direct_cidr": "198.18.252.0/24", "vnflab_direct_iface": "lab1",
                 "vnflab_lab_iface_pattern": "lab2", "vnflab_response_mode": "icmp"},
        "children": {
            "controller": {"hosts": {"localhost": {"ansible_connection": "local",
                                                   "ansible_python_interpreter": sys.executable}}},
            "host_a": {"hosts": {"pf-a": netns_host(namespace)}},
            "host_b": {"hosts": {"pf-b": host_b if host_b is not None else netns_host(namespace)}},
            "vnf_servers": {"hosts": {"pf-server": netns_host(namespace, **server_vars)}},
        },
    }}


def site(tmp_path: Path, hosts: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    inventory_dir = tmp_path / "inventory"
    inventory_dir.mkdir(exist_ok=True)
    hosts["all"]["vars"]["vnflab_results_dir"] = str(tmp_path / "results")  # type: ignore[index]
    (inventory_dir / "hosts.yml").write_text(yaml.safe_dump(hosts))
    # Root becoming root goes through the (fake) sudo too, as a non-root user's would.
    env = {**os.environ, "VNFLAB_RESULTS_DIR": str(tmp_path / "results"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_BECOME_ALLOW_SAME_USER": "1"}
    # Under the lab's run lock, held by this test process and inherited (as tests/e2e/lab_playbook.py does): a
    # suite that ran a lab before holds it already, and the playbook's own lock check would refuse a second holder.
    return subprocess.run([PLAYBOOK, "-i", str(inventory_dir), "site.yml", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False, timeout=300,
                          pass_fds=(runlock.hold_for_process(),))


def assert_rejected_before_any_change(done: subprocess.CompletedProcess[str], namespace: str, message: str) -> None:
    assert done.returncode != 0, done.stdout[-4000:]
    assert message in done.stdout, done.stdout[-6000:]
    from_preflight = done.stdout[done.stdout.index("PLAY [Pre-flight checks"):]
    tasks_run = set(re.findall(r"^TASK \[(.*?)\]", from_preflight, re.MULTILINE))
    assert tasks_run <= PREFLIGHT_TASKS, tasks_run - PREFLIGHT_TASKS
    for host in ("pf-a", "pf-b", "pf-server"):
        assert re.search(rf"^{host} +: .*changed=0 ", done.stdout, re.MULTILINE), done.stdout[-2000:]
    bridges = subprocess.run(["ip", "-n", namespace, "-o", "link", "show", "type", "bridge"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
    assert bridges == "", bridges


def test_a_host_that_can_take_the_lab_passes(tmp_path: Path, namespace: str) -> None:
    done = site(tmp_path, inventory(namespace), "--tags", "preflight")
    assert done.returncode == 0, done.stdout[-6000:]
    assert "TASK [NICs, lab networks, memory, disk and Secure Boot]" in done.stdout


def test_an_unreachable_host_is_rejected(tmp_path: Path, namespace: str) -> None:
    closed_port = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1,
                   "ansible_user": "core", "ansible_ssh_common_args": "-o ConnectTimeout=5 -o BatchMode=yes"}
    done = site(tmp_path, inventory(namespace, host_b=closed_port), "--tags", "lab")
    assert_rejected_before_any_change(
        done, namespace, "pf-b does not answer (ansible_host=127.0.0.1, ansible_user=core")


def test_a_nic_that_does_not_exist_is_rejected(tmp_path: Path, namespace: str) -> None:
    done = site(tmp_path, inventory(namespace, {"vnflab_path_uplinks": {"a": "eno9", "b": "lab2"}}), "--tags", "lab")
    assert_rejected_before_any_change(done, namespace, "pf-server: vnflab_path_uplinks.a: NIC eno9 does not exist")


def test_the_management_nic_as_an_uplink_is_rejected(tmp_path: Path, namespace: str) -> None:
    done = site(tmp_path, inventory(namespace, {"vnflab_path_uplinks": {"a": "lab1", "b": "mgmt0"}}), "--tags", "lab")
    assert_rejected_before_any_change(
        done, namespace, "pf-server: vnflab_path_uplinks.b: NIC mgmt0 carries the management connection")


def test_a_path_network_over_an_address_of_the_host_is_rejected(tmp_path: Path, namespace: str) -> None:
    path = {"a_side_cidr": OTHER_CIDR, "b_side_cidr": "198.18.254.0/24"}
    done = site(tmp_path, inventory(namespace, {"vnflab_path": path}), "--tags", "lab")
    assert_rejected_before_any_change(
        done, namespace,
        f"pf-server: vnflab_path.a_side_cidr of pf-server: {OTHER_CIDR} collides with 198.18.251.1/24 on other0")


def fake_sudo(tmp_path: Path, allowed: bool) -> str:
    """A sudo that, like sudo for a user outside sudoers, refuses; or one that runs the command (we are root)."""
    path = tmp_path / ("sudo-yes" if allowed else "sudo-no")
    body = ('while [ $# -gt 0 ]; do case "$1" in -u) shift 2;; -*) shift;; *) break;; esac; done\nexec "$@"\n'
            if allowed else 'echo "core is not in the sudoers file." >&2\nexit 1\n')
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_sudo_that_works_passes(tmp_path: Path, namespace: str) -> None:
    become = {"ansible_become": True, "ansible_become_exe": fake_sudo(tmp_path, allowed=True)}
    done = site(tmp_path, inventory(namespace, become), "--tags", "preflight")
    assert done.returncode == 0, done.stdout[-6000:]


def test_no_sudo_is_rejected(tmp_path: Path, namespace: str) -> None:
    become = {"ansible_become": True, "ansible_become_exe": fake_sudo(tmp_path, allowed=False)}
    done = site(tmp_path, inventory(namespace, become), "--tags", "lab")
    assert_rejected_before_any_change(done, namespace, "pf-server: ansible_become is true but becoming root")


def bootstrap(tmp_path: Path, hosts: dict[str, object]) -> subprocess.CompletedProcess[str]:
    inventory_dir = tmp_path / "inventory"
    inventory_dir.mkdir(exist_ok=True)
    (inventory_dir / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return subprocess.run([PLAYBOOK, "-i", str(inventory_dir), "playbooks/bootstrap-flatcar.yml"], cwd=ROOT,
                          env={**os.environ, "ANSIBLE_NOCOLOR": "1"}, capture_output=True, text=True, check=False,
                          timeout=120)


def test_the_bootstrap_leaves_a_host_with_python_alone(tmp_path: Path, namespace: str) -> None:
    done = bootstrap(tmp_path, inventory(namespace))
    assert done.returncode == 0, done.stdout[-4000:]
    assert re.search(r"^pf-server +: .*changed=0 .*failed=0", done.stdout, re.MULTILINE), done.stdout[-2000:]


def test_the_bootstrap_names_a_debian_host_without_python(tmp_path: Path, namespace: str) -> None:
    done = bootstrap(tmp_path, inventory(namespace, {"ansible_python_interpreter": "/nonexistent/python3"}))
    assert done.returncode != 0
    assert "pf-server (debian) has no Python at /nonexistent/python3 (ansible_python_interpreter)" in done.stdout, \
        done.stdout[-3000:]
