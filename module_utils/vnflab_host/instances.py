# Copyright: vnflab contributors
# Apache License 2.0
"""The run core shared by the probe modules that start instances (vnf_boot_time, vnf_memory).

One batch: start O(count) instances through the platform driver, wait until each answers ICMP echo (or is given
up, or the deadline passes), optionally measure while they run, stop them all, and fail with a
:class:`~ansible.module_utils.vnflab_host.driver.StartError` when some instance did not start. The modules add only
what they measure (:class:`InstanceBatch` holds what the core saw); their documentation shares the
``vnflab_instances`` doc fragment, their argument specs :data:`INSTANCE_ARGUMENT_SPEC`.
"""

from __future__ import annotations

from typing import Any, Callable

from ansible.module_utils.vnflab_host.driver import StartError, failed_instances, mark_given_up
from ansible.module_utils.vnflab_host.probe_module import (
    CONTROLLER_OPTIONS,
    check_count,
    check_positive,
    instances_absent,
)

#: Options of every module that starts instances (documented in doc_fragments/vnflab_instances.py).
INSTANCE_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "driver": {"type": "dict", "required": True},
    "count": {"type": "int", "required": True},
    "timeout_s": {"type": "float"},
    "max_parallel": {"type": "int"},
    # measured: start, probe, stop (the default). absent: only stop the batch's instances (idempotent), the
    # cleanup the action plugin runs after a batch whose module died before its own stop ran.
    "state": {"type": "str", "default": "measured", "choices": ["measured", "absent"]},
    **CONTROLLER_OPTIONS,
}


def instance_checks(params: dict[str, Any]) -> list[tuple]:
    """The option checks every instance module runs before anything starts."""
    return [("count", check_count(params["count"])),
            ("timeout_s", None if params["timeout_s"] is None else check_positive(params["timeout_s"]))]


class InstanceBatch:
    """What the core saw of one batch: the driver, its instances, the prober's result and the stop errors."""

    def __init__(self, driver: Any, instances: list[Any], probe: Any, stop_errors: list[str],
                 running: Any = None) -> None:
        self.driver = driver
        self.instances = instances
        self.probe = probe
        self.stop_errors = stop_errors
        self.running = running  # what the module measured while the instances ran

    def answered(self) -> int:
        return sum(1 for inst in self.instances if self.probe.first_reply_ns.get(inst.address) is not None)


def run_instances(module: Any, make_driver: Callable[[dict[str, Any]], Any], wait_replies: Callable[..., Any],
                  poll: Callable[[Any], tuple], measure: Callable[[InstanceBatch], dict[str, Any]],
                  before_start: Callable[[], None] | None = None,
                  while_running: Callable[[Any, list[Any]], Any] | None = None) -> dict[str, Any]:
    """One batch of the module's instances; ``measure`` turns it into the result's measured keys.

    ``make_driver`` and ``wait_replies`` are the module's own names for the driver class and the prober (so that
    its tests can replace them); ``poll(driver)`` gives the prober's (poll interval in s, max requests per s);
    ``before_start`` runs before the first start, ``while_running(driver, instances)`` once every instance
    answered or was given up and all started (not after a failed start). The instances are stopped whatever
    happens; a failed start raises :class:`StartError` with the stop errors.
    """
    params = module.params
    driver = make_driver(params["driver"])
    if params["state"] == "absent":
        return instances_absent(driver, params["count"], module.check_mode)
    instances = driver.instances(params["count"])
    result: dict[str, Any] = {"changed": False, "count": len(instances), "label": driver.label}
    if module.check_mode:
        result["msg"] = "check mode: parameters valid, nothing started"
        return result
    if before_start is not None:
        before_start()
    poll_interval_s, max_pps = poll(driver)
    running = None
    pool = driver.start(instances, params["max_parallel"])
    try:
        probe = wait_replies(
            [inst.address for inst in instances],
            deadline_s=driver.boot_timeout_s(len(instances), params["timeout_s"]),
            poll_interval_s=poll_interval_s, max_pps=max_pps,
            give_up=failed_instances(driver, instances), ready=driver.ready_to_poll(instances))
        driver.wait_started(pool)
        mark_given_up(instances, probe.given_up)
        if while_running is not None and StartError.of(instances) is None:
            running = while_running(driver, instances)
    finally:
        pool.shutdown(wait=True)
        stop_errors = driver.stop(instances)
    start_error = StartError.of(instances, stop_errors)
    if start_error is not None:
        raise start_error
    result.update(measure(InstanceBatch(driver, instances, probe, stop_errors, running)))
    return result
