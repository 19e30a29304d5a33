#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: are N instances started "together" really started concurrently?"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnf_start_concurrency
short_description: Time N instance starts through the driver, concurrently and one after the other
description:
  - Starts O(count) instances through the platform driver as the boot and memory probes do (at most the driver's
    C(max_parallel) at once), waits until every start command returned, stops them; then starts the same
    instances with one start command at a time (the platform's own start command in a loop), and stops them.
  - Returns both wall times and their ratio. A ratio near 1 means the platform (or its driver) serializes
    starts; the benchmark records it per platform (scripts/bench-concurrency.sh).
  - Measures the start commands only, not the boot; nothing waits for an instance to answer.
version_added: "0.3.0"
author: vnflab contributors
options:
  driver:
    description: The platform driver specification (the fact C(vnflab_driver) of the platform role).
    type: dict
    required: true
  count:
    description: Number of instances (2 to 1024).
    type: int
    default: 32
  rounds:
    description: How many times each way is timed; the medians count.
    type: int
    default: 1
extends_documentation_fragment:
  - vnflab_attributes
  - vnflab_attributes.check_mode_instances
notes:
  - Stops every instance it started, also when a start fails (then it fails, naming the instance).
"""

EXAMPLES = r"""
- name: Concurrency of 32 starts
  vnf_start_concurrency:
    driver: "{{ vnflab_driver }}"
    count: 32
  register: concurrency
"""

RETURN = r"""
concurrent_s:
  description: Median wall time from the first start command to the last one's return, starts issued together.
  returned: success
  type: float
  sample: 4.2
sequential_s:
  description: Median wall time of the same starts one after the other.
  returned: success
  type: float
  sample: 12.9
ratio:
  description: concurrent_s / sequential_s (target at most 0.6 for Docker and QEMU, issue 19).
  returned: success
  type: float
  sample: 0.33
max_parallel:
  description: How many start commands the concurrent way ran at once (the driver's max_parallel, else all).
  returned: success
  type: int
  sample: 32
label:
  description: The driver's label.
  returned: always
  type: str
  sample: docker/debian12-iptables (native, stand-in for CoreOS)
"""

import statistics
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vnflab_host.driver import DriverError, PlatformDriver, StartError
from ansible.module_utils.vnflab_host.probe_module import check_count, run_probe_module

clock = time.monotonic


def timed_start(driver: PlatformDriver, count: int, max_parallel: int | None) -> float:
    """Seconds until every start command returned; the instances are stopped again before returning."""
    instances = driver.instances(count)
    started = clock()
    pool = driver.start(instances, max_parallel)
    try:
        driver.wait_started(pool)
        elapsed = clock() - started
    finally:
        stop_errors = driver.stop(instances)
    error = StartError.of(instances, stop_errors)
    if error is not None:
        raise error
    return elapsed


def run(module: AnsibleModule) -> dict:
    params = module.params
    driver = PlatformDriver(params["driver"])
    count = params["count"]
    workers = max(1, min(count, int(params["driver"].get("max_parallel") or 0) or count))
    result: dict = {"changed": False, "label": driver.label, "count": count, "max_parallel": workers}
    if module.check_mode:
        driver.instances(count)
        result["msg"] = "check mode: parameters valid, nothing started"
        return result
    together = [timed_start(driver, count, None) for _ in range(params["rounds"])]
    one_by_one = [timed_start(driver, count, 1) for _ in range(params["rounds"])]
    concurrent_s, sequential_s = statistics.median(together), statistics.median(one_by_one)
    result.update(concurrent_s=round(concurrent_s, 3), sequential_s=round(sequential_s, 3),
                  ratio=round(concurrent_s / sequential_s, 3) if sequential_s > 0 else None,
                  concurrent_rounds_s=[round(v, 3) for v in together],
                  sequential_rounds_s=[round(v, 3) for v in one_by_one])
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=dict(driver=dict(type="dict", required=True),
                                              count=dict(type="int", default=32),
                                              rounds=dict(type="int", default=1)),
                           supports_check_mode=True)
    params = module.params
    checks = [("count", check_count(params["count"]) or (None if params["count"] >= 2 else "must be at least 2")),
              ("rounds", None if params["rounds"] >= 1 else f"must be at least 1, got {params['rounds']}")]
    run_probe_module(module, checks, run, (DriverError,))


if __name__ == "__main__":
    main()
