# Copyright: vnflab contributors
# Apache License 2.0
"""Documentation shared by the probe modules that start instances (vnf_boot_time, vnf_memory); their argument spec
is ansible.module_utils.vnflab.instances.INSTANCE_ARGUMENT_SPEC and their run core that module's run_instances."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  driver:
    description:
      - The platform driver specification published by the platform role as the fact C(vnflab_driver).
      - See C(docs/design.md) for its keys.
    type: dict
    required: true
  count:
    description: Number of instances started together (1 to 1024, module_utils/vnflab/limits.py).
    type: int
    required: true
  timeout_s:
    description:
      - Seconds to wait for all instances to answer ICMP echo; an instance that has not answered by then is
        recorded as lost.
      - Default from the driver's C(probe) key, C(boot_timeout_s) + C(boot_timeout_per_instance_s) x O(count)
        (300 s when the driver says nothing).
    type: float
  max_parallel:
    description: How many start commands run at once; all of them (O(count)) by default.
    type: int
  repeat:
    description:
      - Stopping rule for the action plugin (C(min_samples), C(max_samples), C(rel_half_width), C(confidence),
        C(time_budget_s), C(server_budget_s), C(budget_floor), C(max_failed_batches)), applied to the metric's
        watched quantity (C(docs/design.md)).
        Ignored without the action plugin.
    type: dict
  journal:
    description:
      - Where the action plugin appends samples on the controller (C(path)) and the record fields it adds
        (C(run_id), C(platform), C(label)). Ignored without the action plugin.
    type: dict
  points_after:
    description:
      - How many points of this metric the task's later loop items measure on this server; with
        C(repeat.server_budget_s) the action plugin shares what the budget has left among this task's points
        and those. Ignored without the action plugin.
    type: int
    default: 0
  state:
    description:
      - C(measured) starts, measures and stops the instances.
      - C(absent) only runs the stop command of each of the O(count) instances of a batch (their names are
        fixed by the driver), reporting errors rather than failing. The action plugin runs it after a batch
        whose module failed without reporting a failed start (e.g. its process died in the middle), so the
        instances it left do not run on under the next point.
      - C(changed) is then true when some stop command succeeded (the platform may not say whether the
        instance was there).
    type: str
    choices: [measured, absent]
    default: measured
"""
