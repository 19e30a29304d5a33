"""Append-only JSONL journal (vnflab.measure.journal): durability, torn lines, concurrency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import vnflab
from vnflab.measure import journal as journal_module
from vnflab.measure.journal import (
    Journal,
    JournalCorruptError,
    PointsJournal,
    TornLineWarning,
    read_jsonl,
    utc_timestamp,
)
from vnflab.measure.stopping import StoppingRule

PACKAGE_ROOT = str(Path(vnflab.__file__).resolve().parent.parent)


def sample(seq: int, value: float | None = 1.5) -> dict[str, object]:
    return {
        "run_id": "r", "platform": "docker", "label": "l", "metric": "boot", "quantity": "all_ms", "x": 1,
        "x_unit": "instances", "value": value, "unit": "ms", "status": "ok" if value is not None else "lost",
        "repetition": 0, "instance": None, "seq": seq, "time": utc_timestamp(), "host": "h", "mode": None,
    }


def test_append_writes_lines_and_reads_back(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "samples.jsonl")
    assert journal.append([sample(0), sample(1, None)]) == 2
    assert journal.append([]) == 0
    assert journal.append(sample(i) for i in range(2, 4)) == 2
    contents = read_jsonl(journal.path)
    assert contents.torn_lines == 0
    assert [r["seq"] for r in contents.records] == [0, 1, 2, 3]
    assert contents.records[1]["value"] is None
    raw = journal.path.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 4


def test_append_fsyncs_written_data_before_returning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "samples.jsonl"
    synced: list[tuple[bool, bytes]] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
        synced.append((is_dir, b"" if is_dir else path.read_bytes()))
        real_fsync(fd)

    monkeypatch.setattr(journal_module.os, "fsync", spy)
    Journal(path).append([sample(0)])
    # first append: the file's data (already containing the record), then its directory entry
    assert [is_dir for is_dir, _ in synced] == [False, True]
    assert synced[0][1].count(b"\n") == 1 and b'"seq":0' in synced[0][1]
    synced.clear()
    Journal(path).append([sample(1), sample(2)])
    assert [is_dir for is_dir, _ in synced] == [False]
    assert synced[0][1].count(b"\n") == 3


def test_unencodable_batch_leaves_file_untouched(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "samples.jsonl")
    journal.append([sample(0)])
    before = journal.path.read_bytes()
    with pytest.raises(ValueError):
        journal.append([sample(1), sample(2, float("nan"))])
    with pytest.raises(TypeError):
        journal.append([["not", "a", "mapping"]])  # type: ignore[list-item]
    assert journal.path.read_bytes() == before


def test_reader_skips_torn_last_line_with_warning(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    Journal(path).append([sample(0), sample(1)])
    with path.open("ab") as handle:
        handle.write(b'{"run_id":"r","platform":"dock')
    with pytest.warns(TornLineWarning):
        contents = read_jsonl(path)
    assert contents.torn_lines == 1
    assert [r["seq"] for r in contents.records] == [0, 1]


def test_reader_refuses_damage_before_the_last_line(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n', encoding="utf-8")
    with pytest.raises(JournalCorruptError, match=":2:"):
        read_jsonl(path)
    path.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(JournalCorruptError, match="JSON object"):
        read_jsonl(path)


def test_reader_ignores_blank_lines_and_accepts_unterminated_complete_record(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}', encoding="utf-8")
    contents = read_jsonl(path)
    assert ([r["a"] for r in contents.records], contents.torn_lines) == ([1, 2], 0)


def test_append_after_a_kill_drops_the_torn_fragment(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    Journal(path).append([sample(0)])
    with path.open("ab") as handle:
        handle.write(b'{"seq": 1, "val')
    with pytest.warns(TornLineWarning, match="dropped a torn last line"):
        Journal(path).append([sample(2)])
    contents = read_jsonl(path)
    assert ([r["seq"] for r in contents.records], contents.torn_lines) == ([0, 2], 0)


def test_append_after_a_kill_keeps_a_complete_unterminated_record(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    Journal(path).append([sample(0)])
    with path.open("ab") as handle:
        handle.write(json.dumps(sample(1)).encode())
    Journal(path).append([sample(2)])
    assert [r["seq"] for r in read_jsonl(path).records] == [0, 1, 2]


def test_append_repairs_a_long_torn_fragment(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    Journal(path).append([sample(0)])
    with path.open("ab") as handle:
        handle.write(b'{"x": "' + b"y" * 10000)
    with pytest.warns(TornLineWarning):
        Journal(path).append([sample(1)])
    assert [r["seq"] for r in read_jsonl(path).records] == [0, 1]


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_samples_acknowledged_before_a_sigkill_survive(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    code = f"""
        import sys
        sys.path.insert(0, {PACKAGE_ROOT!r})
        from vnflab.measure.journal import Journal
        journal = Journal({str(path)!r})
        seq = 0
        while True:
            journal.append([{{"seq": seq + i, "pad": "z" * 3000}} for i in range(5)])
            seq += 5
            print(seq, flush=True)
    """
    env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT}
    with subprocess.Popen(_child(code), stdout=subprocess.PIPE, text=True, env=env) as child:
        assert child.stdout is not None
        acknowledged = 0
        for line in child.stdout:
            acknowledged = int(line)
            if acknowledged >= 200:
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornLineWarning)  # the kill may or may not tear a line
        contents = read_jsonl(path)
    seqs = [r["seq"] for r in contents.records]
    assert seqs == list(range(len(seqs)))  # in order, nothing missing in between
    assert len(seqs) >= acknowledged
    assert contents.torn_lines in (0, 1)


def test_concurrent_appenders_do_not_interleave(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    code = """
        import sys
        from vnflab.measure.journal import Journal
        worker = int(sys.argv[1])
        journal = Journal(sys.argv[2])
        for batch in range(50):
            journal.append([{"worker": worker, "batch": batch, "i": i, "pad": "p" * 5000} for i in range(4)])
    """
    env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT}
    children = [subprocess.Popen([*_child(code), str(w), str(path)], env=env) for w in range(4)]
    assert [child.wait(timeout=60) for child in children] == [0, 0, 0, 0]
    contents = read_jsonl(path)
    assert contents.torn_lines == 0
    assert len(contents.records) == 4 * 50 * 4
    for worker in range(4):
        mine = [(r["batch"], r["i"]) for r in contents.records if r["worker"] == worker]
        assert mine == [(b, i) for b in range(50) for i in range(4)]


def test_points_journal_records_rule_and_reason(tmp_path: Path) -> None:
    rule = StoppingRule(min_samples=3, max_samples=3)
    decision = rule.decide([1.0, 5.0, None])
    points = PointsJournal(tmp_path / "points.jsonl")
    point = {"run_id": "r", "platform": "kvm", "label": "l", "metric": "boot", "quantity": "all_ms", "x": 4,
             "x_unit": "instances", "mode": None, "host": "h"}
    written = points.append_point(point, rule, decision, batches=1, time="2025-01-01T00:00:00.000000Z")
    (record,) = read_jsonl(points.path).records
    assert record == written
    assert record["reason"] == "cap" and record["n"] == 3 and record["n_lost"] == 1 and record["n_ok"] == 2
    assert record["rule_min_samples"] == 3 and record["rule_rel_half_width"] == 0.05
    assert record["platform"] == "kvm" and record["batches"] == 1


def test_utc_timestamp_format() -> None:
    from datetime import UTC, datetime

    assert utc_timestamp(datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "2025-01-02T03:04:05.000006Z"
