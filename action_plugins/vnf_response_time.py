# Copyright: vnflab contributors
# Apache License 2.0
"""Controller side of vnf_response_time: one point per size, batches until the rule holds (vnflab.ansible_measure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleActionFail

from vnflab.ansible_measure import MeasureAction
from vnflab.records import response_records

DEFAULT_SIZES = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65507]


class ActionModule(MeasureAction):
    METRIC = "response"
    build_records = staticmethod(response_records)

    def points(self, args: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
        sizes = DEFAULT_SIZES if args.get("sizes") is None else args["sizes"]
        if not sizes:
            raise AnsibleActionFail("sizes is empty: a response-time run needs at least one size "
                                    "(vnflab_response_sizes)")
        return [(int(size), "B", {**args, "sizes": [int(size)]}) for size in sizes]

    def batch_args(self, args: dict[str, Any], repeat: Mapping[str, Any]) -> dict[str, Any]:
        batch = int(repeat.get("batch", args.get("samples", 20)))
        return {**args, "samples": batch}

    def path_down(self, first_batch: Sequence[float | None]) -> str | None:
        if first_batch and all(value is None for value in first_batch):
            return (f"no reply through the proxy to any of the first {len(first_batch)} requests: the path is down "
                    "(did its VNF server fail earlier in the run?); the batch is journaled as lost samples")
        return None
