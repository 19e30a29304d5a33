"""Known answers for the benchmark's summary (analysis/vnflab/run/bench.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vnflab.cli import main
from vnflab.run import bench


def task(tags: list[str], path: str, host: str, start: float, end: float, probe_s: float = 0.0) -> dict[str, Any]:
    # The stage comes from the play's playbook file; its tags are in no order (the first here names the file).
    stage = {"always": "validate"}.get(tags[0], tags[0])
    return {"event": "task", "play_file": stage, "play_tags": sorted(tags), "path": path, "host": host,
            "start": start, "end": end,
            "probe_s": probe_s, "task": "t", "play": "p", "role": "", "action": "x", "status": "ok"}


RECORDS = [
    {"event": "playbook", "time": 100.0},
    task(["always"], "playbooks/validate.yml:10", "localhost", 100.0, 101.0),
    task(["lab", "boot"], "roles/emulated_server/tasks/vm.yml:3", "localhost", 101.0, 131.0),
    task(["provision", "boot"], "roles/platform_xen/tasks/boot.yml:30", "clickos", 131.0, 200.0),
    task(["provision", "boot"], "roles/platform_docker/tasks/main.yml:5", "coreos", 131.0, 140.0),  # in parallel
    task(["provision", "boot"], "roles/platform_docker/tasks/main.yml:9", "coreos", 141.0, 150.0),
    task(["boot"], "playbooks/boot.yml:20", "coreos", 200.0, 260.0, probe_s=50.0),
    task(["boot"], "playbooks/boot.yml:20", "clickos", 260.0, 400.0, probe_s=130.0),
    task(["report", "boot"], "playbooks/report.yml:4", "localhost", 400.0, 410.0),
    {"event": "end", "time": 410.0},
]


def test_union_of_overlapping_intervals() -> None:
    assert bench.union_length([(0, 10), (5, 12), (20, 21)]) == pytest.approx(13.0)
    assert bench.union_length([]) == 0.0


@pytest.mark.parametrize(("record", "phase"), [
    (RECORDS[2], "build: emulated servers (image, boot)"),
    (RECORDS[3], "build: Xen install and reboot"),
    (RECORDS[4], "provision: coreos"),
    (task(["provision"], "roles/platform_kvm/tasks/osv.yml:40", "osv", 0, 1), "build: OSv and Capstan"),
    (task(["provision"], "roles/platform_xen/tasks/clickos-build.yml:7", "clickos", 0, 1),
     "build: ClickOS and clickos-ctl"),
    (RECORDS[1], "validate"),
    (RECORDS[6], "boot: coreos"),
])
def test_phase_of_a_task(record: dict[str, Any], phase: str) -> None:
    assert bench.phase_of(record) == phase


def test_summary_of_a_run() -> None:
    points = [{"metric": "boot", "host": "coreos", "platform": "docker", "x": 1, "time": "1970-01-01T00:03:40Z"},
              {"metric": "boot", "host": "coreos", "platform": "docker", "x": 4, "time": "1970-01-01T00:04:20Z"}]
    summary = bench.summarize(RECORDS, points)
    phases = {p["phase"]: p["wall_s"] for p in summary["phases"]}
    assert summary["wall_s"] == pytest.approx(310.0)
    assert phases["provision: coreos"] == pytest.approx(18.0)  # two tasks with a gap, not 19
    assert phases["boot: clickos"] == pytest.approx(140.0)
    assert summary["probe_s"] == pytest.approx(180.0)
    assert summary["ansible_in_measurement_s"] == pytest.approx(10.0 + 10.0)
    assert summary["ansible_share"] == pytest.approx(20.0 / 310.0, abs=1e-4)
    assert [p["wall_s"] for p in summary["points"]] == pytest.approx([20.0, 40.0])  # from the task's start
    assert [p["phase"] for p in summary["phases"]][:2] == ["validate", "build: emulated servers (image, boot)"]


def test_no_task_records_is_an_error_that_says_why() -> None:
    with pytest.raises(ValueError, match="VNFLAB_TIMING_FILE"):
        bench.summarize([{"event": "playbook", "time": 1.0}])


def test_cli_writes_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    timing = tmp_path / "timing.jsonl"
    timing.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    out = tmp_path / "bench" / "x.json"
    assert main(["bench", str(timing), "--out", str(out), "--phase", "install=42.5", "--extra", "profile=quick"]) == 0
    summary = json.loads(out.read_text())
    assert summary["phases"][0] == {"phase": "install", "wall_s": 42.5}
    assert summary["context"] == {"profile": "quick"}
    assert "| **run** | **310.0** |" in out.with_suffix(".md").read_text()
    assert "| install | 42.5 |" in capsys.readouterr().out
