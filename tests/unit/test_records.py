"""Probe-module results -> sample records of docs/design.md (vnflab.measure.records)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vnflab.measure.journal import encode_record
from vnflab.measure.memory import derived_memory_records
from vnflab.measure.records import PointKey, boot_records, memory_records, response_records
from vnflab.measure.schema import QUANTITY_UNITS, SAMPLE_FIELDS, X_UNITS, parse_label, validate_sample
from vnflab.metrics import watched_quantity, watched_values

LABEL = "docker/debian12-iptables (native, stand-in for CoreOS)"

#: design.md field list, spelled out here rather than taken from the code under test.
DESIGN_FIELDS = [
    "run_id", "platform", "label", "metric", "quantity", "x", "x_unit", "value", "unit", "status",
    "repetition", "instance", "seq", "time", "host", "mode",
]


def key(metric: str, mode: str | None = None) -> PointKey:
    return PointKey(run_id="20250102-030405", platform="docker", label=LABEL, metric=metric, host="vnf-docker",
                    mode=mode)


def check_contract(records: list[dict[str, Any]], metric: str) -> None:
    """What every record must satisfy, whatever its quantity."""
    assert parse_label(LABEL) is not None
    for record in records:
        assert list(record) == DESIGN_FIELDS
        assert validate_sample(record) == []
        assert record["metric"] == metric
        assert record["x_unit"] == X_UNITS[metric]
        assert (record["run_id"], record["platform"], record["label"], record["host"]) == (
            "20250102-030405", "docker", LABEL, "vnf-docker")
        assert record["status"] == ("lost" if record["value"] is None else "ok")
        assert record["value"] is None or isinstance(record["value"], float)
        assert isinstance(record["x"], int) and not isinstance(record["x"], bool)
        unit_suffix = {"ms": "_ms", "us": "_us", "MB": "_mb"}[record["unit"]]
        assert record["quantity"].endswith(unit_suffix)
        when = datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
        assert when.tzinfo is not None and when.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - when) < timedelta(minutes=1)
        assert json.loads(encode_record(record)) == record  # journal-able: no NaN, plain JSON types


# ---------------------------------------------------------------- boot


def test_boot_records() -> None:
    result = {"count": 3, "all_ms": 912.5, "boot_ms": [400.25, 455, 880.0]}
    records = boot_records(key("boot"), result, repetition=4)
    check_contract(records, "boot")
    assert [(r["quantity"], r["instance"], r["seq"], r["value"]) for r in records] == [
        ("all_ms", None, 0, 912.5),
        ("instance_ms", 0, 1, 400.25),
        ("instance_ms", 1, 2, 455.0),
        ("instance_ms", 2, 3, 880.0),
    ]
    assert {(r["x"], r["unit"], r["repetition"], r["mode"]) for r in records} == {(3, "ms", 4, None)}
    assert len({r["time"] for r in records}) == 1  # one batch, one journaling time


def test_boot_lost_instances_are_kept() -> None:
    result = {"count": "4", "all_ms": None, "boot_ms": [401.0, None, 390.5, None]}
    records = boot_records(key("boot"), result, repetition=0)
    check_contract(records, "boot")
    assert len(records) == 5
    assert [(r["quantity"], r["instance"], r["value"], r["status"]) for r in records] == [
        ("all_ms", None, None, "lost"),
        ("instance_ms", 0, 401.0, "ok"),
        ("instance_ms", 1, None, "lost"),
        ("instance_ms", 2, 390.5, "ok"),
        ("instance_ms", 3, None, "lost"),
    ]
    assert all(r["x"] == 4 for r in records)


def test_boot_without_per_instance_times() -> None:
    records = boot_records(key("boot"), {"count": 2, "all_ms": 10.0}, repetition=1)
    check_contract(records, "boot")
    assert [(r["quantity"], r["value"]) for r in records] == [("all_ms", 10.0)]


# ---------------------------------------------------------------- memory


MEMORY_RESULT: dict[str, Any] = {
    "count": 2,
    "available_before_mb": 23011.5,
    "available_after_mb": 22940.25,
    "available_restored_mb": 23009.5,
    "server_used_mb": 70.25,  # (before + restored) / 2 - after
    "instances": [
        {"name": "vnflab-docker-0", "pss_mb": 2.5, "cgroup_mb": 0.75, "hypervisor_mb": None},
        {"name": "vnflab-docker-1", "pss_mb": 2.25, "cgroup_mb": None, "hypervisor_mb": 128},
    ],
}


def test_memory_records() -> None:
    records = memory_records(key("memory"), MEMORY_RESULT, repetition=2)
    check_contract(records, "memory")
    assert [(r["quantity"], r["instance"], r["seq"], r["value"]) for r in records] == [
        ("server_used_mb", None, 0, 70.25),
        ("available_before_mb", None, 1, 23011.5),
        ("available_after_mb", None, 2, 22940.25),
        ("available_restored_mb", None, 3, 23009.5),
        ("instance_pss_mb", 0, 4, 2.5),
        ("instance_cgroup_mb", 0, 5, 0.75),
        ("instance_pss_mb", 1, 6, 2.25),
        ("instance_hypervisor_mb", 1, 7, 128.0),
    ]
    assert {(r["x"], r["unit"], r["repetition"]) for r in records} == {(2, "MB", 2)}
    server = {r["quantity"]: r["value"] for r in records if r["instance"] is None}
    assert server["server_used_mb"] == pytest.approx(
        (server["available_before_mb"] + server["available_restored_mb"]) / 2 - server["available_after_mb"])


def test_memory_results_without_a_restored_read() -> None:
    """Results of the module before it read memory after stopping have no available_restored_mb record."""
    older = {key: value for key, value in MEMORY_RESULT.items() if key != "available_restored_mb"}
    records = memory_records(key("memory"), older, repetition=0)
    check_contract(records, "memory")
    assert [r["quantity"] for r in records if r["instance"] is None] == [
        "server_used_mb", "available_before_mb", "available_after_mb"]
    assert [r["seq"] for r in records] == list(range(len(records)))


def test_memory_missing_server_figures_are_lost_not_dropped() -> None:
    records = memory_records(key("memory"), {"count": 1, "instances": []}, repetition=0)
    check_contract(records, "memory")
    assert [(r["quantity"], r["status"]) for r in records] == [
        ("server_used_mb", "lost"), ("available_before_mb", "lost"), ("available_after_mb", "lost")]


def test_every_emitted_quantity_has_a_known_unit() -> None:
    records = memory_records(key("memory"), MEMORY_RESULT, repetition=0)
    for record in records:
        assert QUANTITY_UNITS.get((record["metric"], record["quantity"])) == record["unit"], record["quantity"]


# ---------------------------------------------------------------- response


RESPONSE_RESULT: dict[str, Any] = {
    "mode": "icmp",
    "results": [
        {"path": "proxy", "size": 64, "rtt_us": [36.5, None, 35.25], "lost": 1},
        {"path": "direct", "size": 64, "rtt_us": [20, 21.5, None], "lost": 1},
        {"path": "proxy", "size": 1472, "rtt_us": [51.0], "lost": 0},
    ],
}


@pytest.mark.parametrize("mode", ["icmp", "udp"])
def test_response_records(mode: str) -> None:
    records = response_records(key("response", mode), RESPONSE_RESULT, repetition=3)
    check_contract(records, "response")
    assert [(r["quantity"], r["x"], r["seq"], r["value"], r["status"]) for r in records] == [
        ("rtt_proxy_us", 64, 0, 36.5, "ok"),
        ("rtt_proxy_us", 64, 1, None, "lost"),
        ("rtt_proxy_us", 64, 2, 35.25, "ok"),
        ("rtt_direct_us", 64, 0, 20.0, "ok"),
        ("rtt_direct_us", 64, 1, 21.5, "ok"),
        ("rtt_direct_us", 64, 2, None, "lost"),
        ("rtt_proxy_us", 1472, 0, 51.0, "ok"),
    ]
    assert {(r["unit"], r["x_unit"], r["repetition"], r["mode"], r["instance"]) for r in records} == {
        ("us", "B", 3, mode, None)}
    lost = sum(1 for r in records if r["status"] == "lost")
    assert lost == sum(entry["lost"] for entry in RESPONSE_RESULT["results"])


def test_response_other_path_names_get_their_own_quantity() -> None:
    result = {"results": [{"path": "backup", "size": 128, "rtt_us": [40.0], "lost": 0}]}
    records = response_records(key("response", "udp"), result, repetition=0)
    check_contract(records, "response")
    assert records[0]["quantity"] == "rtt_backup_us"


def test_response_without_results() -> None:
    assert response_records(key("response", "icmp"), {"results": []}, repetition=0) == []
    assert response_records(key("response", "icmp"), {}, repetition=0) == []


# ---------------------------------------------------------------- watched values


@pytest.mark.parametrize(
    ("metric", "result", "expected"),
    [
        ("boot", {"count": 3, "all_ms": 912.5, "boot_ms": [1.0, 2.0, 3.0]}, [912.5]),
        ("boot", {"count": 3, "all_ms": None, "boot_ms": [1.0, None, 3.0]}, [None]),
        # hypervisor memory for one instance of two: the exact figure is lost, not half of it
        ("memory", MEMORY_RESULT, [None]),
        ("memory", {"count": 1}, [None]),
        ("memory", {"count": 1, "server_used_mb": 70.0}, [70.0]),  # no per-instance figure: the server's delta
        ("memory", {"count": 2, "server_used_mb": 70.0, "instances": [{"pss_mb": 2.5}, {"pss_mb": 3.0}]}, [5.5]),
        ("memory", {"count": 2, "server_used_mb": 9.0,
                    "instances": [{"hypervisor_mb": 8.0}, {"hypervisor_mb": 8.5}]}, [25.5]),  # xl + dom0
        ("response", RESPONSE_RESULT, [36.5, None, 35.25]),  # first path of the first size, lost kept
        ("response", {"results": []}, []),
    ],
)
def test_watched_values(metric: str, result: dict[str, Any], expected: list[float | None]) -> None:
    assert list(watched_values(metric, result)) == expected


def test_watched_values_are_the_watched_quantity_of_the_records() -> None:
    builders = {"boot": boot_records, "memory": memory_records, "response": response_records}
    results = {"boot": {"count": 2, "all_ms": 5.0, "boot_ms": [4.0, 5.0]}, "memory": MEMORY_RESULT,
               "response": {"results": RESPONSE_RESULT["results"][:2]}}
    results["memory"] = {**MEMORY_RESULT, "instances": [{"pss_mb": 2.5, "cgroup_mb": 0.5}, {"pss_mb": 3.0}]}
    for metric, builder in builders.items():
        records = builder(key(metric, "icmp" if metric == "response" else None), results[metric], 0)
        records += derived_memory_records(records)  # as load_run adds them
        quantity = watched_quantity(metric, results[metric])
        assert quantity == {"boot": "all_ms", "memory": "exact_used_mb", "response": "rtt_proxy_us"}[metric]
        watched = [r["value"] for r in records if r["quantity"] == quantity]
        assert watched == list(watched_values(metric, results[metric])), metric


def test_watched_values_unknown_metric() -> None:
    with pytest.raises(ValueError, match="unknown metric 'latency'"):
        watched_values("latency", {})


def test_design_fields_match_schema() -> None:
    assert list(SAMPLE_FIELDS) == DESIGN_FIELDS
