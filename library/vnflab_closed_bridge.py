#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: the closed-lab forwarding rules of lab bridges, all bridges in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnflab_closed_bridge
short_description: Let frames cross lab bridges, route nothing off or onto them, and drop their IPv6
description:
  - For each bridge B, in the FORWARD chain (bridged frames traverse it when br_netfilter is loaded), IPv4 frames
    may cross B (C(-i B -o B -j ACCEPT), inserted first), nothing is routed off B or onto B (C(-i B -j DROP) and
    C(-o B -j DROP), appended), and, unless O(ipv6=false), no IPv6 crosses, leaves or enters B (the same two DROP
    rules in ip6tables). Every rule carries a comment naming it as the lab's.
  - O(state=absent) removes every such rule of the bridges, each as often as it occurs (an interrupted run may have
    added one twice).
  - One call handles every bridge. On a server where each module run costs seconds (a nested Xen dom0 under
    emulation), a task per rule and bridge was most of the lab's setup and teardown time.
version_added: "1.0.0"
options:
  bridges:
    description: Bridge names.
    type: list
    elements: str
    required: true
  state:
    description: Whether the rules are there.
    type: str
    choices: [present, absent]
    default: present
  accept_comment:
    description: Comment of the rule that lets frames cross a bridge.
    type: str
    default: vnflab path bridge
  ipv6:
    description: Also drop IPv6 across, off and onto the bridges (ip6tables).
    type: bool
    default: true
  drop_onto:
    description: Also drop IPv4 routed onto the bridges (C(-o B -j DROP)); off them is always dropped.
    type: bool
    default: true
extends_documentation_fragment:
  - vnflab_attributes
  - vnflab_attributes.check_mode_full
notes:
  - Needs root and the iptables (and, with O(ipv6), ip6tables) commands; waits for the xtables lock (C(-w)).
author: vnflab contributors
"""

EXAMPLES = r"""
- name: Path bridges are closed
  vnflab_closed_bridge:
    bridges: [vbr-docker-a, vbr-docker-b]

- name: Rules of the chain bridges an interrupted run may have left
  vnflab_closed_bridge:
    bridges: "{{ range(1, 8) | map('string') | map('regex_replace', '^', 'vbr-docker-') | list }}"
    state: absent
"""

RETURN = r"""
added:
  description: Rules added (C(iptables) or C(ip6tables), then the rule as C(-S) would print it).
  returned: always
  type: list
  elements: str
removed:
  description: Rules removed, as for RV(added).
  returned: always
  type: list
  elements: str
"""

from dataclasses import dataclass

from ansible.module_utils.basic import AnsibleModule

#: No rule is deleted more often than this in one call (a rule added this often is not the lab's doing).
MAX_COPIES = 64


@dataclass(frozen=True)
class Rule:
    """One FORWARD rule of a closed lab bridge."""

    command: str  # iptables or ip6tables
    position: str  # -I (first) or -A (last)
    match: tuple[str, ...]
    comment: str
    target: str

    def spec(self) -> list[str]:
        return ["FORWARD", *self.match, "-m", "comment", "--comment", self.comment, "-j", self.target]

    def describe(self) -> str:
        return f"{self.command} {' '.join(self.match)} -m comment --comment \"{self.comment}\" -j {self.target}"


def bridge_rules(bridge: str, accept_comment: str, ipv6: bool, drop_onto: bool) -> list[Rule]:
    rules = [Rule("iptables", "-I", ("-i", bridge, "-o", bridge), accept_comment, "ACCEPT"),
             Rule("iptables", "-A", ("-i", bridge), "vnflab closed lab", "DROP")]
    if drop_onto:
        rules.append(Rule("iptables", "-A", ("-o", bridge), "vnflab closed lab", "DROP"))
    if ipv6:
        rules += [Rule("ip6tables", "-A", ("-i", bridge), "vnflab closed lab (IPv6)", "DROP"),
                  Rule("ip6tables", "-A", ("-o", bridge), "vnflab closed lab (IPv6)", "DROP")]
    return rules


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            bridges=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            accept_comment=dict(type="str", default="vnflab path bridge"),
            ipv6=dict(type="bool", default=True),
            drop_onto=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    bad = [name for name in params["bridges"] if not name or len(name) > 15 or "/" in name or name != name.strip()]
    if bad:
        module.fail_json(msg=f"bridges: not interface names: {bad}")
    binaries = {"iptables": module.get_bin_path("iptables", required=True)}
    if params["ipv6"]:
        binaries["ip6tables"] = module.get_bin_path("ip6tables", required=True)

    def present(rule: Rule) -> bool:
        rc, _out, _err = module.run_command([binaries[rule.command], "-w", "-C", *rule.spec()])
        return rc == 0

    def apply(rule: Rule, operation: str) -> None:
        rc, _out, err = module.run_command([binaries[rule.command], "-w", operation, *rule.spec()])
        if rc != 0:
            module.fail_json(msg=f"{rule.command} {operation} {' '.join(rule.spec())}: {err.strip()}",
                             added=added, removed=removed)

    added: list[str] = []
    removed: list[str] = []
    for bridge in params["bridges"]:
        for rule in bridge_rules(bridge, params["accept_comment"], params["ipv6"], params["drop_onto"]):
            if params["state"] == "present":
                if not present(rule):
                    if not module.check_mode:
                        apply(rule, rule.position)
                    added.append(rule.describe())
                continue
            for _ in range(MAX_COPIES):
                if not present(rule):
                    break
                removed.append(rule.describe())
                if module.check_mode:
                    break
                apply(rule, "-D")
    module.exit_json(changed=bool(added or removed), added=added, removed=removed)


if __name__ == "__main__":
    main()
