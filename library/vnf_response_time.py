#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: round-trip time from Host A through the proxy VNF to Host B and back."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnf_response_time
short_description: Measure the response time through a proxy VNF, next to the direct floor
description:
  - From Host A, sends echo requests to the proxy's Host A-side address; the proxy forwards them to Host B,
    whose kernel (ICMP) or echo service (UDP) answers back through the proxy.
  - The RTT of a sample is the kernel receive timestamp of the reply minus the kernel transmit timestamp of
    the request (SO_TIMESTAMPING, software), in microseconds. One request is in flight at a time.
  - Every path in O(paths) is measured sample by sample in turn (proxy, direct, proxy, ...), so the direct
    Host A - Host B floor is measured under the same conditions as the proxied path.
  - Warm-up requests (ARP, connection tracking) are sent per path and size and discarded.
  - A request without a reply within O(timeout_ms) is a lost sample, returned as null and counted.
  - Under the vnflab action plugin each size is repeated in batches until the stopping rule in O(repeat)
    holds, and every sample is appended to the controller journal as its batch returns.
version_added: "0.1.0"
author: vnflab contributors
options:
  paths:
    description:
      - Path name to IPv4 destination, e.g. C(proxy) (the proxy's Host A-side address) and C(direct)
        (Host B on the direct link). The first path is the one the stopping rule watches.
    type: dict
    required: true
  sizes:
    description: Payload sizes in bytes (ICMP or UDP payload, 1 to 65507), measured in this order.
    type: list
    elements: int
    default: [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65507]
  samples:
    description:
      - Samples per path and size in one run of the module (one batch). Under the action plugin this is
        O(repeat.batch), the name profiles use (C(vnflab_repeat.response.batch)); O(samples) is taken when the rule
        names no batch, and a task that gives both with different values fails.
    type: int
    default: 20
  warmup:
    description: Requests per path and size sent first and discarded.
    type: int
    default: 3
  interval_ms:
    description: Pause between one reply (or timeout) and the next request.
    type: float
    default: 2.0
  timeout_ms:
    description: How long to wait for a reply before the sample is lost.
    type: float
    default: 1000
  mode:
    description:
      - C(icmp) sends ICMP echo requests from a raw socket; C(udp) sends datagrams to the UDP echo service on
        Host B (O(udp_port)), which every platform, including those whose proxy relays at socket level, forwards.
    type: str
    choices: [icmp, udp]
    default: icmp
  udp_port:
    description: UDP port of the echo service on Host B.
    type: int
    default: 7007
extends_documentation_fragment:
  - vnflab_controller
  - vnflab_attributes
attributes:
  check_mode:
    support: partial
    details: Validates the parameters and sends nothing.
notes:
  - Needs root (raw sockets) on Host A.
"""

EXAMPLES = r"""
- name: RTT through the proxy and directly, three sizes
  vnf_response_time:
    paths:
      proxy: 198.18.11.1
      direct: 198.18.0.2
    sizes: [64, 1472, 65507]
    samples: 20
  register: rtt

- name: Median through the proxy at 64 bytes
  ansible.builtin.debug:
    msg: "{{ rtt.results[0].rtt_us | select('number') | sort | list }}"
"""

RETURN = r"""
results:
  description: One entry per path and size, with every sample in microseconds (null = lost).
  returned: success
  type: list
  elements: dict
  sample: [{"path": "proxy", "size": 64, "rtt_us": [36.1, 35.2], "lost": 0}]
timestamping:
  description: Clock sources of the RTTs (kernel software TX and RX timestamps, or the fallback used).
  returned: success
  type: str
  sample: tx=kernel-software rx=kernel-software
mode:
  description: Probe mode used.
  returned: always
  type: str
  sample: icmp
"""

import ipaddress

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vnflab_host.limits import DEFAULT_SIZES
from ansible.module_utils.vnflab_host.probe_module import (
    CONTROLLER_OPTIONS,
    check_between,
    check_non_negative,
    check_positive,
    check_sizes,
    run_probe_module,
)
from ansible.module_utils.vnflab_host.rtt_probe import EchoProber


def check_paths(paths: dict) -> str | None:
    if not paths:
        return "at least one path is needed"
    for name, address in paths.items():
        try:
            ipaddress.IPv4Address(str(address))
        except ValueError:
            return f"path {name!r}: {address!r} is not an IPv4 address"
    return None


def run(module: AnsibleModule) -> dict:
    params = module.params
    result: dict = {"changed": False, "mode": params["mode"]}
    if module.check_mode:
        result["msg"] = "check mode: parameters valid, nothing sent"
        return result
    entries = []
    sources = set()
    with EchoProber(mode=params["mode"], udp_port=params["udp_port"]) as prober:
        for size in params["sizes"]:
            measured = prober.measure(
                {str(k): str(v) for k, v in params["paths"].items()}, payload_bytes=size,
                samples=params["samples"], warmup=params["warmup"],
                interval_s=params["interval_ms"] / 1000.0, timeout_s=params["timeout_ms"] / 1000.0)
            sources.add(f"tx={measured.tx_source} rx={measured.rx_source}")
            lost = measured.lost()
            for path, rtts in measured.rtt_us.items():
                entries.append({"path": path, "size": size, "rtt_us": rtts, "lost": lost[path]})
    result.update(results=entries, timestamping=", ".join(sorted(sources)))
    return result


def main() -> None:
    argument_spec = dict(
        paths=dict(type="dict", required=True),
        sizes=dict(type="list", elements="int",
                   default=list(DEFAULT_SIZES)),
        samples=dict(type="int", default=20),
        warmup=dict(type="int", default=3),
        interval_ms=dict(type="float", default=2.0),
        timeout_ms=dict(type="float", default=1000.0),
        mode=dict(type="str", choices=["icmp", "udp"], default="icmp"),
        udp_port=dict(type="int", default=7007),
        **CONTROLLER_OPTIONS,
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    checks = [("sizes", check_sizes(params["sizes"])),
              ("paths", check_paths(params["paths"])),
              ("samples", None if params["samples"] >= 1 else "must be at least 1"),
              ("warmup", None if params["warmup"] >= 0 else "must be at least 0"),
              ("interval_ms", check_non_negative(params["interval_ms"])),
              ("timeout_ms", check_positive(params["timeout_ms"])),
              ("udp_port", check_between(params["udp_port"], 1, 65535))]
    run_probe_module(module, checks, run, ())


if __name__ == "__main__":
    main()
