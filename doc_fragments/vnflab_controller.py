# Copyright: vnflab contributors
# Apache License 2.0
"""Documentation of the options the controller-side action plugin reads (module_utils/vnflab_host/probe_module.py
CONTROLLER_OPTIONS), shared by the probe modules it repeats (vnf_boot_time, vnf_memory, vnf_response_time)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  repeat:
    description:
      - Stopping rule for the action plugin (C(min_samples), C(max_samples), C(rel_half_width), C(confidence),
        C(time_budget_s), C(server_budget_s), C(budget_floor), C(max_failed_batches); response time also
        C(batch) and C(max_loss_fraction)), applied to the metric's watched quantity (C(docs/design.md); for
        response time per size, to the first path). Ignored without the action plugin.
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
"""
