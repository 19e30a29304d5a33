#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: boot time of N VNF instances started together."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnf_boot_time
short_description: Measure the boot time of N VNF instances started at once
description:
  - Starts O(count) instances of a platform concurrently through the platform driver, then polls every
    instance address with ICMP echo requests from this host until each answers.
  - T0 of an instance is the moment its start command is issued (CLOCK_REALTIME, ns); T1 is the kernel
    receive timestamp of the first ICMP echo reply from its address. The boot time of the instance is
    T1 - T0; the time for all is the last T1 minus the first T0.
  - Stops every instance afterwards, also when the measurement fails.
  - Under the vnflab action plugin the point is repeated on the controller until the stopping rule in
    O(repeat) holds, and every sample is appended to O(journal) on the controller as it arrives.
version_added: "0.1.0"
author: vnflab contributors
options:
  poll_interval_ms:
    description:
      - Interval between echo requests to one pending address, which bounds the resolution of T1.
      - When O(count) pending addresses at this interval would exceed O(max_pps), the interval grows to
        count / max_pps; the effective value is returned.
      - Default from the driver's C(probe.poll_interval_ms) (1 ms when the driver says nothing).
    type: float
  max_pps:
    description: Upper bound on echo requests per second sent by the prober.
    type: int
    default: 20000
extends_documentation_fragment:
  - vnflab_instances
  - vnflab_controller
  - vnflab_attributes
  - vnflab_attributes.check_mode_instances
notes:
  - Needs root (raw ICMP socket) on the host that runs it, normally the VNF server.
  - Set C(net.ipv4.neigh.IFACE.retrans_time_ms) low (e.g. 10) on the interface toward the instances, or ARP
    retries round boot times up to whole seconds; the platform roles do this.
"""

EXAMPLES = r"""
- name: Boot time of 8 proxy containers
  vnf_boot_time:
    driver: "{{ vnflab_driver }}"
    count: 8
  register: boot

- name: Show the time until all 8 answered
  ansible.builtin.debug:
    msg: "{{ boot.all_ms }} ms"
"""

RETURN = r"""
count:
  description: Number of instances started.
  returned: always
  type: int
  sample: 8
label:
  description: Result label of the platform (engine/image (accelerator, real|stand-in)).
  returned: always
  type: str
  sample: docker/debian-iptables (native, stand-in for CoreOS)
all_ms:
  description: Last T1 minus first T0 in milliseconds; null if some instance never answered.
  returned: success
  type: float
  sample: 3104.2
boot_ms:
  description: T1 - T0 of every instance in milliseconds, in instance order; null for an instance that never answered.
  returned: success
  type: list
  elements: float
  sample: [402.1, 455.3]
instances:
  description: Per instance name, address, boot_ms and the start command's error (empty when it started).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "vnflab-docker-0", "address": "198.19.8.2", "boot_ms": 402.1, "start_error": ""}]
poll_interval_ms:
  description: Effective interval between echo requests to one pending address (the resolution of T1).
  returned: success
  type: float
  sample: 1.0
rx_timestamps:
  description: Source of the T1 timestamps (kernel software receive timestamps, or the fallback used).
  returned: success
  type: str
  sample: kernel-software
probe:
  description:
    - How the prober ran and why it stopped; the controller journals it per batch in C(batches.jsonl).
    - C(ended) is C(all answered), C(gave up) (the driver's health check, asked every 5 s and once more at the
      deadline, found the others dead; they are in C(given_up) with the reason) or C(deadline);
      C(late_replies) counts first replies timestamped after the deadline (not counted); C(clock_glitches)
      counts monotonic clock reads found bad (back in time, no number, or a leap the next read contradicted;
      the probe went on; the first few are in C(clock_glitch_reads)).
  returned: success
  type: dict
  sample:
    ended: all answered
    elapsed_s: 1.84
    started_ns: 1764000000000000000
    deadline_ns: 1764000300000000000
    requests_sent: 3650
    send_errors: {EHOSTUNREACH: 12}
    late_replies: 0
    clock_glitches: 0
    clock_glitch_reads: []
    given_up: {}
    rx_source: kernel-software
    poll_interval_s: 0.001
stop_errors:
  description: Errors reported while stopping the instances (empty when all stopped).
  returned: success
  type: list
  elements: str
  sample: []
"""


from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vnflab_host.boot_probe import wait_first_replies
from ansible.module_utils.vnflab_host.driver import DriverError, PlatformDriver
from ansible.module_utils.vnflab_host.instances import (
    INSTANCE_ARGUMENT_SPEC,
    InstanceBatch,
    instance_checks,
    run_instances,
)
from ansible.module_utils.vnflab_host.probe_module import MAX_PPS, check_between, check_positive, run_probe_module

NS_PER_MS = 1e6


def boot_times_ms(start_ns: list[int], reply_ns: list[int | None]) -> tuple[list[float | None], float | None]:
    """Per-instance T1 - T0 and last T1 - first T0, in ms (None where no reply came)."""
    per_instance = [None if t1 is None else (t1 - t0) / NS_PER_MS for t0, t1 in zip(start_ns, reply_ns)]
    if not start_ns or any(t1 is None for t1 in reply_ns):
        return per_instance, None
    return per_instance, (max(t1 for t1 in reply_ns if t1 is not None) - min(start_ns)) / NS_PER_MS


def boot_result(batch: InstanceBatch) -> dict:
    """The boot times of one batch, from the instances' start and first-reply times."""
    instances, probe = batch.instances, batch.probe
    per_instance, all_ms = boot_times_ms([inst.start_ns for inst in instances],
                                         [probe.first_reply_ns.get(inst.address) for inst in instances])
    return {
        "all_ms": all_ms,
        "boot_ms": per_instance,
        "instances": [{"name": inst.name, "address": inst.address, "boot_ms": ms, "start_error": inst.start_error}
                      for inst, ms in zip(instances, per_instance)],
        "poll_interval_ms": probe.poll_interval_s * 1000.0,
        "rx_timestamps": probe.rx_source,
        "probe": probe.diagnostics(),
        "stop_errors": batch.stop_errors,
    }


def run(module: AnsibleModule) -> dict:
    params = module.params
    return run_instances(
        module, PlatformDriver, wait_first_replies,
        poll=lambda driver: (driver.poll_interval_ms(params["poll_interval_ms"]) / 1000.0, params["max_pps"]),
        measure=boot_result)


def main() -> None:
    argument_spec = dict(
        poll_interval_ms=dict(type="float"),
        max_pps=dict(type="int", default=20000),
        **INSTANCE_ARGUMENT_SPEC,
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    # Validate everything before run(): the prober checks these only after the instances started.
    checks = [*instance_checks(params),
              ("poll_interval_ms",
               None if params["poll_interval_ms"] is None else check_positive(params["poll_interval_ms"])),
              ("max_pps", check_between(params["max_pps"], 1, MAX_PPS))]
    run_probe_module(module, checks, run, (DriverError,))


if __name__ == "__main__":
    main()
