#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: VNF-server memory before and after N instances."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnf_memory
short_description: Measure VNF-server memory consumed by N VNF instances
description:
  - Reads the memory available on the VNF server, starts O(count) instances through the platform driver,
    waits until every instance answers ICMP echo and for O(settle_s) more, reads the available memory again
    and the memory of each instance, then stops the instances.
  - After the instances stop and O(settle_s) passes, the available memory is read a third time. The server's
    use is the mean of the reads before start and after stop minus the read with the instances running, which
    cancels a linear drift of the machine's memory (page cache, other processes) over the measurement.
  - The server's view is C(MemAvailable) of C(/proc/meminfo) before minus after, unless the driver names its own
    command (a Xen driver reads the hypervisor's free memory).
  - The instance's view is the proportional set size (PSS, C(/proc/PID/smaps_rollup)) of the instance's processes, the
    instance's own memory cgroup usage where it has one (containers), and the hypervisor's figure where the
    driver names one.
  - Under the vnflab action plugin the point is repeated and journaled on the controller (see O(repeat)).
version_added: "0.1.0"
author: vnflab contributors
options:
  driver:
    description: The platform driver specification (the fact C(vnflab_driver) of the platform role).
    type: dict
    required: true
  count:
    description: Number of instances (1 to 1024).
    type: int
    required: true
  settle_s:
    description: Seconds to wait after the last instance answered, and after they stopped, before reading memory.
    type: float
    default: 2.0
  reads:
    description:
      - The server's available memory is read this many times, 0.1 s apart, before and after the instances
        start; the median of each set counts.
    type: int
    default: 5
  timeout_s:
    description:
      - Seconds to wait for all instances to answer.
      - Default from the driver's C(probe) key, as for M(vnf_boot_time) (300 s when the driver says nothing).
    type: float
  max_parallel:
    description: How many start commands run at once; all of them by default.
    type: int
  repeat:
    description: Stopping rule for the action plugin, applied to the server's used memory. Ignored without it.
    type: dict
  journal:
    description: Controller journal settings for the action plugin. Ignored without it.
    type: dict
  points_after:
    description:
      - How many points of this metric the task's later loop items measure on this server; with
        C(repeat.server_budget_s) the action plugin shares what the budget has left among this task's points
        and those. Ignored without the action plugin.
    type: int
    default: 0
extends_documentation_fragment:
  - vnflab_instances
attributes:
  check_mode:
    support: partial
    details: Validates the driver and parameters and starts nothing.
  diff_mode:
    support: none
notes:
  - Needs root on the VNF server (raw ICMP socket, other processes' smaps_rollup).
  - Memory figures are in MB of 2**20 bytes.
"""

EXAMPLES = r"""
- name: Memory of 16 proxy containers
  vnf_memory:
    driver: "{{ vnflab_driver }}"
    count: 16
  register: mem

- name: Show what the server lost
  ansible.builtin.debug:
    msg: "{{ mem.server_used_mb }} MB for 16 instances"
"""

RETURN = r"""
count:
  description: Number of instances started.
  returned: always
  type: int
  sample: 16
label:
  description: Result label of the platform.
  returned: always
  type: str
  sample: docker/debian-iptables (native, stand-in for CoreOS)
available_before_mb:
  description: Memory available on the server before the instances started, in MB.
  returned: success
  type: float
  sample: 23011.4
available_after_mb:
  description: Memory available on the server with the instances running, in MB.
  returned: success
  type: float
  sample: 22940.1
available_restored_mb:
  description: Memory available on the server after the instances stopped, in MB.
  returned: success
  type: float
  sample: 23009.8
server_used_mb:
  description: Mean of available_before_mb and available_restored_mb, minus available_after_mb.
  returned: success
  type: float
  sample: 71.3
answered:
  description: How many instances answered ICMP echo before the memory was read.
  returned: success
  type: int
  sample: 16
probe:
  description:
    - How the wait for the instances' first echo replies ran and why it stopped (see M(vnf_boot_time)'s C(probe));
      the controller journals it per batch in C(batches.jsonl).
  returned: success
  type: dict
  sample: {ended: all answered, elapsed_s: 2.1, late_replies: 0, clock_glitches: 0}
instances:
  description: Per instance name, pss_mb, cgroup_mb and hypervisor_mb (null where the platform has no such figure).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "vnflab-docker-0", "pss_mb": 2.6, "cgroup_mb": 0.4, "hypervisor_mb": null}]
