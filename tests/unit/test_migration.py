"""The migration metric's pure parts: downtime from reply times, the migrate command's outcome, the records."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest
from ansible.module_utils.vnflab_host import migration as mig

from vnflab.measure.records import PointKey, longest_gap_outside, migration_records
from vnflab.measure.schema import validate_sample
from vnflab.metrics import watched_values

MS = 1_000_000
KEY = PointKey(run_id="r", platform="kvm", label="kvm/osv (tcg, real)", metric="migration", host="vnflab-a")


def test_downtime_is_the_longest_gap_between_replies() -> None:
    sends = [i * MS for i in range(100)]
    # replies 0.2 ms after each request, none to requests 40..69 (30 ms without a reply)
    replies = [t + MS // 5 for i, t in enumerate(sends) if not 40 <= i < 70]
    summary = mig.summarize(sends, replies, end_ns=100 * MS, interval_ns=MS)
    assert summary.sent == 100 and summary.replied == 70 and summary.lost == 30
    assert summary.downtime_ms == pytest.approx(31.0)  # reply to 39 (39.2 ms) .. reply to 70 (70.2 ms)
    assert summary.downtime_start_ns == 39 * MS + MS // 5
    assert summary.recovered
    assert summary.gaps_ms == [[39.2, 31.0]]  # [offset from the first request, gap], ms


def test_no_gap_downtime_is_one_interval() -> None:
    sends = [i * MS for i in range(10)]
    summary = mig.summarize(sends, [t + 100 for t in sends], end_ns=10 * MS, interval_ns=MS)
    assert summary.lost == 0 and summary.downtime_ms == pytest.approx(1.0) and summary.gaps_ms == []


def test_a_path_that_never_came_back_counts_until_the_end_and_is_not_recovered() -> None:
    sends = [i * MS for i in range(100)]
    replies = [t + 100 for t in sends[:50]]
    summary = mig.summarize(sends, replies, end_ns=100 * MS, interval_ns=MS)
    assert not summary.recovered
    assert summary.downtime_ms == pytest.approx(100 - 49 - 0.0001)
    assert summary.lost == 50


def test_no_reply_at_all() -> None:
    summary = mig.summarize([0, MS, 2 * MS], [], end_ns=3 * MS, interval_ns=MS)
    assert summary.replied == 0 and summary.lost == 3 and not summary.recovered
    assert summary.downtime_ms == pytest.approx(3.0)


def test_replies_before_the_stream_and_out_of_order_are_handled() -> None:
    sends = [10 * MS + i * MS for i in range(5)]
    replies = [14 * MS + 1, 5 * MS, 11 * MS + 1, 10 * MS + 1, 12 * MS + 1, 13 * MS + 1]  # 5 ms: stale, before
    summary = mig.summarize(sends, replies, end_ns=15 * MS, interval_ns=MS)
    assert summary.replied == 5 and summary.lost == 0 and summary.downtime_ms == pytest.approx(1.0)


def fake_runner(returncode: int, stdout: str = "", stderr: str = "") -> Any:
    def run(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, returncode, stdout, stderr)
    return run


def test_migrate_reads_the_platform_report() -> None:
    outcome = mig.migrate(["m"], 10, fake_runner(0, 'noise\n{"bytes": 123, "platform_downtime_ms": 7}\n'))
    assert outcome.error is None and outcome.skipped_reason is None
    assert outcome.bytes == 123 and outcome.platform_downtime_ms == 7.0 and outcome.total_ms >= 0


def test_migrate_exit_3_is_a_skip_with_its_reason() -> None:
    outcome = mig.migrate(["m"], 10, fake_runner(3, "", "criu check failed: vdso\n"))
    assert outcome.skipped_reason == "criu check failed: vdso" and outcome.error is None


def test_migrate_other_exits_are_errors_and_no_report_is_no_bytes() -> None:
    assert mig.migrate(["m"], 10, fake_runner(2, "", "QEMU did not migrate")).error == "QEMU did not migrate"
    assert mig.migrate(["/nonexistent/vnflab-migrate"], 10).returncode == 127
    assert mig.migrate(["m"], 10, fake_runner(0, "not json")).bytes is None


STREAM = {"sent": 1000, "replied": 990, "lost": 10, "downtime_ms": 11.5, "recovered": True, "mode": "icmp"}
MOVE = {"total_ms": 812.0, "bytes": 4096, "platform_downtime_ms": 9.0, "skipped_reason": None}


def test_migration_records() -> None:
    records = migration_records(KEY, {"stream": STREAM, "move": MOVE}, 2)
    by_quantity = {r["quantity"]: r for r in records}
    assert {q: r["value"] for q, r in by_quantity.items()} == {
        "total_ms": 812.0, "downtime_ms": 11.5, "requests_lost": 10.0, "requests_sent": 1000.0,
        "bytes_transferred": 4096.0, "platform_downtime_ms": 9.0}
    assert all(r["repetition"] == 2 and r["x"] == 1 and r["x_unit"] == "VNFs" for r in records)
    assert all(validate_sample(r) == [] for r in records)
    assert watched_values("migration", {"stream": STREAM}) == [11.5]


def test_a_path_that_did_not_recover_has_its_downtime_lost() -> None:
    records = migration_records(KEY, {"stream": {**STREAM, "recovered": False}, "move": {**MOVE, "bytes": None}}, 0)
    by_quantity = {r["quantity"]: r for r in records}
    assert by_quantity["downtime_ms"]["status"] == "lost" and by_quantity["downtime_ms"]["value"] is None
    assert "bytes_transferred" not in by_quantity


def test_a_skip_is_one_record_with_its_reason() -> None:
    (record,) = migration_records(KEY, {"stream": {}, "move": {"skipped_reason": "platform native has no migrate"}}, 0)
    assert record["status"] == "skipped" and record["value"] is None
    assert record["reason"] == "platform native has no migrate"
    assert validate_sample(record) == []
    assert validate_sample({**record, "value": 1.0}) == ["status skipped with a non-null value"]


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP socket needs root")
def test_stream_on_loopback_sees_every_reply() -> None:
    summary, send_errors = mig.stream("127.0.0.1", duration_s=0.2, interval_s=0.001, grace_s=0.2)
    assert send_errors == 0
    assert 150 <= summary.sent <= 201
    assert summary.lost == 0 and summary.recovered
    assert summary.downtime_ms is not None and summary.downtime_ms < 50


def test_stream_is_bounded() -> None:
    with pytest.raises(ValueError, match="duration_s"):
        mig.stream("127.0.0.1", duration_s=mig.MAX_DURATION_S + 1)


def test_the_noise_floor_is_the_longest_gap_away_from_the_move() -> None:
    start = 1_000 * MS
    gaps = [[5000.0, 57.0], [12000.0, 33.0], [800.0, 29.0]]  # offsets from the stream's start, ms
    move = (start + 4990 * MS, start + 5500 * MS)
    assert longest_gap_outside(gaps, start, move) == 33.0
    assert longest_gap_outside([[5000.0, 57.0]], start, move) is None
    # a gap that ends inside the move overlaps it
    assert longest_gap_outside([[4980.0, 20.0], [100.0, 3.0]], start, move) == 3.0


def test_migration_records_carry_the_noise_floor() -> None:
    records = migration_records(KEY, {"stream": {**STREAM, "baseline_gap_ms": 33.0}, "move": MOVE}, 0)
    assert {r["quantity"]: r["value"] for r in records}["baseline_gap_ms"] == 33.0
    without = migration_records(KEY, {"stream": {**STREAM, "baseline_gap_ms": None}, "move": MOVE}, 0)
    assert "baseline_gap_ms" not in {r["quantity"] for r in without}
