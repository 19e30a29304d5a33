"""The chain metric's records (vnflab.measure.records.chain_records) and report part (vnflab.report.chain): RTT vs k
per size, the per-hop share against k times one VNF, the boot time of the whole chain, and skips with their reason."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from vnflab.measure.records import PointKey, chain_records
from vnflab.measure.schema import validate_sample
from vnflab.report.chain import chain_section, chain_table, size_of

KEY = PointKey(run_id="r", platform="docker", label="docker/x (native, real)", metric="chain", host="vnflab-a",
               mode="icmp")


def chain_result(k: int, rtt_64: list[float | None], start_ns: int = 10**18) -> dict:
    return {"echo": {"reply_ns": start_ns + k * 300_000_000, "first_request_ns": start_ns - 10**8},
            "start": {"start_ns": start_ns, "started": [f"h{i}" for i in range(k)]},
            "rtt": {"mode": "icmp", "results": [{"size": 64, "rtt_us": rtt_64, "lost": 0},
                                                {"size": 1472, "rtt_us": [v * 2 if v else v for v in rtt_64],
                                                 "lost": 0}]}}


def test_chain_records_carry_the_boot_time_and_every_rtt_sample_by_size() -> None:
    records = chain_records(KEY, 2, chain_result(2, [100.0, 110.0, None]), repetition=0)
    assert all(validate_sample(r) == [] for r in records)
    boot = [r for r in records if r["quantity"] == "boot_chain_ms"]
    assert len(boot) == 1 and boot[0]["value"] == pytest.approx(600.0) and boot[0]["x"] == 2
    rtts = [r for r in records if r["quantity"] == "rtt_chain_us"]
    assert [(r["mode"], r["value"], r["status"]) for r in rtts] == [
        ("icmp 64 B", 100.0, "ok"), ("icmp 64 B", 110.0, "ok"), ("icmp 64 B", None, "lost"),
        ("icmp 1472 B", 200.0, "ok"), ("icmp 1472 B", 220.0, "ok"), ("icmp 1472 B", None, "lost")]
    assert {r["x_unit"] for r in records} == {"VNFs"}


def test_a_chain_that_never_answered_is_a_lost_boot_and_a_skip_is_one_sample_with_its_reason() -> None:
    result = chain_result(1, [])
    result["echo"]["reply_ns"] = None
    [lost] = chain_records(KEY, 1, result, repetition=0)
    assert lost["status"] == "lost" and lost["value"] is None
    [skip] = chain_records(KEY, 1, {}, repetition=0, skipped_reason="not implemented: no chain key")
    assert skip["status"] == "skipped" and skip["reason"] == "not implemented: no chain key"
    assert validate_sample(skip) == []


def samples() -> pd.DataFrame:
    rows = []
    for k, base in ((1, 100.0), (2, 150.0), (4, 250.0)):
        rows += chain_records(KEY, k, chain_result(k, [base, base + 2.0, base - 2.0]), repetition=0)
    rows += chain_records(PointKey("r", "xen", "xen/clickos (tcg, real)", "chain", "vnflab-a"), 1, {}, 0,
                          skipped_reason="not implemented")
    return pd.DataFrame(rows)


def test_chain_table_sets_each_k_against_k_times_one_vnf() -> None:
    table = chain_table(samples())
    row = table[(table.platform == "docker") & (table.size_b == 64) & (table.k == 4)].iloc[0]
    assert row.rtt_us_median == 250.0 and row.k_times_single_us == 400.0
    assert row.ratio_to_k_times_single == pytest.approx(250 / 400)
    assert row.per_hop_us == pytest.approx(50.0)
    assert row.boot_chain_ms == pytest.approx(1200.0) and row.k_times_single_boot_ms == pytest.approx(1200.0)
    assert set(table[table.platform == "docker"].size_b) == {64, 1472}
    xen = table[table.platform == "xen"].iloc[0]
    assert xen.status == "skipped" and xen.reason == "not implemented"
    assert size_of("udp 1472 B") == 1472 and size_of("icmp") is None


def test_chain_section_draws_the_figure_and_names_the_skip(tmp_path: Path) -> None:
    figures = tmp_path / "figures"
    figures.mkdir()
    section, paths = chain_section(samples(), figures, tmp_path)
    assert any(p.suffix == ".png" and p.stat().st_size > 1000 for p in paths)
    text = "\n".join(section.lines)
    assert "Service chains" in text and "figures/chain_rtt.png" in text and "not implemented" in text
    assert "chain_rtt" in section.tables


def test_the_extended_deployment_row_ranks_chain_boot_times_of_every_platform_at_one_k() -> None:
    from vnflab.report.tables import summary_table
    from vnflab.stats.ranking import MetricRef, rank_metric

    rows = []
    for platform, per_k in (("docker", 300.0), ("kvm", 900.0)):
        key = PointKey(run_id="r", platform=platform, label=f"{platform}/x (native, real)", metric="chain",
                       host="a", mode="udp" if platform == "kvm" else "icmp")
        for k in (1, 2):
            for repetition in range(3):
                result = chain_result(k, [100.0])
                result["echo"]["reply_ns"] = result["start"]["start_ns"] + int((k * per_k + repetition) * 1e6)
                rows += chain_records(key, k, result, repetition)
    summary = summary_table(pd.DataFrame(rows))
    [ranking], notes = rank_metric(summary, MetricRef("chain", "boot_chain_ms", "chain boot time"))
    assert notes == [] and ranking.x == 2  # both probe modes' chains in one ranking, at the largest common k
    assert list(ranking.table["platform"]) == ["docker", "kvm"]
