"""One definition per metric (vnflab.metrics): the declarations agree with each other and with the records."""

from __future__ import annotations

import pytest

from vnflab.measure.memory import DERIVED_QUANTITIES
from vnflab.metrics import METRICS, PANELS, Panel, metric


@pytest.mark.parametrize("name", list(METRICS))
def test_a_metric_watches_one_of_its_quantities(name: str) -> None:
    declared = METRICS[name]
    assert declared.name == name
    assert declared.watched in declared.units


@pytest.mark.parametrize("panel", PANELS, ids=lambda panel: panel.slug)
def test_a_panel_draws_its_metric_against_its_x(panel: Panel) -> None:
    declared = METRICS[panel.metric]
    assert declared.panel is panel and panel.x_unit == declared.x_unit
    drawn = {panel.quantity, panel.floor_quantity, panel.fallback_quantity, panel.secondary_quantity}
    assert drawn - {None} <= set(declared.units) | set(DERIVED_QUANTITIES)


def test_the_figure_has_the_papers_three_panels_in_order() -> None:
    assert [(panel.key, panel.metric) for panel in PANELS] == [("a", "boot"), ("b", "response"), ("c", "memory")]


@pytest.mark.parametrize(("name", "args", "mode"), [
    ("response", {}, "icmp"), ("response", {"mode": "udp"}, "udp"), ("boot", {"mode": "udp"}, None),
    ("memory", {}, None),
])
def test_only_a_metric_with_a_mode_gives_its_points_one(name: str, args: dict[str, str], mode: str | None) -> None:
    assert metric(name).mode_of(args) == mode


def test_a_part_recorded_metric_has_no_stopping_rule_to_feed() -> None:
    with pytest.raises(ValueError, match="'chain' is not measured under the stopping rule"):
        metric("chain").watched_values({"boot_chain_ms": 1.0})
    with pytest.raises(ValueError, match="unknown metric 'latency'"):
        metric("latency")


def test_the_profile_sweeps_the_instance_and_size_metrics_within_their_limits() -> None:
    swept = {name: (m.sweep_variable, m.limits, m.capped_by_instances) for name, m in METRICS.items()
             if m.sweep_variable}
    assert swept == {"boot": ("vnflab_boot_counts", (1, 1024), True),
                     "response": ("vnflab_response_sizes", (1, 65507), False),
                     "memory": ("vnflab_memory_counts", (1, 1024), True)}
    assert all(1 <= size <= 65507 for size in metric("response").default_xs)
