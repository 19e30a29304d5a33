"""load -> tables -> plots -> report -> CLI, end to end on a synthetic run with known answers."""

from __future__ import annotations

import itertools
import json
import math
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

from vnflab.cli import main
from vnflab.measure.journal import Journal, PointsJournal, TornLineWarning
from vnflab.measure.manifest import merge_manifest
from vnflab.measure.rundir import RUN_ID_RE
from vnflab.measure.schema import SAMPLE_FIELDS, parse_label, validate_sample
from vnflab.measure.stopping import StoppingRule
from vnflab.report.build import build_report
from vnflab.report.tables import figure2_table, summary_table
from vnflab.stats.load import load_run
from vnflab.stats.panels import PANELS

RUN_ID = "20250101T000000Z-abc123"
LABELS = {
    "docker": "docker/debian-iptables (native, stand-in for CoreOS)",
    "xen": "xl/clickos (pv, real)",
    "kvm": "qemu/osv-proxy (kvm, real)",
}
BOOT_MS_PER_INSTANCE = {"docker": 10.0, "xen": 5.0, "kvm": 40.0}
MEMORY_MB_PER_INSTANCE = {"docker": 5.0, "xen": 8.0, "kvm": 30.0}
RTT_BASE_US = {"docker": 150.0, "xen": 100.0, "kvm": 400.0}
INSTANCES = (1, 2, 4, 8)
SIZES = (64, 1024, 65536)
OFFSETS_3 = (-1.0, 0.0, 1.0)
OFFSETS_20 = tuple(float(v) for v in (-2, -1, 0, 1, 2) * 4)  # mean 0


def record(platform: str, metric: str, quantity: str, x: int, value: float | None, seq: int,
           unit: str, mode: str | None = None) -> dict[str, object]:
    return {
        "run_id": RUN_ID, "platform": platform, "label": LABELS[platform], "metric": metric, "quantity": quantity,
        "x": x, "x_unit": "B" if metric == "response" else "instances", "value": value, "unit": unit,
        "status": "ok" if value is not None else "lost", "repetition": 0, "instance": None, "seq": seq,
        "time": f"2025-01-01T00:00:{seq % 60:02d}.000000Z", "host": f"{platform}-host", "mode": mode,
    }


def synthetic_records() -> list[dict[str, object]]:
    records = []
    for platform in LABELS:
        for x in INSTANCES:
            for seq, offset in enumerate(OFFSETS_3):
                records.append(record(platform, "boot", "all_ms", x, BOOT_MS_PER_INSTANCE[platform] * x + offset,
                                      seq, "ms"))
            if platform == "kvm" and x == 8:
                continue  # kvm lacks memory at 8 instances: the largest common x for memory is 4
            for seq, offset in enumerate(OFFSETS_3):
                records.append(record(platform, "memory", "server_used_mb", x,
                                      MEMORY_MB_PER_INSTANCE[platform] * x + offset / 2, seq, "MB"))
        for x in SIZES:
            for seq, offset in enumerate(OFFSETS_20):
                base = RTT_BASE_US[platform] + x / 100
                records.append(record(platform, "response", "rtt_proxy_us", x, base + offset, seq, "us", "udp"))
                records.append(record(platform, "response", "rtt_direct_us", x, 50.0 + x / 200 + offset, seq,
                                      "us", "udp"))
    # two lost proxy samples for docker at 64 B
    records.append(record("docker", "response", "rtt_proxy_us", 64, None, 20, "us", "udp"))
    records.append(record("docker", "response", "rtt_proxy_us", 64, None, 21, "us", "udp"))
    return records


def write_run(run_dir: Path, torn: bool = False) -> Path:
    run_dir.mkdir(parents=True)
    Journal(run_dir / "samples.jsonl").append(synthetic_records())
    if torn:
        with (run_dir / "samples.jsonl").open("ab") as handle:
            handle.write(b'{"run_id": "' + RUN_ID.encode() + b'", "platf')
    points = PointsJournal(run_dir / "points.jsonl")
    rule = StoppingRule(3, 3)
    for platform, x in itertools.product(LABELS, INSTANCES):
        point = {"run_id": RUN_ID, "platform": platform, "label": LABELS[platform], "metric": "boot",
                 "quantity": "all_ms", "x": x, "x_unit": "instances", "mode": None, "host": f"{platform}-host"}
        values = [BOOT_MS_PER_INSTANCE[platform] * x + o for o in OFFSETS_3]
        if platform == "kvm" and x == 1:
            values = [10.0, 60.0, 35.0]  # too noisy: stops at the cap
        points.append_point(point, rule, rule.decide(values), batches=1, time="2025-01-01T00:00:00.000000Z")
    merge_manifest(run_dir, other={"run_id": RUN_ID, "created": "2025-01-01T00:00:00.000000Z"},
                   hosts={"docker-host": {"kernel": "6.8.0-test", "cpu": {"model": "Synthetic CPU", "count": 4},
                                          "versions": {"docker": "27.0"}}},
                   parameters={"instances": list(INSTANCES), "sizes": list(SIZES), "response": {"min_samples": 20}})
    return run_dir


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "results" / RUN_ID)


