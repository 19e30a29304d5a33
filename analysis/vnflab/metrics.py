"""One definition per metric: everything the controller, the records, the schema, the tables and figures and the
conclusions know about a metric, declared once.

A :class:`Metric` names its x (unit, the profile variable that sweeps it, its default points and limits), its
quantities with their units (docs/design.md order), the quantity the stopping rule watches and how to read it from a
module result or from journaled records, the record builder, the Fig. 2 panel it is drawn in, and how the
conclusions phrase a comparison. Code that behaves differently per metric reads a field here instead of testing the
metric's name.

Boot, response and memory are measured batch by batch by :class:`vnflab.measure.ansible_measure.MeasureAction`;
migration and chain are journaled by their own action plugins (:class:`vnflab.measure.ansible_record.RecordPartAction`),
one record part per run of the play.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vnflab.limits import DEFAULT_SIZES, MAX_INSTANCES, MAX_PAYLOAD
from vnflab.measure import records
from vnflab.measure.memory import derived_memory_records, result_memory

#: Builds one batch's (or one part-recorded run's) sample records; see :mod:`vnflab.measure.records`.
RecordBuilder = Callable[..., list[dict[str, Any]]]
#: The watched quantity and its values in one module result.
ResultWatch = Callable[[Mapping[str, Any]], tuple[str, list[float | None]]]
#: The watched quantity and the journaled records that hold it (derived ones included).
RecordsWatch = Callable[[list[dict[str, Any]]], tuple[str, list[dict[str, Any]]]]


@dataclass(frozen=True)
class Panel:
    """One panel of Fig. 2: which quantity is drawn against which x."""

    key: str
    slug: str
    title: str
    metric: str
    quantity: str
    floor_quantity: str | None
    x_label: str
    y_label: str
    x_unit: str
    #: A series (platform) without the main quantity is drawn from this one instead, its legend saying so.
    fallback_quantity: str | None = None
    #: Drawn dotted beside each series: a secondary view of the same metric (the whole-server memory).
    secondary_quantity: str | None = None


@dataclass(frozen=True)
class Comparison:
    """How the conclusions compare two platforms on a metric (all quantities are "lower is better")."""

    verb: str  # "boots {v}% faster than"
    measure: str = "percent lower"  # or "times lower"
    best_case: bool = False  # compare at the x where the faster one's advantage is largest, not at the largest x


@dataclass(frozen=True)
class Metric:
    """One metric, declared once."""

    name: str
    x_unit: str
    #: quantity -> unit, in docs/design.md order
    units: Mapping[str, str]
    #: the quantity the stopping rule watches (memory: where the platform reports no exact figure)
    watched: str
    #: the sample records of one batch (MeasureAction) or of one recorded run (RecordPartAction)
    build_records: RecordBuilder
    #: the probe mode of a point from the task's arguments (None: the metric has no mode)
    default_mode: str | None = None
    #: profile variable that lists the points (x) of the sweep; None when the metric has its own play variables
    sweep_variable: str | None = None
    #: the module's default points when the task names none
    default_xs: tuple[int, ...] = ()
    #: smallest and largest x a point may have
    limits: tuple[int, int] | None = None
    #: the x is an instance count: a server's vnflab_max_instances caps it
    capped_by_instances: bool = False
    panel: Panel | None = None
    comparison: Comparison | None = None
    #: reads the watched quantity from a module result; None: not measured under the stopping rule
    result_watch: ResultWatch | None = None
    #: reads it from journaled records (a resumed point); the default selects ``watched``
    records_watch: RecordsWatch | None = None
    #: samples one module run (a batch) takes unless ``repeat.batch`` says otherwise; None: a batch gives one value
    #: per start of the metric's instances, and ``repeat.batch`` does not apply
    batch_samples: int | None = None

    def mode_of(self, args: Mapping[str, Any]) -> str | None:
        """The mode of a point measured with the task arguments ``args``."""
        return args.get("mode", self.default_mode) if self.default_mode is not None else None

    def watched_quantity(self, result: Mapping[str, Any]) -> str:
        return self._result_watch(result)[0]

    def watched_values(self, result: Mapping[str, Any]) -> list[float | None]:
        """Values of one module run that the stopping rule accumulates for the point."""
        return self._result_watch(result)[1]

    def watched_records(self, journaled: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        """The watched quantity of a point's journaled records, and the records to read it from."""
        if self.records_watch is not None:
            return self.records_watch(journaled)
        return self.watched, journaled

    def _result_watch(self, result: Mapping[str, Any]) -> tuple[str, list[float | None]]:
        if self.result_watch is None:
            raise ValueError(f"metric {self.name!r} is not measured under the stopping rule")
        return self.result_watch(result)


# ------------------------------------------------------------------------ watched quantities


def _boot_watch(result: Mapping[str, Any]) -> tuple[str, list[float | None]]:
    return "all_ms", [result.get("all_ms")]


