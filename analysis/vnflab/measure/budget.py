"""A metric's time on one server, shared by its points: ``vnflab_repeat.<metric>.server_budget_s``.

A per-point ``time_budget_s`` bounds each point alone, so a sweep's time grows with its number of points and
the main job's length cannot be set. A server budget bounds the sweep: each point may use an equal share of
what the metric has left on that server,

    share = (server_budget_s - time the metric's finished points took on the server) / points left,

so a point that converged early leaves its time to the later, costlier ones (a larger N), and the last point
gets whatever is left. The point's budget is that share, or ``time_budget_s`` when that is smaller. Once the
share is spent, a point still measures its ``budget_floor`` (two values by default: the fewest an interval
needs), and the report flags it as ended by the budget, with the values the 95% CI would have needed.

The time spent is read from ``points.jsonl`` (each finished point's ``elapsed_s``), so a resumed run charges
the points measured before the kill.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vnflab.measure.records import PointKey
from vnflab.measure.resume import matching_records

#: The budget a point gets once the server's share is spent: it ends at its floor.
SPENT_S = 0.001

#: The fields that say which points share one budget: one metric of one platform's label on one host.
SHARED_BY = ("run_id", "platform", "label", "metric", "host")


@dataclass(frozen=True)
class ServerBudget:
    """The time one metric may take on one server, all its points together."""

    total_s: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.total_s) and self.total_s > 0):
            raise ValueError(f"server_budget_s must be > 0 when set, got {self.total_s}")

    def point_budget_s(self, spent_s: float, points_left: int, point_cap_s: float | None = None) -> float:
        """This point's budget: an equal share of what is left (this point included in ``points_left``),
        no more than ``point_cap_s``; :data:`SPENT_S` once nothing is left."""
        if points_left < 1:
            raise ValueError(f"points_left must be >= 1, got {points_left}")
        share = max((self.total_s - spent_s) / points_left, SPENT_S)
        return share if point_cap_s is None else min(share, point_cap_s)


def server_budget(repeat: Mapping[str, Any] | None) -> ServerBudget | None:
    """The ``server_budget_s`` of a metric's repeat settings, or None when it has none."""
    value = (repeat or {}).get("server_budget_s")
    if value is None:
        return None
    try:
        return ServerBudget(float(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"repeat.server_budget_s: {exc}") from exc


def time_spent_s(points_path: Path, key: PointKey) -> float:
    """Seconds the finished points sharing ``key``'s budget took (their ``elapsed_s`` in ``points.jsonl``).
    A torn or damaged line is skipped: the report's reader names it."""
    identity = {name: getattr(key, name) for name in SHARED_BY}
    spent = 0.0
    for record in matching_records(points_path, identity):
        elapsed = record.get("elapsed_s")
        if isinstance(elapsed, (int, float)) and math.isfinite(elapsed):
            spent += float(elapsed)
    return spent
