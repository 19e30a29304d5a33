# Copyright: vnflab contributors
# Apache License 2.0
"""Documentation shared by the probe modules that start instances (vnf_boot_time, vnf_memory); their argument spec
is ansible.module_utils.vnflab_host.instances.INSTANCE_ARGUMENT_SPEC and their run core that module's run_instances. The
action plugin's options are documented by the vnflab_controller fragment."""

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
    description: Number of instances started together (1 to 1024, module_utils/vnflab_host/limits.py).
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