def test_synthetic_records_follow_the_contract() -> None:
    assert all(validate_sample(r) == [] for r in synthetic_records())
    assert parse_label(LABELS["docker"]).stands_in_for == "CoreOS"  # type: ignore[union-attr]
    assert parse_label(LABELS["xen"]).is_stand_in is False  # type: ignore[union-attr]
    assert parse_label("free text") is None
    assert "status ok with a null value" in validate_sample({**synthetic_records()[0], "value": None})
    assert validate_sample({"x": 1})[0] == "missing field 'platform'"


def test_load_gives_tidy_frame(run_dir: Path) -> None:
    run = load_run(run_dir)
    samples = run.samples
    assert tuple(samples.columns) == SAMPLE_FIELDS
    assert len(samples) == len(synthetic_records())
    assert samples["x"].dtype == "int64" and samples["value"].dtype == "float64"
    assert str(samples["seq"].dtype) == "Int64" and samples["instance"].isna().all()
    assert str(samples["time"].dtype).startswith("datetime64") and samples["time"].notna().all()
    assert samples["value"].isna().sum() == 2
    assert run.manifest["hosts"]["docker-host"]["kernel"] == "6.8.0-test"
    assert len(run.points) == len(LABELS) * len(INSTANCES)
    assert run.torn_lines == {"samples.jsonl": 0, "points.jsonl": 0}
    (note,) = run.notes  # this fixture journals the summaries of its boot points only
    assert note.startswith("20 point(s) have samples but no summary in points.jsonl") and " boot " not in note


def test_load_tolerates_torn_line_and_missing_manifest(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / RUN_ID, torn=True)
    (run_dir / "manifest.json").unlink()
    with pytest.warns(TornLineWarning):
        run = load_run(run_dir)
    assert len(run.samples) == len(synthetic_records())
    assert run.torn_lines["samples.jsonl"] == 1
    assert any("torn" in note for note in run.notes) and any("manifest.json is missing" in n for n in run.notes)


def test_load_treats_inconsistent_status_as_lost(tmp_path: Path) -> None:
    run_dir = tmp_path / RUN_ID
    run_dir.mkdir()
    records = [record("xen", "boot", "all_ms", 1, 5.0, 0, "ms"), record("xen", "boot", "all_ms", 1, None, 1, "ms")]
    records[1]["status"] = "ok"
    records.append({**record("xen", "boot", "all_ms", 1, 7.0, 2, "ms"), "status": "lost"})
    Journal(run_dir / "samples.jsonl").append(records)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = load_run(run_dir)
    assert run.samples["value"].isna().sum() == 2
    assert len(run.notes) == 4  # two inconsistencies, missing manifest, a point with no summary
    Journal(run_dir / "samples.jsonl").append([{"platform": "xen"}])
    with pytest.raises(ValueError, match="record 4: missing field"):
        load_run(run_dir)


def test_summary_has_known_answers(run_dir: Path) -> None:
    run = load_run(run_dir)
    summary = summary_table(run.samples, run.points)
    assert len(summary) == (
        len(LABELS) * len(INSTANCES) + (len(LABELS) * len(INSTANCES) - 1) + len(LABELS) * len(SIZES) * 2
    )
    assert list(summary["metric"].drop_duplicates()) == ["boot", "response", "memory"]
    boot = summary[summary["metric"] == "boot"].set_index(["platform", "x"])
    for platform, x in itertools.product(LABELS, INSTANCES):
        row = boot.loc[(platform, x)]
        assert row["mean"] == pytest.approx(BOOT_MS_PER_INSTANCE[platform] * x)
        assert row["median"] == pytest.approx(BOOT_MS_PER_INSTANCE[platform] * x)
        assert row["stdev"] == pytest.approx(1.0)
        half = 4.302652729749464 / math.sqrt(3)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((row["mean"] - half, row["mean"] + half))
        assert row["unit"] == "ms" and row["x_unit"] == "instances" and row["mode"] == ""
        tight = half <= 0.05 * row["mean"] and (platform, x) != ("kvm", 1)
        assert row["stop"] == ("converged" if tight else "cap")
    lost_row = summary[(summary["platform"] == "docker") & (summary["quantity"] == "rtt_proxy_us")
                       & (summary["x"] == 64)].iloc[0]
    assert (lost_row["n"], lost_row["n_lost"], lost_row["mean"]) == (22, 2, pytest.approx(150.64))
    assert lost_row["mode"] == "udp" and lost_row["stop"] == ""


