#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: a service chain of k proxy VNFs in series on one server, its boot time and its response time."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnf_chain
short_description: Start a chain of k proxy VNFs on a server, time its boot and measure the RTT through it
description:
  - One chain of length k is measured in parts on three hosts (playbooks/chain.yml).
  - O(part=first_echo) runs on Host A, asynchronously (C(async) with C(poll) 0), before the chain starts. It sends
    echo requests to O(target) (the chain's first hop, Host A side), one at a time, each waiting O(wait_ms) for its
    reply, until the first reply (for at most O(timeout_s)); it returns when it was sent and when it came back.
  - O(part=start) runs on the VNF server. It runs the platform driver's optional C(chain.start) argv once per hop of
    O(hops), with the hop's name and options appended, the last hop first (the first hop, Host A's entry, last),
    and returns when the first command began. A driver without
    C(chain), or a start command that exits 3 (the mechanism cannot run here), returns C(skipped_reason).
  - O(part=rtt) runs on Host A once the chain answers. It measures O(samples) RTTs per size in O(sizes) through the
    chain from O(source) (the address Host A's requests come from), with the response probe's clock (kernel TX and
    RX timestamps).
  - O(part=stop) runs on the VNF server and runs C(chain.stop) with each name in O(names).
  - O(part=record) runs on the controller (the action plugin) and journals the chain's samples (metric C(chain),
    quantities C(boot_chain_ms), C(rtt_chain_us) per size), or one skipped sample with the reason.
