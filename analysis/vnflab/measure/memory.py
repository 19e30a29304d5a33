"""Memory the right way round: per batch, the figure the platform measures exactly, and where it comes from.

The VNF server's MemAvailable delta (``server_used_mb``) sees the whole server, engine and page cache
included, and is noisy: tens of MB between batches of the same point. The per-instance figures the
memory module records beside it are exact. Per batch (one repetition of one point) they add up to:

- ``instances_pss_mb``: the sum of the instances' PSS (the processes of the instance's own cgroup for
  Docker, the QEMU process for KVM; shared pages split between their users);
- ``instances_cgroup_mb``: the sum of what each instance's own cgroup is charged (Docker);
- ``domains_dom0_mb``: the sum of ``xl``'s memory of each domain plus dom0's own MemAvailable delta
  (the backends and toolstack in dom0 a domain costs: on Xen the server's MemAvailable is dom0's).

``exact_used_mb`` is the figure's primary quantity: ``domains_dom0_mb`` where the platform reports
hypervisor memory, else ``instances_pss_mb``. A batch in which some instance lacks its figure gives a
lost value, not a smaller sum. The sums are derived when a run is loaded; ``samples.jsonl`` is not
changed, so older run directories get them too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # exact_source takes a summary frame; the rest (records, resume, metrics) is stdlib only
    import pandas as pd

#: Derived per-batch quantities, in the order they are listed.
DERIVED_QUANTITIES: tuple[str, ...] = ("exact_used_mb", "instances_pss_mb", "instances_cgroup_mb", "domains_dom0_mb")

#: What each derived quantity is, for tables and legends.
SOURCES: dict[str, str] = {
    "instances_pss_mb": "sum of the instances' PSS",
    "instances_cgroup_mb": "sum of the instances' cgroup charge",
    "domains_dom0_mb": "sum of xl's per-domain memory + dom0's MemAvailable delta",
    "server_used_mb": "the server's MemAvailable delta (whole server, noisy)",
}

_PER_INSTANCE = {"instances_pss_mb": "instance_pss_mb", "instances_cgroup_mb": "instance_cgroup_mb"}


def _total(values: Sequence[float | None], count: int) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    if count <= 0 or len(present) != count:
        return None
    return math.fsum(present)


def batch_memory(count: int, server_used_mb: float | None, pss: Sequence[float | None],
                 cgroup: Sequence[float | None], hypervisor: Sequence[float | None]) -> dict[str, float | None]:
    """The derived quantities of one batch of ``count`` instances.

    Each sequence holds the instances' values of one per-instance figure (``None`` or NaN: missing);
    a quantity whose figure no instance has is absent from the result, one that only some have is
    ``None`` (lost).
    """
    out: dict[str, float | None] = {}
    if any(v is not None for v in pss):
        out["instances_pss_mb"] = _total(pss, count)
    if any(v is not None for v in cgroup):
        out["instances_cgroup_mb"] = _total(cgroup, count)
    if any(v is not None for v in hypervisor):
        domains = _total(hypervisor, count)
        dom0 = server_used_mb if server_used_mb is not None and not math.isnan(server_used_mb) else None
        out["domains_dom0_mb"] = None if domains is None or dom0 is None else domains + dom0
        out["exact_used_mb"] = out["domains_dom0_mb"]
    elif "instances_pss_mb" in out:
        out["exact_used_mb"] = out["instances_pss_mb"]
    return out


def result_memory(result: Mapping[str, Any]) -> dict[str, float | None]:
    """:func:`batch_memory` of one vnf_memory module result."""
    instances = list(result.get("instances") or [])
    return batch_memory(int(result.get("count") or 0), result.get("server_used_mb"),
                        [i.get("pss_mb") for i in instances], [i.get("cgroup_mb") for i in instances],
                        [i.get("hypervisor_mb") for i in instances])


def derived_memory_records(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Sample records of the derived quantities, one per batch and quantity, from a run's sample records."""
    batches: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for record in records:
        if record.get("metric") == "memory":
            key = tuple(record.get(k) for k in ("run_id", "platform", "label", "host", "mode", "x", "repetition"))
            batches.setdefault(key, []).append(record)
    out: list[dict[str, Any]] = []
    for key, batch in batches.items():
        run_id, platform, label, host, mode, x, repetition = key

        def values(quantity: str, batch: list[Mapping[str, Any]] = batch) -> list[float | None]:
            return [None if r.get("value") is None else float(r["value"]) for r in batch
                    if r.get("quantity") == quantity]

        used = values("server_used_mb")
        derived = batch_memory(int(x), used[0] if used else None, values("instance_pss_mb"),
                               values("instance_cgroup_mb"), values("instance_hypervisor_mb"))
        times = sorted(str(r["time"]) for r in batch if r.get("time"))
        for quantity in DERIVED_QUANTITIES:
            if quantity in derived:
                value = derived[quantity]
                out.append({
                    "run_id": run_id, "platform": platform, "label": label, "metric": "memory",
                    "quantity": quantity, "x": int(x), "x_unit": "instances", "value": value, "unit": "MB",
                    "status": "lost" if value is None else "ok", "repetition": repetition, "instance": None,
                    "seq": None, "time": times[0] if times else None, "host": host, "mode": mode,
                })
    return out


def exact_source(summary: pd.DataFrame, platform: str, label: str) -> str:
    """What a platform's ``exact_used_mb`` line is, from the derived quantities present for it."""
    mine = summary[(summary["platform"] == platform) & (summary["label"] == label)
                   & (summary["metric"] == "memory")]
    quantities = set(mine["quantity"])
    if "domains_dom0_mb" in quantities:
        return SOURCES["domains_dom0_mb"]
    if "instances_pss_mb" in quantities:
        return SOURCES["instances_pss_mb"] + (" (cgroup charge beside it: `instances_cgroup_mb`)"
                                              if "instances_cgroup_mb" in quantities else "")
    return SOURCES["server_used_mb"]
