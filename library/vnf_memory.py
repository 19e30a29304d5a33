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
extends_documentation_fragment:
  - vnflab_instances
  - vnflab_controller
  - vnflab_attributes
  - vnflab_attributes.check_mode_instances
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
from ansible.module_utils.vnflab_host.boot_probe import wait_first_replies
from ansible.module_utils.vnflab_host.driver import DriverError, PlatformDriver, server_available_mb
from ansible.module_utils.vnflab_host.instances import (
    INSTANCE_ARGUMENT_SPEC,
    InstanceBatch,
    instance_checks,
    run_instances,
)
from ansible.module_utils.vnflab_host.probe_module import check_non_negative, run_probe_module


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
    read: dict = {}

    def before_start() -> None:
        read["before"] = settled_available_mb(params["driver"], params["reads"])

    def while_running(driver: PlatformDriver, instances: list) -> list:
        time.sleep(params["settle_s"])
        read["after"] = settled_available_mb(params["driver"], params["reads"])
        return [driver.memory(inst) for inst in instances]

    def measure(batch: InstanceBatch) -> dict:
        time.sleep(params["settle_s"])
        before, after = read["before"], read["after"]
        restored = settled_available_mb(params["driver"], params["reads"])
        return {
            "available_before_mb": before,
            "available_after_mb": after,
            "available_restored_mb": restored,
            "server_used_mb": (before + restored) / 2.0 - after,
            "answered": batch.answered(),
            "probe": batch.probe.diagnostics(),
            "instances": [{"name": w.name, "pss_mb": w.pss_mb, "cgroup_mb": w.cgroup_mb,
                           "hypervisor_mb": w.hypervisor_mb} for w in batch.running],
            "stop_errors": batch.stop_errors,
        }

    return run_instances(
        module, PlatformDriver, wait_first_replies,
        poll=lambda driver: (max(0.01, driver.poll_interval_ms() / 1000.0), 5000),
        measure=measure, before_start=before_start, while_running=while_running)


def main() -> None:
    argument_spec = dict(
        settle_s=dict(type="float", default=2.0),
        reads=dict(type="int", default=5),
        **INSTANCE_ARGUMENT_SPEC,
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    # Validate everything before run(): the prober and sleep check these only after the instances started.
    checks = [*instance_checks(params),
              ("settle_s", check_non_negative(params["settle_s"])),
              ("reads", None if params["reads"] >= 1 else f"must be at least 1, got {params['reads']}")]
    run_probe_module(module, checks, run, (DriverError,))


if __name__ == "__main__":
    main()
