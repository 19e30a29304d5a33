"""The migration metric in the report: downtime per platform, skips with their reasons, kept out of the summary."""

from __future__ import annotations

import csv
from pathlib import Path

from synthetic_run import LABELS, RUN_ID, write_run

from vnflab.measure.journal import Journal
from vnflab.measure.records import PointKey, migration_records
from vnflab.report.build import build_report


def key(platform: str) -> PointKey:
    return PointKey(run_id=RUN_ID, platform=platform, label=LABELS[platform], metric="migration", host="vnflab-a")


def add_migrations(run_dir: Path) -> None:
    records = []
    for repetition, downtime in enumerate((40.0, 60.0)):
        stream = {"sent": 15000, "lost": int(downtime), "downtime_ms": downtime, "recovered": True, "mode": "icmp"}
        move = {"total_ms": 900.0 + repetition, "bytes": 1000, "platform_downtime_ms": 30.0}
        records += migration_records(key("kvm"), {"stream": stream, "move": move}, repetition)
    records += migration_records(key("docker"), {"move": {"skipped_reason": "criu check failed: vdso"}}, 0)
    records += migration_records(key("native"), {"move": {"skipped_reason": "platform native has no migrate"}}, 0)
    Journal(run_dir / "samples.jsonl").append(records)


def test_downtime_table_figure_and_skips(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / RUN_ID)
    add_migrations(run_dir)
    generated = build_report(run_dir)
    with (run_dir / "tables" / "migration_downtime.csv").open() as handle:
        rows = {row["platform"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"kvm", "docker", "native"}
    assert rows["kvm"]["status"] == "measured" and rows["kvm"]["n"] == "2"
    assert float(rows["kvm"]["downtime_ms_mean"]) == 50.0 and float(rows["kvm"]["downtime_ms_max"]) == 60.0
    assert float(rows["kvm"]["total_ms"]) == 900.5 and float(rows["kvm"]["requests_lost"]) == 50.0
    assert rows["docker"]["status"] == "skipped" and rows["docker"]["reason"] == "criu check failed: vdso"
    assert (run_dir / "tables" / "migration_downtime.tex").is_file()
    assert [p.suffix for p in generated.figures["migration_downtime"]] == [".png", ".svg", ".pdf"]
    report = (run_dir / "report.md").read_text()
    assert "## VNF migration" in report and "criu check failed: vdso" in report
    # Section V gains the requirement, ranked by the downtime (only kvm measured one here)
    with (run_dir / "tables" / "requirement_V-mig.csv").open() as handle:
        assert [row["platform"] for row in csv.DictReader(handle)] == ["kvm"]
    with (run_dir / "tables" / "summary.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    migration_rows = [row for row in summary if row["metric"] == "migration"]
    assert {row["platform"] for row in migration_rows} == {"kvm"}, "a skip is no lost sample in the summary"


def test_a_run_without_migrations_has_no_migration_section(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / RUN_ID)
    generated = build_report(run_dir)
    assert generated.figures["migration_downtime"] == []
    assert "## VNF migration (beyond the paper)" not in (run_dir / "report.md").read_text()
    assert not (run_dir / "tables" / "migration_downtime.csv").exists()
