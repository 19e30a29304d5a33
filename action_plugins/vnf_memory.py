# Copyright: vnflab contributors
# Apache License 2.0
"""Controller side of vnf_memory: repeat the point and journal every sample (vnflab.measure.ansible_measure)."""

from __future__ import annotations

from typing import Any

from vnflab.measure.ansible_measure import MeasureAction
from vnflab.metrics import MEMORY


class ActionModule(MeasureAction):
    STOPS_LEFTOVERS = True
    METRIC = MEMORY.name

    def points(self, args: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
        return [(int(args["count"]), MEMORY.x_unit, args)]
