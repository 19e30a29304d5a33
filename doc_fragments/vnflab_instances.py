# Copyright: vnflab contributors
# Apache License 2.0
"""Documentation shared by the probe modules that start instances (vnf_boot_time, vnf_memory)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
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
