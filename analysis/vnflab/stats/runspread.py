"""Run-to-run tolerances of ``vnflab compare``: how far a point may move between two runs of the same code.

With one run a side, the between-run spread (the machine's other load, the emulated Xen server's state,
caches, all of which differ between runs and are shared by every sample of one run) cannot be estimated
from the data: a run's samples are not independent draws of what a rerun would give. ``compare`` then
asks for a declared practical-change threshold per metric and quantity, the tolerance: a point is
flagged only when the within-run test is significant *and* its change exceeds the tolerance.

Where the defaults come from: :func:`calibrate` applied to same-code run pairs. The rule, fixed before it
was applied: per ``metric/quantity``, the largest |change of the median| over every point of the pairs
(for ``rtt_proxy_us`` the change beyond the same point's direct path, see :mod:`vnflab.stats.compare`),
rounded up to the next 5%, at least 5%. ``vnflab calibrate A B [A2 B2 ...]`` prints and writes that
table; ``vnflab compare --tolerances FILE`` reads it, ``--tolerance metric/quantity=PCT`` overrides one.

The built-in :data:`DEFAULT_TOLERANCES` are that rule's output on the only same-code pair measured so far,
20261207T133318Z-f2f877 / 20261207T142922Z-a09e50 (default profile, 50 min apart, a 2-core machine; see
docs/statistics.md). That pair is also the one ``compare`` is checked on, so "it flags nothing there" is
true by construction for every point the tolerance decides, and is no independent evidence for the
defaults: calibrate on more pairs of your own lab.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

#: The same-code pair the built-in defaults were calibrated on (and checked against: not independent).
CALIBRATION_PAIR = ("20261207T133318Z-f2f877", "20261207T142922Z-a09e50")
DEFAULT_SOURCE = (f"default: vnflab calibrate on the same-code pair {CALIBRATION_PAIR[0]} / {CALIBRATION_PAIR[1]} "
                  "(max |change| rounded up to 5%; docs/statistics.md)")

#: ``metric/quantity`` -> tolerance in % of A's median: :func:`calibrate` on :data:`CALIBRATION_PAIR`, copied
#: (``vnflab calibrate`` of that pair prints this table; the comment names the point that set each value).
#: Fit to that one pair, which is also the pair ``compare`` is checked on: see the module doc.
DEFAULT_TOLERANCES: dict[str, float] = {
    "boot/all_ms": 30.0,  # docker x=16: -28.9% (2 batches a side)
    "boot/instance_ms": 30.0,  # docker x=8: -29.4%
    "chain/boot_chain_ms": 95.0,  # native x=1: -93.9% (one sample a side)
    "chain/rtt_chain_us": 110.0,  # docker icmp 64 B x=4: +105.8% (no direct path in the chain probe)
    "memory/exact_used_mb": 5.0,  # docker x=1: -1.1%
    "memory/instance_cgroup_mb": 25.0,  # docker x=1: -22.7%
    "memory/instance_hypervisor_mb": 5.0,  # xen: 0.0%
    "memory/instance_pss_mb": 5.0,  # docker x=1: -1.1%
    "memory/server_used_mb": 2300.0,  # native x=4: -2299% (a MemAvailable delta near 0 MB)
    "migration/downtime_ms": 20.0,  # kvm udp: -18.4% (one point)
    "migration/requests_lost": 30.0,  # kvm udp: -26.3% (one point)
    "migration/total_ms": 15.0,  # kvm udp: +11.9% (one point)
    "response/rtt_direct_us": 65.0,  # xen icmp x=256: +64.1%
    "response/rtt_proxy_us": 25.0,  # beyond its direct path; xen icmp x=256: -24.3%
}

STEP_PCT = 5.0


@dataclass(frozen=True)
class Tolerance:
    """A declared run-to-run tolerance, in % of A's median, and where it came from."""

    pct: float
    source: str


NO_TOLERANCE = Tolerance(0.0, "none declared")