stop_errors:
  description: Errors reported while stopping the instances.
  returned: success
  type: list
  elements: str
  sample: []
"""

import statistics
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vnflab.boot_prober import wait_first_replies
from ansible.module_utils.vnflab.driver import (
    DriverError,
    PlatformDriver,
    StartError,
    failed_instances,
    mark_given_up,
    server_available_mb,
)
from ansible.module_utils.vnflab.moduledoc import (
    CONTROLLER_OPTIONS,
    INSTANCE_OPTIONS,
    check_count,
    check_non_negative,
    check_positive,
    instances_absent,
    run_probe_module,
)


def settled_available_mb(spec: dict, reads: int, spacing_s: float = 0.1) -> float:
    """Median of several reads of the server's available memory, 0.1 s apart (damps transient allocations)."""
    values = []
    for index in range(reads):
        if index:
            time.sleep(spacing_s)
        values.append(server_available_mb(spec))
    return statistics.median(values)


def run(module: AnsibleModule) -> dict:
    params = module.params
    driver = PlatformDriver(params["driver"])
    if params["state"] == "absent":
        return instances_absent(driver, params["count"], module.check_mode)
    instances = driver.instances(params["count"])
    result: dict = {"changed": False, "count": len(instances), "label": driver.label}
    if module.check_mode:
        result["msg"] = "check mode: parameters valid, nothing started"
        return result
    before = settled_available_mb(params["driver"], params["reads"])
    pool = driver.start(instances, params["max_parallel"])
    try:
        probe = wait_first_replies(
            [inst.address for inst in instances], deadline_s=driver.boot_timeout_s(len(instances), params["timeout_s"]),
            poll_interval_s=max(0.01, driver.poll_interval_ms() / 1000.0), max_pps=5000,
            give_up=failed_instances(driver, instances), ready=driver.ready_to_poll(instances))
        driver.wait_started(pool)
        mark_given_up(instances, probe.given_up)
        start_error = StartError.of(instances)
        if start_error is None:
            time.sleep(params["settle_s"])
            after = settled_available_mb(params["driver"], params["reads"])
            weights = [driver.memory(inst) for inst in instances]
    finally:
        pool.shutdown(wait=True)
        stop_errors = driver.stop(instances)
    if start_error is not None:
        raise StartError.of(instances, stop_errors) or start_error  # with the stop errors, if any
    time.sleep(params["settle_s"])
    restored = settled_available_mb(params["driver"], params["reads"])
    result.update(
        available_before_mb=before,
        available_after_mb=after,
        available_restored_mb=restored,
        server_used_mb=(before + restored) / 2.0 - after,
        answered=sum(1 for inst in instances if probe.first_reply_ns.get(inst.address) is not None),
        probe=probe.diagnostics(),
        instances=[{"name": w.name, "pss_mb": w.pss_mb, "cgroup_mb": w.cgroup_mb, "hypervisor_mb": w.hypervisor_mb}
                   for w in weights],
        stop_errors=stop_errors,
    )
    return result


def main() -> None:
    argument_spec = dict(
        driver=dict(type="dict", required=True),
        count=dict(type="int", required=True),
        settle_s=dict(type="float", default=2.0),
        reads=dict(type="int", default=5),
        timeout_s=dict(type="float"),
        max_parallel=dict(type="int"),
        **INSTANCE_OPTIONS,
        **CONTROLLER_OPTIONS,
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    # Validate everything before run(): the prober and sleep check these only after the instances started.
    checks = [("count", check_count(params["count"])),
              ("timeout_s", None if params["timeout_s"] is None else check_positive(params["timeout_s"])),
              ("settle_s", check_non_negative(params["settle_s"])),
              ("reads", None if params["reads"] >= 1 else f"must be at least 1, got {params['reads']}")]
    run_probe_module(module, checks, run, (DriverError,))


if __name__ == "__main__":
    main()
