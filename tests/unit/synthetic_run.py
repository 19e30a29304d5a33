"""A realistic synthetic run directory with known answers, shared by the analysis tests.

Four platforms, one per kind the analysis must handle: a ``native`` baseline, a real Xen row
(ClickOS by engine), a Docker stand-in for CoreOS and a KVM stand-in for OSv. Every point's
samples are ``mean * (1 + offset)`` with offsets of mean 0, so every mean is known exactly.
"""

from __future__ import annotations

from pathlib import Path

from vnflab.measure.journal import Journal, PointsJournal
from vnflab.measure.manifest import merge_manifest
from vnflab.measure.stopping import StoppingRule

RUN_ID = "20250202T000000Z-5e7e7e"
LABELS = {
    "native": "native/debian12-proxy (native, real)",
    "xen": "xen/clickos (pv, real)",
    "docker": "docker/debian12-iptables (native, stand-in for CoreOS)",
    "kvm": "kvm/linux-microvm (tcg, stand-in for OSv)",
}
BOOT_MS_PER_INSTANCE = {"native": 5.0, "xen": 10.0, "docker": 50.0, "kvm": 400.0}
MEMORY_MB_PER_INSTANCE = {"native": 1.0, "xen": 8.0, "docker": 5.0, "kvm": 100.0}
RTT_US = {"native": (20.0, 1000.0), "xen": (30.0, 500.0), "docker": (40.0, 400.0), "kvm": (500.0, 10.0)}
INSTANCES = (1, 2, 4, 8)
SIZES = (64, 1024, 65507)
OFFSETS_6 = (-0.02, -0.01, 0.0, 0.0, 0.01, 0.02)
OFFSETS_20 = (-0.03, -0.02, -0.01, 0.01, 0.02, 0.03, -0.015, 0.015, -0.005, 0.005) * 2


def rtt_proxy(platform: str, size: int) -> float:
    base, divisor = RTT_US[platform]
    return base + size / divisor


def rtt_direct(size: int) -> float:
    return 10.0 + size / 2000


def _record(platform: str, metric: str, quantity: str, x: int, value: float, seq: int, unit: str,
            mode: str | None = None, run_id: str = RUN_ID) -> dict[str, object]:
    return {
        "run_id": run_id, "platform": platform, "label": LABELS[platform], "metric": metric, "quantity": quantity,
        "x": x, "x_unit": "B" if metric == "response" else "instances", "value": value, "unit": unit,
        "status": "ok", "repetition": seq, "instance": None, "seq": seq,
        "time": f"2025-02-02T00:00:{seq % 60:02d}.000000Z", "host": f"{platform}-server", "mode": mode,
    }


def records(platforms: tuple[str, ...] = tuple(LABELS), scale: dict[tuple[str, str, int], float] | None = None,
            run_id: str = RUN_ID) -> list[dict[str, object]]:
    """Samples of every platform; ``scale[(platform, quantity, x)]`` multiplies one point (a regression; for
    ``rtt_direct_us`` the direct path of that platform's response point)."""
    factors = scale or {}
    out = []
    for platform in platforms:
        for x in INSTANCES:
            boot = BOOT_MS_PER_INSTANCE[platform] * x * factors.get((platform, "all_ms", x), 1.0)
            memory = MEMORY_MB_PER_INSTANCE[platform] * x * factors.get((platform, "server_used_mb", x), 1.0)
            for seq, offset in enumerate(OFFSETS_6):
                out.append(_record(platform, "boot", "all_ms", x, boot * (1 + offset), seq, "ms", run_id=run_id))
                out.append(_record(platform, "memory", "server_used_mb", x, memory * (1 + offset), seq, "MB",
                                   run_id=run_id))
        for size in SIZES:
            proxy = rtt_proxy(platform, size) * factors.get((platform, "rtt_proxy_us", size), 1.0)
            for seq, offset in enumerate(OFFSETS_20):
                out.append(_record(platform, "response", "rtt_proxy_us", size, proxy * (1 + offset), seq, "us",
                                   "icmp", run_id))
                direct = rtt_direct(size) * factors.get((platform, "rtt_direct_us", size), 1.0)
                out.append(_record(platform, "response", "rtt_direct_us", size, direct * (1 + offset), seq,
                                   "us", "icmp", run_id))
    return out


def write_run(run_dir: Path, platforms: tuple[str, ...] = tuple(LABELS),
              scale: dict[tuple[str, str, int], float] | None = None) -> Path:
    """Write samples.jsonl, points.jsonl and manifest.json of a synthetic run into ``run_dir``."""
    run_dir.mkdir(parents=True)
    run_id = run_dir.name
    samples = records(platforms, scale, run_id)
    Journal(run_dir / "samples.jsonl").append(samples)
    points = PointsJournal(run_dir / "points.jsonl")
    rule = StoppingRule(3, 6, 0.05)
    keys = sorted({(r["platform"], r["metric"], r["quantity"], r["x"], r["mode"]) for r in samples
                   if r["quantity"] in ("all_ms", "server_used_mb", "rtt_proxy_us")}, key=str)
    for platform, metric, quantity, x, mode in keys:
        values = [float(r["value"]) for r in samples  # type: ignore[arg-type]
                  if (r["platform"], r["quantity"], r["x"]) == (platform, quantity, x)]
        point = {"run_id": run_id, "platform": platform, "label": LABELS[str(platform)], "metric": metric,
                 "quantity": quantity, "x": x, "x_unit": "B" if metric == "response" else "instances",
                 "mode": mode, "host": f"{platform}-server"}
        points.append_point(point, rule, rule.decide(values), batches=len(values), time="2025-02-02T00:00:00.000000Z")
    merge_manifest(run_dir, other={"run_id": run_id, "created": "2025-02-02T00:00:00.000000Z"},
                   hosts={f"{p}-server": {"kernel": "6.1.0-synthetic", "platform": p, "label": LABELS[p]}
                          for p in platforms},
                   parameters={"boot_counts": list(INSTANCES), "response_sizes": list(SIZES)})
    return run_dir
