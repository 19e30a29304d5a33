# Copyright: vnflab contributors
# Apache License 2.0
"""Controller side of vnf_boot_time: repeat the point and journal every sample (vnflab.measure.ansible_measure)."""

from __future__ import annotations

from typing import Any

from vnflab.measure.ansible_measure import MeasureAction
from vnflab.metrics import BOOT


class ActionModule(MeasureAction):
    STOPS_LEFTOVERS = True
    METRIC = BOOT.name

    def points(self, args: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
        return [(int(args["count"]), BOOT.x_unit, args)]
