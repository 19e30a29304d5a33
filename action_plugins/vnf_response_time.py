# Copyright: vnflab contributors
# Apache License 2.0
"""Controller side of vnf_response_time: one point per size, batches until the rule holds
(vnflab.measure.ansible_measure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleActionFail

from vnflab.limits import MAX_LOSS_FRACTION
from vnflab.measure.ansible_measure import MeasureAction
from vnflab.metrics import RESPONSE


class ActionModule(MeasureAction):
    METRIC = RESPONSE.name

    def points(self, args: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
        sizes = list(RESPONSE.default_xs) if args.get("sizes") is None else args["sizes"]
        if not sizes:
            raise AnsibleActionFail("sizes is empty: a response-time run needs at least one size "
                                    "(vnflab_response_sizes)")
        return [(int(size), RESPONSE.x_unit, {**args, "sizes": [int(size)]}) for size in sizes]

    def batch_args(self, args: dict[str, Any], repeat: Mapping[str, Any]) -> dict[str, Any]:
        """repeat.batch is the samples of one batch; the module's samples is the same setting, taken when the rule
        names no batch. Both, with different values, fail."""
        batch, samples = repeat.get("batch"), args.get("samples")
        if batch is not None and samples is not None and int(batch) != int(samples):
            raise AnsibleActionFail(f"samples ({samples}) and repeat.batch ({batch}) are one setting, the samples of "
                                    "one batch: give repeat.batch (vnflab_repeat.response.batch) alone")
        chosen = batch if batch is not None else samples if samples is not None else RESPONSE.batch_samples
        return {**args, "samples": int(chosen)}

    def judge_batch(self, point_values: Sequence[float | None], batch_values: Sequence[float | None],
                    repeat: Mapping[str, Any], point: str, first_of_task: bool) -> str | None:
        """Every batch: no reply at all through the proxy (down from the start, or died during the run) stops the
        task at once; a point whose loss so far exceeds repeat.max_loss_fraction (default 5%) fails, naming it."""
        if batch_values and all(value is None for value in batch_values):
            when = "the first" if first_of_task else "a batch of"
            return (f"{point}: no reply through the proxy to any of {when} {len(batch_values)} requests: the path is "
                    "down (did its VNF server or proxy fail?); the batch is journaled as lost samples")
        threshold = float(repeat.get("max_loss_fraction", MAX_LOSS_FRACTION))
        lost = sum(value is None for value in point_values)
        if point_values and lost / len(point_values) > threshold:
            return (f"{point}: {lost} of {len(point_values)} requests through the proxy lost "
                    f"({100 * lost / len(point_values):.1f}%), more than vnflab_repeat.response.max_loss_fraction "
                    f"({100 * threshold:g}%); the samples are journaled")
        return None