def test_figure2_tables(run_dir: Path) -> None:
    run = load_run(run_dir)
    summary = summary_table(run.samples, run.points)
    boot = figure2_table(summary, PANELS[0])
    assert list(boot.columns) == ["x", "docker", "kvm", "xen"]
    assert list(boot["x"]) == list(INSTANCES)
    assert list(boot["xen"]) == pytest.approx([5.0 * x for x in INSTANCES])
    response = figure2_table(summary, PANELS[1])
    assert list(response.columns) == ["x", "docker", "kvm", "xen", "docker direct", "kvm direct", "xen direct"]
    assert list(response["kvm direct"]) == pytest.approx([50.0 + x / 200 for x in SIZES])
    memory = figure2_table(summary, PANELS[2])
    assert math.isnan(memory.set_index("x").loc[8, "kvm"])


def test_report_end_to_end_and_regeneration_is_identical(run_dir: Path) -> None:
    first = build_report(run_dir)
    outputs = [first.report, *first.tables.values(), *itertools.chain.from_iterable(first.figures.values())]
    assert all(p.is_file() and p.stat().st_size > 0 for p in outputs)
    assert sorted(p.name for p in (run_dir / "figures").iterdir()) == sorted(
        f"{slug}.{fmt}" for slug in [*(panel.slug for panel in PANELS), "overhead"] for fmt in ("png", "svg", "pdf")
    )
    snapshot = {p: p.read_bytes() for p in outputs}
    second = build_report(run_dir)
    assert second.report == first.report
    for path, content in snapshot.items():
        assert path.read_bytes() == content, f"{path.name} changed on regeneration"

    text = first.report.read_text()
    for heading in ("## Summary", "## Appendix: data", "## Appendix: run manifest", "## Metric definitions",
                    "## Stopping", "## Figure 2", "## All points (summary table)",
                    "## Management requirements (paper Section V)"):
        assert heading in text
    assert f"# vnflab run `{RUN_ID}`" in text
    assert "6.8.0-test" in text and "Synthetic CPU" in text and "`parameters.response.min_samples`" not in text
    assert "stand-in" in text and "CoreOS" in text
    assert "T0" in text and "T1" in text
    assert "![Fig. 2a](figures/fig2a_boot.png)" in text
    # converged where t(.975,2)/sqrt(3) = 2.48 ms <= 5% of the mean: docker@8, kvm@2,4,8 (kvm@1 is noisy)
    assert "12 points journaled; 8 stopped without converging" in text
    assert "What a comparison can tell" in text and "Holm-adjusted within each family" in text
    assert "run-to-run tolerance" in text and "vnflab calibrate on the same-code pair" in text
    assert "| tolerance_pct | detectable_pct |" in text
    assert "(2 lost)" in text


def _requirement_block(text: str, section: str) -> str:
    match = re.search(rf"### {section} .*?(?=\n### |\Z)", text, flags=re.DOTALL)
    assert match is not None
    return match.group(0)


def _overall_order(block: str) -> list[tuple[int, str]]:
    rows = [line for line in block.splitlines() if re.match(r"\| \d+ \| \w+ \|", line)]
    return [(int(line.split("|")[1]), line.split("|")[2].strip()) for line in rows]


def test_report_ranks_requirements_at_largest_common_x(run_dir: Path) -> None:
    text = build_report(run_dir).report.read_text()
    # boot at 8 instances: xen 40 < docker 80 < kvm 320; memory at 4 (kvm lacks 8): docker 20 < xen 32 < kvm 120
    instantiation = _requirement_block(text, "V-A")
    assert "@ x=8 instances" in instantiation and "@ x=4 instances" in instantiation
    assert _overall_order(instantiation) == [(1, "docker"), (1, "xen"), (3, "kvm")]
    monitoring = _requirement_block(text, "V-C")
    assert "@ x=65536 B" in monitoring
    assert _overall_order(monitoring) == [(1, "xen"), (2, "docker"), (3, "kvm")]
    coexistence = _requirement_block(text, "V-D")
    assert _overall_order(coexistence) == [(1, "docker"), (1, "xen"), (3, "kvm")]
    assert "instantiation (Section V-A) <- boot time + server memory" in text
    assert "monitoring (Section V-C) <- response time" in text


