#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: network namespaces, bridges and veth pairs of the vnflab lab."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnflab_link
short_description: Manage a lab network namespace, bridge or veth pair
description:
  - Idempotently creates or removes a network namespace (O(kind=netns)), a Linux bridge (O(kind=bridge)) or a veth
    pair (O(kind=veth)), enslaves a device to a bridge, sets IPv4 addresses and brings devices up.
  - A veth's peer can be moved into a named namespace or into the namespace of a process (a container's PID).
version_added: "0.1.0"
author: vnflab contributors
options:
  name:
    description: Name of the namespace or device (devices at most 15 characters).
    type: str
    required: true
  kind:
    description:
      - What O(name) is. C(device) is a device that must already exist (a real NIC); only its master,
        addresses, routes and link state are managed.
    type: str
    choices: [netns, bridge, veth, device]
    required: true
  state:
    description: Whether it should exist.
    type: str
    choices: [present, absent]
    default: present
  netns:
    description: Named namespace the device O(name) lives in; the current namespace when omitted.
    type: str
  master:
    description: Bridge (in the same namespace) that O(name) is enslaved to.
    type: str
  addresses:
    description: IPv4 addresses (CIDR) that O(name) must carry; others are left alone.
    type: list
    elements: str
    default: []
  mtu:
    description: MTU of the device (and of the peer of a veth).
    type: int
  peer:
    description: Name of the veth peer (O(kind=veth)).
    type: str
  peer_netns:
    description: Named namespace the veth peer is moved into.
    type: str
  peer_netns_pid:
    description: PID of a process whose network namespace receives the veth peer (e.g. a container).
    type: int
  peer_master:
    description: Bridge (in the peer's namespace) that the peer is enslaved to.
    type: str
  peer_addresses:
    description: IPv4 addresses (CIDR) the peer must carry.
    type: list
    elements: str
    default: []
  routes:
    description: IPv4 routes through O(name) that must exist (C(to) CIDR, C(via) gateway); replaced when they differ.
    type: list
    elements: dict
    default: []
    suboptions:
      to:
        description: Destination network.
        type: str
        required: true
      via:
        description: Gateway address.
        type: str
        required: true
extends_documentation_fragment:
  - vnflab_attributes
  - vnflab_attributes.check_mode_full
notes:
  - O(state=absent) with O(kind=device) never deletes the device; it removes the listed addresses and routes.
  - Removing a veth removes its peer; removing a namespace removes the devices in it once no process holds it.
"""

EXAMPLES = r"""
- name: Namespace for Host A
  vnflab_link:
    name: vnflab-a
    kind: netns

- name: Bridge on the VNF server for the Host A side of the docker proxy
  vnflab_link:
    name: vlb-docker-a
    kind: bridge

- name: Link Host A to that bridge
  vnflab_link:
    name: vla-docker
    kind: veth
    master: vlb-docker-a
    peer: a-docker
    peer_netns: vnflab-a
    peer_addresses: [198.18.11.2/24]
"""

RETURN = r"""
actions:
  description: The iproute2 commands run (or that would run in check mode).
  returned: always
  type: list
  elements: str
  sample: ["ip link add vla-docker type veth peer name a-docker"]
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vnflab_host.iproute import IpError, IpRoute, NetnsRef


class Planner:
    """Collects the commands that bring the system to the wanted state, then runs them."""

    def __init__(self, ip: IpRoute, check_mode: bool) -> None:
        self.ip = ip
        self.check_mode = check_mode
        self.actions: list[str] = []

    def do(self, where: NetnsRef, *args: str) -> None:
        self.actions.append(" ".join(where.ip(*args)))
        if not self.check_mode:
            self.ip.run(where, *args)

    def ensure_up_and_addressed(self, where: NetnsRef, name: str, master: str | None,
                                addresses: list[str], mtu: int | None, current: dict | None) -> None:
        if master and (current is None or current.get("master") != master):
            self.do(where, "link", "set", "dev", name, "master", master)
        if mtu and (current is None or current.get("mtu") != mtu):
            self.do(where, "link", "set", "dev", name, "mtu", str(mtu))
        present = self.ip.addresses(where, name) if current is not None else []
        for address in addresses:
            if address not in present:
                self.do(where, "addr", "add", address, "dev", name)
        if current is None or "UP" not in current.get("flags", []):
            self.do(where, "link", "set", "dev", name, "up")

    def ensure_route(self, where: NetnsRef, to: str, via: str, dev: str) -> None:
        if not route_matches(self.ip.routes(where, to), via, dev):
            self.do(where, "route", "replace", to, "via", via, "dev", dev)


def route_matches(entries: list[dict], via: str, dev: str) -> bool:
    return any(entry.get("gateway") == via and entry.get("dev") == dev for entry in entries)


def manage_netns(planner: Planner, params: dict) -> None:
    exists = params["name"] in planner.ip.netns_list()
    if params["state"] == "present" and not exists:
        planner.actions.append(f"ip netns add {params['name']}")
        if not planner.check_mode:
            planner.ip.netns_add(params["name"])
        where = NetnsRef(name=params["name"])
        planner.do(where, "link", "set", "dev", "lo", "up")
    elif params["state"] == "absent" and exists:
        planner.actions.append(f"ip netns delete {params['name']}")
        if not planner.check_mode:
            planner.ip.netns_delete(params["name"])


def manage_device(planner: Planner, params: dict) -> None:
    where = NetnsRef(name=params["netns"])
    current = planner.ip.link(where, params["name"])
    if params["state"] == "absent" and params["kind"] == "device":
        if current is not None:
            for route in params["routes"]:
                if route_matches(planner.ip.routes(where, route["to"]), route["via"], params["name"]):
                    planner.do(where, "route", "del", route["to"], "via", route["via"], "dev", params["name"])
            present = planner.ip.addresses(where, params["name"])
            for address in params["addresses"]:
                if address in present:
                    planner.do(where, "addr", "del", address, "dev", params["name"])
        return
    if params["state"] == "absent":
        if current is not None:
            planner.do(where, "link", "delete", "dev", params["name"])
        return
    if current is None and params["kind"] == "device":
        raise IpError(f"device {params['name']} does not exist")
    if current is None:
        if params["kind"] == "bridge":
            planner.do(where, "link", "add", "name", params["name"], "type", "bridge")
        else:
            peer_where = NetnsRef(name=params["peer_netns"], pid=params["peer_netns_pid"])
            target = peer_where.link_target() if params["peer_netns"] or params["peer_netns_pid"] else []
            planner.do(where, "link", "add", params["name"], "type", "veth", "peer", "name", params["peer"], *target)
    planner.ensure_up_and_addressed(where, params["name"], params["master"], params["addresses"],
                                    params["mtu"], current)
    if params["kind"] == "veth":
        peer_where = NetnsRef(name=params["peer_netns"], pid=params["peer_netns_pid"])
        peer = planner.ip.link(peer_where, params["peer"]) if current is not None else None
        if current is not None and peer is None:
            raise IpError(f"veth {params['name']} exists but its peer {params['peer']} is not where expected; "
                          "remove the veth and run again")
        planner.ensure_up_and_addressed(peer_where, params["peer"], params["peer_master"],
                                        params["peer_addresses"], params["mtu"], peer)
    for route in params["routes"]:
        planner.ensure_route(where, route["to"], route["via"], params["name"])


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            kind=dict(type="str", required=True, choices=["netns", "bridge", "veth", "device"]),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            netns=dict(type="str"),
            master=dict(type="str"),
            addresses=dict(type="list", elements="str", default=[]),
            mtu=dict(type="int"),
            peer=dict(type="str"),
            peer_netns=dict(type="str"),
            peer_netns_pid=dict(type="int"),
            peer_master=dict(type="str"),
            peer_addresses=dict(type="list", elements="str", default=[]),
            routes=dict(type="list", elements="dict", default=[],
                        options=dict(to=dict(type="str", required=True), via=dict(type="str", required=True))),
        ),
        required_if=[("kind", "veth", ("peer",))],
        mutually_exclusive=[("peer_netns", "peer_netns_pid")],
        supports_check_mode=True,
    )
    params = module.params
    if params["kind"] != "netns" and len(params["name"]) > 15:
        module.fail_json(msg=f"name: device names have at most 15 characters, got {params['name']!r}")

    def run(argv: list[str]) -> tuple[int, str, str]:
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    planner = Planner(IpRoute(run), module.check_mode)
    try:
        if params["kind"] == "netns":
            manage_netns(planner, params)
        else:
            manage_device(planner, params)
    except IpError as exc:
        module.fail_json(msg=str(exc), actions=planner.actions, exception=traceback.format_exc())
    module.exit_json(changed=bool(planner.actions), actions=planner.actions)


if __name__ == "__main__":
    main()