version_added: "0.2.0"
author: vnflab contributors
options:
  part:
    description: Which part of the chain measurement this task runs.
    type: str
    choices: [first_echo, start, rtt, stop, record]
    required: true
  target:
    description: O(part=first_echo), O(part=rtt) IPv4 address of the chain's first hop on the Host A side.
    type: str
  source:
    description: O(part=first_echo), O(part=rtt) Host A's address the requests are sent from (its chain address).
    type: str
  mode:
    description: C(icmp) echo, or C(udp) to the echo service on Host B.
    type: str
    choices: [icmp, udp]
    default: icmp
  udp_port:
    description: UDP port of Host B's echo service.
    type: int
    default: 7007
  timeout_s:
    description: O(part=first_echo) longest wait for the first reply; O(part=start), O(part=stop) bound of one command.
    type: float
    default: 120.0
  wait_ms:
    description: O(part=first_echo) how long each request waits for its reply (the boot time's resolution).
    type: float
    default: 10.0
  sizes:
    description: O(part=rtt) payload sizes in bytes.
    type: list
    elements: int
    default: [64, 1472]
  samples:
    description: O(part=rtt) RTT samples per size.
    type: int
    default: 20
  driver:
    description: O(part=start), O(part=stop) the platform driver (the fact C(vnflab_driver)).
    type: dict
  hops:
    description: O(part=start) the chain's hops, in order (the filter C(vnflab_chain_hops)).
    type: list
    elements: dict
  names:
    description: O(part=stop) names of the hops to stop.
    type: list
    elements: str
  length:
    description: O(part=record) k, the chain's length.
    type: int
  echo:
    description: O(part=record) the first_echo part's result.
    type: dict
  started:
    description: O(part=record) the start part's result.
    type: dict
  rtt:
    description: O(part=record) the rtt part's result.
    type: dict
  skipped_reason:
    description: O(part=record) why this chain was not measured (journaled as one skipped sample).
    type: str
  repetition:
    description: O(part=record) repetition number.
    type: int
    default: 0
  journal:
    description: O(part=record) controller journal settings (path, run_id, platform, label).
    type: dict
extends_documentation_fragment:
  - vnflab_attributes
attributes:
  check_mode:
    support: partial
    details: Validates the parameters; starts, stops and sends nothing.
notes:
  - Needs root on Host A (raw sockets) and on the server (the hops' devices).
"""

EXAMPLES = r"""
- name: Start a chain of two hops
  vnf_chain:
    part: start
    driver: "{{ vnflab_driver }}"
    hops: "{{ vnflab_path | vnflab_chain_hops(vnflab_chain_cidr, 2, vnflab_platform) }}"
  register: started

- name: RTT through it at 64 and 1472 bytes
  vnf_chain:
    part: rtt
    target: 198.18.11.3
    source: 198.18.11.4
    sizes: [64, 1472]
"""

RETURN = r"""
start_ns:
  description: O(part=start) CLOCK_REALTIME (ns) when the first start command began.
  returned: success
  type: int
started:
  description: O(part=start) names of the hops whose start command succeeded.
  returned: success
  type: list
  elements: str
skipped_reason:
  description: O(part=start) why the chain cannot run on this server, else null.
  returned: success
  type: str
reply_ns:
  description: O(part=first_echo) CLOCK_REALTIME (ns) of the first reply through the chain, null if none came.
  returned: success
  type: int
results:
  description: O(part=rtt) one entry per size with every RTT in microseconds (null = lost).
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vnflab_host.chain import first_echo, start_chain, stop_chain
from ansible.module_utils.vnflab_host.probe_module import check_positive, check_sizes, run_probe_module
from ansible.module_utils.vnflab_host.rtt_probe import EchoProber


def run(module: AnsibleModule) -> dict:
    params = module.params
    part = params["part"]
    if module.check_mode:
        return {"changed": False, "msg": "check mode: parameters valid, nothing started or sent"}
    if part == "first_echo":
        echo = first_echo(params["target"], timeout_s=params["timeout_s"], mode=params["mode"],
                          bind_address=params["source"], wait_s=params["wait_ms"] / 1000.0)
        return {"changed": False, **echo.as_dict()}
    if part == "rtt":
        entries = []
        with EchoProber(mode=params["mode"], udp_port=params["udp_port"], bind_address=params["source"]) as prober:
            for size in params["sizes"]:
                measured = prober.measure({"chain": params["target"]}, payload_bytes=size,
                                          samples=params["samples"], warmup=3, interval_s=0.002, timeout_s=1.0)
                entries.append({"size": size, "rtt_us": measured.rtt_us["chain"],
                                "lost": measured.lost()["chain"]})
        return {"changed": False, "results": entries, "mode": params["mode"]}
    driver = params["driver"] or {}
    if part == "stop":
        if not driver.get("chain"):
            return {"changed": False}
        errors = stop_chain(driver, params["names"] or [], timeout_s=params["timeout_s"])
        if errors:
            module.fail_json(msg="chain stop failed: " + "; ".join(errors))
        return {"changed": bool(params["names"])}
    if not driver.get("chain"):
        return {"changed": False,
                "skipped_reason": f"not implemented: the driver of platform {driver.get('name', '?')} has no chain key"}
    outcome = start_chain(driver, params["hops"] or [], timeout_s=params["timeout_s"])
    if outcome.error is not None:
        module.fail_json(msg=f"chain start failed: {outcome.error}", **outcome.as_dict())
    return {"changed": bool(outcome.started), **outcome.as_dict()}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            part=dict(type="str", choices=["first_echo", "start", "rtt", "stop", "record"], required=True),
            target=dict(type="str"),
            source=dict(type="str"),
            mode=dict(type="str", choices=["icmp", "udp"], default="icmp"),
            udp_port=dict(type="int", default=7007),
            timeout_s=dict(type="float", default=120.0),
            wait_ms=dict(type="float", default=10.0),
            sizes=dict(type="list", elements="int", default=[64, 1472]),
            samples=dict(type="int", default=20),
            driver=dict(type="dict"),
            hops=dict(type="list", elements="dict"),
            names=dict(type="list", elements="str"),
            length=dict(type="int"),
            echo=dict(type="dict"),
            started=dict(type="dict"),
            rtt=dict(type="dict"),
            skipped_reason=dict(type="str"),
            repetition=dict(type="int", default=0),
            journal=dict(type="dict"),
        ),
        required_if=[("part", "first_echo", ("target",)), ("part", "rtt", ("target",)),
                     ("part", "start", ("driver", "hops")), ("part", "stop", ("driver",))],
        supports_check_mode=True,
    )
    params = module.params
    checks = [
        ("part", "record runs on the controller (action plugin vnf_chain)" if params["part"] == "record" else None),
        ("timeout_s", check_positive(params["timeout_s"])),
        ("wait_ms", None if params["wait_ms"] >= 1 else "must be at least 1"),
        ("sizes", check_sizes(params["sizes"])),
        ("samples", None if params["samples"] >= 1 else "must be at least 1"),
    ]
    run_probe_module(module, checks, run, (ValueError,))


if __name__ == "__main__":
    main()