def test_report_without_some_metrics(tmp_path: Path) -> None:
    run_dir = tmp_path / RUN_ID
    run_dir.mkdir()
    Journal(run_dir / "samples.jsonl").append([r for r in synthetic_records() if r["metric"] == "boot"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        generated = build_report(run_dir)
    assert generated.figures["fig2b_response"] == [] and len(generated.figures["fig2a_boot"]) == 3
    text = generated.report.read_text()
    assert "no `response/rtt_proxy_us` samples" in text
    assert "response time: no samples with a value in this run" in text


def test_cli_new_run_summary_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-run", str(tmp_path / "results")]) == 0
    created = Path(capsys.readouterr().out.strip())
    assert created.parent == tmp_path / "results" and created.is_dir() and RUN_ID_RE.match(created.name)
    assert json.loads((created / "manifest.json").read_text())["run_id"] == created.name

    run_dir = write_run(tmp_path / "results" / RUN_ID)
    assert main(["summary", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| platform | label |") and "rtt_proxy_us" in out
    assert main(["summary", "--csv", str(run_dir)]) == 0
    csv = capsys.readouterr().out
    assert csv.splitlines()[0].startswith("platform,label,metric,quantity,mode,x,x_unit,n,n_lost,mean")
    assert main(["report", str(run_dir)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == str(run_dir / "report.md")
    assert (run_dir / "tables" / "summary.csv").read_text() == csv

    assert main(["report", str(tmp_path / "nope")]) == 1
    assert "no samples.jsonl" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main([])
    assert usage.value.code == 2


def test_summary_of_empty_run(tmp_path: Path) -> None:
    run_dir = tmp_path / RUN_ID
    run_dir.mkdir()
    (run_dir / "samples.jsonl").write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = load_run(run_dir)
        assert summary_table(run.samples).empty
        text = build_report(run_dir).report.read_text()
    assert "0 samples" in text
    assert isinstance(pd.read_csv(run_dir / "tables" / "summary.csv"), pd.DataFrame)


def test_report_lists_failed_starts(run_dir: Path) -> None:
    message = "driver: 1 of 2 instances failed to start: vnflab-xen-1: line 124: Segmentation fault\nxl create failed"
    Journal(run_dir / "failures.jsonl").append([
        {"run_id": RUN_ID, "platform": "xen", "label": "xen/linux-pv (tcg, stand-in for ClickOS)", "metric": "boot",
         "host": "clickos", "mode": None, "x": 2, "x_unit": "instances", "batch": 1, "msg": message,
         "retried": True, "time": "2026-11-24T10:00:00.000000Z"}])
    text = build_report(run_dir).report.read_text()
    assert "`failures.jsonl`: 1 batches in which an instance failed to start (1 measured again)" in text
    assert "## Failed starts" in text
    assert "| xen | boot | 2 | 1 | True | 2026-11-24T10:00:00.000000Z | driver: 1 of 2 instances failed" in text
    assert "Segmentation fault xl create failed |" in text


def test_report_without_failures_has_no_failed_starts_section(run_dir: Path) -> None:
    text = build_report(run_dir).report.read_text()
    assert "## Failed starts" not in text and "failures.jsonl" not in text
    assert "batches.jsonl" not in text


def test_report_counts_how_the_probes_ended(run_dir: Path) -> None:
    key = {"run_id": RUN_ID, "platform": "xen", "label": "xen/linux-pv (tcg, stand-in for ClickOS)",
           "metric": "boot", "host": "clickos", "mode": None, "x": 2, "x_unit": "instances",
           "time": "2026-11-24T10:00:00.000000Z"}
    Journal(run_dir / "batches.jsonl").append([
        {**key, "batch": 0, "probe": {"ended": "deadline", "late_replies": 2, "clock_glitches": 0}},
        {**key, "batch": 1, "probe": {"ended": "all answered", "late_replies": 0, "clock_glitches": 3}},
        {**key, "batch": 2, "probe": {"ended": "all answered", "late_replies": 0, "clock_glitches": 0}}])
    run = load_run(run_dir)
    assert list(run.batches["probe.ended"]) == ["deadline", "all answered", "all answered"]
    text = build_report(run_dir).report.read_text()
    assert ("`batches.jsonl`: prober diagnostics of 3 batches: 1 ended at the deadline with instances unanswered, "
            "2 replies came after it, 3 clock reads were found bad and were ignored") in text
