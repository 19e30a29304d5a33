"""Turn probe-module results into sample records (docs/design.md); :mod:`vnflab.metrics` names which builder each
metric uses and the value its stopping rule watches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vnflab.measure.journal import utc_timestamp


@dataclass(frozen=True)
class PointKey:
    """What every record of one measurement point shares."""

    run_id: str
    platform: str
    label: str
    metric: str
    host: str
    mode: str | None = None

    def record(self, quantity: str, x: int, x_unit: str, value: float | None, unit: str, repetition: int,
               seq: int, instance: int | None = None, time: str | None = None,
               skipped_reason: str | None = None) -> dict[str, Any]:
        record = {
            "run_id": self.run_id, "platform": self.platform, "label": self.label, "metric": self.metric,
            "quantity": quantity, "x": int(x), "x_unit": x_unit,
            "value": None if value is None or skipped_reason is not None else float(value), "unit": unit,
            "status": "skipped" if skipped_reason is not None else "lost" if value is None else "ok",
            "repetition": repetition, "instance": instance, "seq": seq,
            "time": time or utc_timestamp(), "host": self.host, "mode": self.mode,
        }
        if skipped_reason is not None:
            record["reason"] = skipped_reason
        return record


def boot_records(key: PointKey, result: Mapping[str, Any], repetition: int) -> list[dict[str, Any]]:
    """One ``all_ms`` record and one ``instance_ms`` record per instance."""
    count = int(result["count"])
    now = utc_timestamp()
    records = [key.record("all_ms", count, "instances", result.get("all_ms"), "ms", repetition, 0, time=now)]
    for index, value in enumerate(result.get("boot_ms") or []):
        records.append(key.record("instance_ms", count, "instances", value, "ms", repetition, index + 1,
                                  instance=index, time=now))
    return records


def memory_records(key: PointKey, result: Mapping[str, Any], repetition: int) -> list[dict[str, Any]]:
    """Server view (before, after, used) and per-instance PSS and cgroup memory, in MB."""
    count = int(result["count"])
    now = utc_timestamp()
    records = [
        key.record(quantity, count, "instances", result.get(quantity), "MB", repetition, seq, time=now)
        for seq, quantity in enumerate(("server_used_mb", "available_before_mb", "available_after_mb",
                                        "available_restored_mb"))
        if quantity != "available_restored_mb" or quantity in result
    ]
    seq = len(records)
    for index, instance in enumerate(result.get("instances") or []):
        for quantity, field in (("instance_pss_mb", "pss_mb"), ("instance_cgroup_mb", "cgroup_mb"),
                                ("instance_hypervisor_mb", "hypervisor_mb")):
            if instance.get(field) is not None:
                records.append(key.record(quantity, count, "instances", instance[field], "MB", repetition, seq,
                                          instance=index, time=now))
                seq += 1
    return records


RESPONSE_QUANTITY = {"proxy": "rtt_proxy_us", "direct": "rtt_direct_us"}


def response_records(key: PointKey, result: Mapping[str, Any], repetition: int) -> list[dict[str, Any]]:
    """Every RTT sample of every path and size; lost samples kept with value null."""
    now = utc_timestamp()
    records = []
    for entry in result.get("results") or []:
        quantity = RESPONSE_QUANTITY.get(entry["path"], f"rtt_{entry['path']}_us")
        for seq, value in enumerate(entry["rtt_us"]):
            records.append(key.record(quantity, entry["size"], "B", value, "us", repetition, seq, time=now))
    return records


# The migration metric: (quantity, unit, where the value is: the stream or the move part's result, its key).
MIGRATION_QUANTITIES: tuple[tuple[str, str, str, str], ...] = (
    ("total_ms", "ms", "move", "total_ms"),
    ("downtime_ms", "ms", "stream", "downtime_ms"),
    ("requests_lost", "requests", "stream", "lost"),
    ("requests_sent", "requests", "stream", "sent"),
    ("bytes_transferred", "B", "move", "bytes"),
    ("platform_downtime_ms", "ms", "move", "platform_downtime_ms"),
    ("baseline_gap_ms", "ms", "stream", "baseline_gap_ms"),
)


def longest_gap_outside(gaps_ms: Sequence[Sequence[float]], start_ns: int, window_ns: tuple[int, int]) -> float | None:
    """The longest kept gap (``[offset ms, gap ms]`` from ``start_ns``) that does not overlap ``window_ns`` (the
    move): the stream's own noise floor beside the downtime; None when no kept gap lies outside the window."""
    low, high = window_ns
    outside = [gap for offset, gap in gaps_ms
               if start_ns + offset * 1e6 + gap * 1e6 < low or start_ns + offset * 1e6 > high]
    return max(outside) if outside else None