def default_tolerances() -> dict[str, Tolerance]:
    """The built-in tolerances (:data:`DEFAULT_TOLERANCES`), each naming its source."""
    return {key: Tolerance(pct, DEFAULT_SOURCE) for key, pct in DEFAULT_TOLERANCES.items()}


def rounded_up(change_pct: float) -> float:
    """The calibration rule's rounding: up to the next multiple of 5%, at least 5%."""
    return max(STEP_PCT, STEP_PCT * math.ceil(abs(change_pct) / STEP_PCT - 1e-9))


def calibrate(pairs: Sequence[tuple[pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    """Per ``metric/quantity``, the largest |change| over the points of same-code ``pairs`` and its tolerance.

    Columns: ``key`` (metric/quantity), ``points``, ``max_abs_change_pct``, ``where`` (the point that set
    it), ``tolerance_pct`` (:func:`rounded_up`). The change is ``compare``'s ``adjusted_change_pct`` (the
    change beyond the direct path where a point has one), computed without any tolerance.
    """
    from vnflab.stats.compare import CompareOptions, compare_runs

    options = CompareOptions(tolerances={})
    rows: dict[str, dict[str, object]] = {}
    for a, b in pairs:
        table = compare_runs(a, b, options)
        for row in table.itertuples(index=False):
            change = float(row.adjusted_change_pct)
            if math.isnan(change) or math.isinf(change):
                continue
            key = f"{row.metric}/{row.quantity}"
            entry = rows.setdefault(key, {"key": key, "points": 0, "max_abs_change_pct": 0.0, "where": ""})
            entry["points"] = int(entry["points"]) + 1  # type: ignore[call-overload]
            if abs(change) >= float(entry["max_abs_change_pct"]):  # type: ignore[arg-type]
                entry["max_abs_change_pct"] = abs(change)
                mode = f" {row.mode}" if row.mode else ""
                entry["where"] = f"{row.platform}{mode} x={row.x}: {change:+.1f}%"
    frame = pd.DataFrame(sorted(rows.values(), key=lambda r: str(r["key"])),
                         columns=["key", "points", "max_abs_change_pct", "where"])
    frame["tolerance_pct"] = [rounded_up(float(v)) for v in frame["max_abs_change_pct"]]
    return frame


def tolerances_json(table: pd.DataFrame, source: str) -> str:
    """The calibration as the JSON file ``vnflab compare --tolerances`` reads."""
    body = {"source": source,
            "tolerances": {str(r.key): float(r.tolerance_pct) for r in table.itertuples(index=False)}}
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def load_tolerances(path: Path) -> dict[str, Tolerance]:
    """Tolerances from a file of :func:`tolerances_json`'s format (``{"source": ..., "tolerances": {...}}``)."""
    body = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(body, dict) or not isinstance(body.get("tolerances"), dict):
        raise ValueError(f"{path}: expected a JSON object with a 'tolerances' object")
    source = f"{path}" + (f" ({body['source']})" if body.get("source") else "")
    return {str(key): Tolerance(_pct(key, value), source) for key, value in body["tolerances"].items()}


def parse_override(text: str) -> tuple[str, Tolerance]:
    """``metric/quantity=PCT`` (the ``--tolerance`` option) as a key and its tolerance."""
    key, sep, value = text.partition("=")
    if not sep or "/" not in key:
        raise ValueError(f"--tolerance expects METRIC/QUANTITY=PCT, got {text!r}")
    return key.strip(), Tolerance(_pct(key, value), f"--tolerance {key.strip()}={value.strip()}")


def _pct(key: object, value: object) -> float:
    try:
        pct = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tolerance of {key}: not a number: {value!r}") from exc
    if not pct >= 0:
        raise ValueError(f"tolerance of {key} must be >= 0, got {value!r}")
    return pct


def merged(base: Mapping[str, Tolerance], *overrides: Mapping[str, Tolerance]) -> dict[str, Tolerance]:
    """``base`` with each of ``overrides`` applied in turn."""
    out = dict(base)
    for override in overrides:
        out.update(override)
    return out
