"""Argument validation of the probes (no packets are sent)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from ansible.module_utils.vnflab_host import boot_probe, rtt_probe

GOOD: dict[str, Any] = {
    "targets": {"proxy": "198.18.250.2", "direct": "198.18.250.3"},
    "payload_bytes": 64,
    "samples": 20,
    "warmup": 3,
    "interval_s": 0.002,
    "timeout_s": 1.0,
}


def test_good_arguments_pass() -> None:
    rtt_probe.validate_measure_args(**GOOD)
    rtt_probe.validate_measure_args(**{**GOOD, "payload_bytes": 65507, "warmup": 0, "interval_s": 0})


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("targets", {}, ValueError),
        ("targets", [("proxy", "198.18.250.2")], TypeError),
        ("targets", {"proxy": "198.18.250.300"}, ValueError),
        ("targets", {"proxy": "host-b"}, ValueError),
        ("targets", {"proxy": "2001:db8::1"}, ValueError),
        ("targets", {"proxy": 3323133442}, TypeError),
        ("targets", {"": "198.18.250.2"}, ValueError),
        ("targets", {1: "198.18.250.2"}, TypeError),
        ("payload_bytes", 0, ValueError),
        ("payload_bytes", 65508, ValueError),
        ("payload_bytes", 64.0, TypeError),
        ("samples", 0, ValueError),
        ("samples", True, TypeError),
        ("warmup", -1, ValueError),
        ("interval_s", -0.001, ValueError),
        ("interval_s", math.nan, ValueError),
        ("interval_s", "0.002", TypeError),
        ("timeout_s", 0, ValueError),
        ("timeout_s", math.inf, ValueError),
    ],
)
def test_bad_measure_arguments(field: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        rtt_probe.validate_measure_args(**{**GOOD, field: value})


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"mode": "tcp"}, ValueError),
        ({"mode": "udp", "udp_port": 0}, ValueError),
        ({"mode": "udp", "udp_port": 70000}, ValueError),
        ({"mode": "udp", "bind_address": "not-an-address"}, ValueError),
        ({"mode": "udp", "tx_grace_s": -1}, ValueError),
    ],
)
def test_bad_prober_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        rtt_probe.EchoProber(**kwargs)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((["198.18.250.2"], 0, 0.01, 100), ValueError),
        ((["198.18.250.2"], 1.0, 0, 100), ValueError),
        ((["198.18.250.2"], 1.0, 0.01, 0), ValueError),
        ((["198.18.250.2"], 1.0, 0.01, 1.5), TypeError),
        (("198.18.250.2", 1.0, 0.01, 100), TypeError),
        ((["198.18.250.256"], 1.0, 0.01, 100), ValueError),
    ],
)
def test_bad_boot_arguments(args: tuple[Any, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        boot_probe.wait_first_replies(*args)


@pytest.mark.parametrize(
    ("pending", "poll_interval_s", "max_pps", "expected"),
    [
        (1, 0.01, 1000, 0.01),  # rate allows the requested interval
        (10, 0.01, 1000, 0.01),  # exactly at the rate limit
        (128, 0.01, 1000, 0.128),  # rate-limited: len(pending) / max_pps
        (128, 0.5, 1000, 0.5),
        (0, 0.01, 1000, 0.01),
    ],
)
def test_effective_poll_interval(pending: int, poll_interval_s: float, max_pps: int, expected: float) -> None:
    assert boot_probe.effective_poll_interval(pending, poll_interval_s, max_pps) == pytest.approx(expected)


def test_measurement_summary() -> None:
    result = rtt_probe.EchoMeasurement(
        mode="icmp",
        payload_bytes=64,
        rtt_us={"proxy": [20.0, None, 22.0], "direct": [10.0, 11.0, 12.0]},
        tx_source="kernel-software",
        rx_source="kernel-software",
    )
    assert result.lost() == {"proxy": 1, "direct": 0}
    assert result.as_dict()["rtt_us"] == {"proxy": [20.0, None, 22.0], "direct": [10.0, 11.0, 12.0]}