def migration_records(key: PointKey, result: Mapping[str, Any], repetition: int) -> list[dict[str, Any]]:
    """One migration of the proxy VNF (x = 1 VNF): its quantities from the ``stream`` part (Host A) and the
    ``move`` part (the server); one ``skipped`` ``total_ms`` record with the reason when nothing moved. A
    stream that never saw the path come back makes downtime a lost sample (it is longer than the stream)."""
    now = utc_timestamp()
    stream = result.get("stream") or {}
    move = result.get("move") or {}
    if move.get("skipped_reason"):
        return [key.record("total_ms", 1, "VNFs", None, "ms", repetition, 0, time=now,
                           skipped_reason=str(move["skipped_reason"]))]
    records = []
    for seq, (quantity, unit, part, field) in enumerate(MIGRATION_QUANTITIES):
        source = stream if part == "stream" else move
        if field not in source or (quantity != "downtime_ms" and source[field] is None):
            continue
        value = source[field]
        if quantity == "downtime_ms" and not stream.get("recovered", False):
            value = None
        records.append(key.record(quantity, 1, "VNFs", value, unit, repetition, seq, time=now))
    return records


def chain_size_mode(mode: str | None, size: int) -> str:
    """The ``mode`` of a chain RTT sample: the probe mode and the payload size (x is the chain's length)."""
    return f"{mode or 'icmp'} {int(size)} B"


def chain_records(key: PointKey, length: int, result: Mapping[str, Any], repetition: int,
                  skipped_reason: str | None = None) -> list[dict[str, Any]]:
    """One chain of ``length`` VNFs (x = k): ``boot_chain_ms`` = Host A's first reply through all k hops minus the
    server's first start command (null: no reply came, a lost sample); ``rtt_chain_us`` per sample, its ``mode``
    the probe mode and size (``icmp 64 B``). A chain that cannot run here is one skipped ``boot_chain_ms``."""
    now = utc_timestamp()
    if skipped_reason:
        return [key.record("boot_chain_ms", length, "VNFs", None, "ms", repetition, 0, time=now,
                           skipped_reason=str(skipped_reason))]
    echo, start = result.get("echo") or {}, result.get("start") or {}
    boot = None
    if echo.get("reply_ns") and start.get("start_ns"):
        boot = (int(echo["reply_ns"]) - int(start["start_ns"])) / 1e6
    # the boot time does not depend on the probe mode: no mode, so that every platform's chains compare
    unmoded = PointKey(run_id=key.run_id, platform=key.platform, label=key.label, metric=key.metric, host=key.host)
    records = [unmoded.record("boot_chain_ms", length, "VNFs", boot, "ms", repetition, 0, time=now)]
    rtt = result.get("rtt") or {}
    seq = 1
    for entry in rtt.get("results") or []:
        sized = PointKey(run_id=key.run_id, platform=key.platform, label=key.label, metric=key.metric,
                         host=key.host, mode=chain_size_mode(rtt.get("mode") or key.mode, entry["size"]))
        for value in entry.get("rtt_us") or []:
            records.append(sized.record("rtt_chain_us", length, "VNFs", value, "us", repetition, seq, time=now))
            seq += 1
    return records