def _memory_watch(result: Mapping[str, Any]) -> tuple[str, list[float | None]]:
    """The exact figure where the platform reports it (``exact_used_mb``, :mod:`vnflab.measure.memory`), else the
    server's MemAvailable delta."""
    derived = result_memory(result)
    if "exact_used_mb" in derived:
        return "exact_used_mb", [derived["exact_used_mb"]]
    return "server_used_mb", [result.get("server_used_mb")]


def _memory_records_watch(journaled: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    derived = [r for r in derived_memory_records(journaled) if r["quantity"] == "exact_used_mb"]
    return ("exact_used_mb", derived) if derived else ("server_used_mb", journaled)


def _response_watch(result: Mapping[str, Any]) -> tuple[str, list[float | None]]:
    entries = result.get("results") or []
    return "rtt_proxy_us", list(entries[0]["rtt_us"]) if entries else []


def _migration_watch(result: Mapping[str, Any]) -> tuple[str, list[float | None]]:
    return "downtime_ms", [(result.get("stream") or {}).get("downtime_ms")]


# ------------------------------------------------------------------------ the metrics

BOOT = Metric(
    name="boot", x_unit="instances", units={"all_ms": "ms", "instance_ms": "ms"}, watched="all_ms",
    build_records=records.boot_records, sweep_variable="vnflab_boot_counts", limits=(1, MAX_INSTANCES),
    capped_by_instances=True, result_watch=_boot_watch,
    panel=Panel(key="a", slug="fig2a_boot", title="(a) Boot time until all instances answer", metric="boot",
                quantity="all_ms", floor_quantity=None, x_label="Instances started concurrently",
                y_label="Boot time, all instances (ms)", x_unit="instances"),
    comparison=Comparison(verb="boots {v}% faster than", best_case=True),
)

RESPONSE = Metric(
    name="response", x_unit="B", units={"rtt_proxy_us": "us", "rtt_direct_us": "us"}, watched="rtt_proxy_us",
    build_records=records.response_records, default_mode="icmp", sweep_variable="vnflab_response_sizes",
    default_xs=DEFAULT_SIZES, limits=(1, MAX_PAYLOAD), result_watch=_response_watch, batch_samples=20,
    panel=Panel(key="b", slug="fig2b_response", title="(b) Response time through the proxy VNF", metric="response",
                quantity="rtt_proxy_us", floor_quantity="rtt_direct_us", x_label="Payload size (bytes)",
                y_label="Round-trip time (µs)", x_unit="B"),
    comparison=Comparison(verb="responds {v} times faster than", measure="times lower"),
)

MEMORY = Metric(
    name="memory", x_unit="instances",
    units={"server_used_mb": "MB", "instance_pss_mb": "MB", "instance_cgroup_mb": "MB",
           "instance_hypervisor_mb": "MB", "available_before_mb": "MB", "available_after_mb": "MB",
           "available_restored_mb": "MB"},
    watched="server_used_mb", build_records=records.memory_records, sweep_variable="vnflab_memory_counts",
    limits=(1, MAX_INSTANCES), capped_by_instances=True, result_watch=_memory_watch,
    records_watch=_memory_records_watch,
    panel=Panel(key="c", slug="fig2c_memory", title="(c) Memory used by the VNF instances", metric="memory",
                quantity="exact_used_mb", floor_quantity=None, x_label="Instances running",
                y_label="Memory used (MB = 2^20 B)", x_unit="instances", fallback_quantity="server_used_mb",
                secondary_quantity="server_used_mb"),
    comparison=Comparison(verb="uses {v}% less memory than"),
)

MIGRATION = Metric(
    name="migration", x_unit="VNFs", units={quantity: unit for quantity, unit, _, _ in records.MIGRATION_QUANTITIES},
    watched="downtime_ms", build_records=records.migration_records, result_watch=_migration_watch,
)

CHAIN = Metric(
    name="chain", x_unit="VNFs", units={"boot_chain_ms": "ms", "rtt_chain_us": "us"}, watched="boot_chain_ms",
    build_records=records.chain_records,
)

#: Every metric by name, in report order.
METRICS: dict[str, Metric] = {metric.name: metric for metric in (BOOT, RESPONSE, MEMORY, MIGRATION, CHAIN)}


def metric(name: str) -> Metric:
    """The metric called ``name``."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}") from None


def watched_quantity(name: str, result: Mapping[str, Any]) -> str:
    """The quantity the stopping rule watches in one module result of metric ``name``."""
    return metric(name).watched_quantity(result)


def watched_values(name: str, result: Mapping[str, Any]) -> Sequence[float | None]:
    """Values of one module run of metric ``name`` that the stopping rule accumulates for the point."""
    return metric(name).watched_values(result)


#: The Fig. 2 panels, in metric order.
PANELS: tuple[Panel, ...] = tuple(m.panel for m in METRICS.values() if m.panel is not None)
