"""Resuming a killed run (vnflab.measure.resume, in the measuring loop of vnflab.measure.ansible_measure).

A first session measures with a scripted module and is killed: the script raises where the process would have
died, and the journal is cut mid-line where a kill during an append would have cut it. A second session on the
same run directory must skip the finished points, continue the cut one from its next repetition, keep every
sample of the first session byte for byte, and journal each point once.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from plugin_harness import LABEL, TASK_VARS, lines, load_action, make_action

from vnflab.measure.journal import Journal, TornLineWarning
from vnflab.measure.records import PointKey, boot_records
from vnflab.measure.resume import read_point_progress
from vnflab.measure.schema import validate_sample
from vnflab.stats.load import load_run

RUN_ID = "20261207T040000Z-abcdef"


class Killed(BaseException):
    """Where the process was killed: nothing after it runs (no handler in the loop catches a BaseException)."""


response_action = load_action("vnf_response_time")
boot_action = load_action("vnf_boot_time")
memory_action = load_action("vnf_memory")


class Script:
    """Stands in for ActionBase._execute_module: scripted outcomes; ``Killed`` when they run out."""

    def __init__(self, outcomes: list[dict[str, Any]]) -> None:
        self.outcomes: Iterator[dict[str, Any]] = iter(outcomes)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, module_name: str | None = None, module_args: dict[str, Any] | None = None,
                 task_vars: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(dict(module_args or {}))
        try:
            return next(self.outcomes)
        except StopIteration:
            raise Killed from None


def run_action(module: ModuleType, action: str, args: dict[str, Any], script: Script) -> dict[str, Any]:
    plugin = make_action(module, action, args)
    plugin._execute_module = script  # type: ignore[method-assign]
    return plugin.run(task_vars=TASK_VARS)


def journal(run_dir: Path, platform: str = "docker") -> dict[str, Any]:
    return {"path": str(run_dir), "run_id": RUN_ID, "platform": platform, "label": LABEL}


def rtt_outcome(size: int, proxy: list[float | None]) -> dict[str, Any]:
    direct = [None if v is None else v / 2 for v in proxy]
    return {"changed": False, "mode": "icmp",
            "results": [{"path": "proxy", "size": size, "rtt_us": proxy, "lost": proxy.count(None)},
                        {"path": "direct", "size": size, "rtt_us": direct, "lost": direct.count(None)}]}


def response_args(run_dir: Path, sizes: list[int], platform: str = "docker") -> dict[str, Any]:
    return {"paths": {"proxy": "198.18.11.1", "direct": "198.18.0.2"}, "sizes": sizes, "mode": "icmp",
            "repeat": {"min_samples": 6, "max_samples": 12, "rel_half_width": 0.05, "batch": 3},
            "journal": journal(run_dir, platform)}


def cut_last_line(path: Path, keep: int = 10) -> bytes:
    """Cut the file's last line after ``keep`` bytes (a kill during an append); return the complete lines."""
    data = path.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[:start + keep])
    return data[:start]


def repetition_ids(samples: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter((r["platform"], r["metric"], r["x"], r["quantity"], r["repetition"], r["seq"]) for r in samples)


STEADY = [100.0, 101.0, 99.0]  # two such batches converge (6 samples, half-width well within 5%)


def test_a_killed_response_task_resumes_at_the_point_it_was_cut(tmp_path: Path) -> None:
    sizes = [64, 128, 256]
    first = Script([rtt_outcome(64, STEADY), rtt_outcome(64, STEADY), rtt_outcome(128, [100.0, 102.0, 98.0])])
    with pytest.raises(Killed):
        run_action(response_action, "vnf_response_time", response_args(tmp_path, sizes), first)
    samples_path = tmp_path / "samples.jsonl"
    before = cut_last_line(samples_path)  # the kill also cut the last line of 128's first batch
    kept = [json.loads(line) for line in before.splitlines()]
    assert len(kept) == 12 + 5
    assert [p["x"] for p in lines(tmp_path / "points.jsonl")] == [64]

    second = Script([rtt_outcome(128, [100.0, 100.0, 100.0]), rtt_outcome(256, STEADY), rtt_outcome(256, STEADY)])
    with pytest.warns(TornLineWarning, match="dropped a torn last line"):  # the next append repairs the cut
        result = run_action(response_action, "vnf_response_time", response_args(tmp_path, sizes), second)

    assert not result.get("failed"), result
    assert [call["sizes"] for call in second.calls] == [[128], [256], [256]]  # 64 finished: not measured again
    assert samples_path.read_bytes().startswith(before)  # every sample of the first session intact, in place
    samples = lines(samples_path)
    assert all(validate_sample(record) == [] for record in samples)
    assert max(repetition_ids(samples).values()) == 1  # no repetition id twice
    assert [r["repetition"] for r in samples if r["x"] == 128 and r["quantity"] == "rtt_proxy_us"] == [0] * 3 + [1] * 3
    points = lines(tmp_path / "points.jsonl")
    assert [p["x"] for p in points] == sizes  # each point once
    cut = points[1]
    assert (cut["batches"], cut["resumed_batches"], cut["n"], cut["reason"]) == (2, 1, 6, "converged")
    assert cut["mean"] == pytest.approx(100.0)
    assert [p.get("resumed") for p in result["points"]] == ["skipped", None, None]
    assert result["samples_written"] == 6 + 12

    run = load_run(tmp_path)  # the report pools each point once
    proxy = run.samples[run.samples["quantity"] == "rtt_proxy_us"]
    assert proxy.groupby("x").size().to_dict() == {64: 6, 128: 6, 256: 6}


def test_a_point_cut_after_its_last_batch_is_summarised_without_another_batch(tmp_path: Path) -> None:
    run_action(response_action, "vnf_response_time", response_args(tmp_path, [64]),
               Script([rtt_outcome(64, STEADY), rtt_outcome(64, STEADY)]))
    (finished,) = lines(tmp_path / "points.jsonl")
    (tmp_path / "points.jsonl").unlink()  # killed between the last batch and its summary
    second = Script([])
    result = run_action(response_action, "vnf_response_time", response_args(tmp_path, [64]), second)
    assert second.calls == [] and not result.get("failed")
    (point,) = lines(tmp_path / "points.jsonl")
    assert {k: point[k] for k in ("n", "batches", "reason", "mean", "half_width")} == {
        k: finished[k] for k in ("n", "batches", "reason", "mean", "half_width")}
    assert point["resumed_batches"] == 2


def test_points_of_another_platform_or_host_are_not_taken_for_this_one(tmp_path: Path) -> None:
    run_action(response_action, "vnf_response_time", response_args(tmp_path, [64]),
               Script([rtt_outcome(64, STEADY), rtt_outcome(64, STEADY)]))
    second = Script([rtt_outcome(64, STEADY), rtt_outcome(64, STEADY)])
    run_action(response_action, "vnf_response_time", response_args(tmp_path, [64], platform="kvm"), second)
    assert len(second.calls) == 2
    assert [(p["platform"], p["x"]) for p in lines(tmp_path / "points.jsonl")] == [("docker", 64), ("kvm", 64)]
    kvm = [r for r in lines(tmp_path / "samples.jsonl") if r["platform"] == "kvm"]
    assert {r["repetition"] for r in kvm} == {0, 1}


def boot_outcome(all_ms: float | None) -> dict[str, Any]:
    return {"changed": False, "count": 2, "label": LABEL, "all_ms": all_ms,
            "boot_ms": [None if all_ms is None else all_ms - 100.0, all_ms]}


def boot_args(run_dir: Path) -> dict[str, Any]:
    return {"driver": {"name": "docker"}, "count": 2, "journal": journal(run_dir),
            "repeat": {"min_samples": 4, "max_samples": 6, "max_failed_batches": 2}}


def test_a_boot_point_keeps_its_failed_batches_and_repetitions_across_the_kill(tmp_path: Path) -> None:
    start_failed = {"failed": True, "start_failed": True, "msg": "vnflab-docker-1 did not start"}
    first = Script([boot_outcome(1000.0), start_failed, boot_outcome(1010.0)])
    with pytest.raises(Killed):
        run_action(boot_action, "vnf_boot_time", boot_args(tmp_path), first)
    before = (tmp_path / "samples.jsonl").read_bytes()
    # one failed start before the kill: one more is allowed, a second one fails the point
    second = Script([start_failed, boot_outcome(990.0), start_failed])
    result = run_action(boot_action, "vnf_boot_time", boot_args(tmp_path), second)
    assert result["failed"] and result["failed_batches"] == 3, result
    assert (tmp_path / "samples.jsonl").read_bytes().startswith(before)
    alls = [(r["repetition"], r["value"]) for r in lines(tmp_path / "samples.jsonl") if r["quantity"] == "all_ms"]
    assert alls == [(0, 1000.0), (1, 1010.0), (2, 990.0)]
    failures = lines(tmp_path / "failures.jsonl")
    assert [(f["batch"], f["retried"]) for f in failures] == [(1, True), (2, True), (3, False)]


def test_a_resumed_boot_point_counts_its_journaled_batches_to_the_rule(tmp_path: Path) -> None:
    with pytest.raises(Killed):
        run_action(boot_action, "vnf_boot_time", boot_args(tmp_path),
                   Script([boot_outcome(1000.0), boot_outcome(1002.0), boot_outcome(998.0)]))
    second = Script([boot_outcome(1000.0), boot_outcome(5000.0)])
    run_action(boot_action, "vnf_boot_time", boot_args(tmp_path), second)
    assert len(second.calls) == 1  # 3 journaled + 1 = min_samples 4, converged
    (point,) = lines(tmp_path / "points.jsonl")
    assert (point["n"], point["batches"], point["resumed_batches"], point["reason"]) == (4, 4, 3, "converged")


def memory_outcome(pss: float) -> dict[str, Any]:
    return {"changed": False, "count": 1, "label": LABEL, "server_used_mb": 50.0 + 30 * pss,
            "available_before_mb": 1000.0, "available_after_mb": 950.0,
            "instances": [{"name": "vnflab-docker-0", "pss_mb": pss, "cgroup_mb": 1.0, "hypervisor_mb": None}]}


def test_a_resumed_memory_point_watches_the_exact_figure_it_watched_before(tmp_path: Path) -> None:
    args = {"driver": {}, "count": 1, "repeat": {"min_samples": 3, "max_samples": 3}, "journal": journal(tmp_path)}
    with pytest.raises(Killed):
        run_action(memory_action, "vnf_memory", args, Script([memory_outcome(2.50), memory_outcome(2.51)]))
    progress = read_point_progress(tmp_path, PointKey(RUN_ID, "docker", LABEL, "memory", "host-a"), 1, "instances")
    assert (progress.quantity, progress.values, progress.next_repetition) == ("exact_used_mb", [2.50, 2.51], 2)
    second = Script([memory_outcome(2.49)])
    run_action(memory_action, "vnf_memory", args, second)
    (point,) = lines(tmp_path / "points.jsonl")
    assert (point["quantity"], point["n"], point["mean"]) == ("exact_used_mb", 3, pytest.approx(2.5))


def test_progress_of_a_point_skips_a_torn_line_and_times_its_journaled_batches(tmp_path: Path) -> None:
    key = PointKey(RUN_ID, "docker", LABEL, "boot", "host-a")
    samples = Journal(tmp_path / "samples.jsonl")
    for repetition, when in enumerate(["2026-12-07T04:00:00.000000Z", "2026-12-07T04:00:12.500000Z"]):
        records = boot_records(key, {"count": 2, "all_ms": 900.0 + repetition, "boot_ms": [800.0, 900.0]},
                               repetition)
        samples.append([{**record, "time": when} for record in records])
    other = PointKey(RUN_ID, "docker", LABEL, "boot", "host-b")  # another host's point of the same x
    samples.append(boot_records(other, {"count": 2, "all_ms": 1.0, "boot_ms": [1.0, 1.0]}, 7))
    with (tmp_path / "samples.jsonl").open("ab") as handle:
        handle.write(b'{"run_id":"' + RUN_ID.encode() + b'","platform":"docker","metric":"boot","repet')
    progress = read_point_progress(tmp_path, key, 2, "instances")
    assert progress.finished is None
    assert (progress.next_repetition, progress.values, progress.quantity) == (2, [900.0, 901.0], "all_ms")
    assert progress.elapsed_s == pytest.approx(12.5)
    assert read_point_progress(tmp_path, key, 3, "instances").next_repetition == 0
    assert read_point_progress(tmp_path / "absent", key, 2, "instances") == type(progress)()


# ---------------------------------------------------------------- the run directory: resume record, manifest, report


def killed_run(run_dir: Path) -> Path:
    """A run killed in its second response point, with its manifest parts written but never merged."""
    run_dir.mkdir(parents=True)
    with pytest.raises(Killed):
        run_action(response_action, "vnf_response_time", response_args(run_dir, [64, 128]),
                   Script([rtt_outcome(64, STEADY), rtt_outcome(64, STEADY), rtt_outcome(128, STEADY)]))
    parts = run_dir / "manifest.d"
    parts.mkdir()
    (parts / "parameters.json").write_text(json.dumps({"parameters": {
        "profile": "quick", "response_sizes": [64, 128], "repeat": {"response": {"batch": 3}},
        "platforms": ["docker"]}}))
    (parts / "host-host-a.json").write_text(json.dumps({"hosts": {"host-a": {"kernel": "6.1.0-killed"}}}))
    return run_dir


def test_a_resume_is_recorded_and_names_what_it_continues(tmp_path: Path) -> None:
    from vnflab.measure.manifest import assemble_manifest
    from vnflab.measure.resume import resume_run

    run_dir = killed_run(tmp_path / RUN_ID)
    said = resume_run(run_dir, {"profile": "quick", "response_sizes": [64, 128],
                                "repeat": {"response": {"batch": 3}}, "platforms": ["docker", "kvm"]})
    assert said == (f"resuming {RUN_ID}: 1 finished point(s) kept and skipped, 18 sample(s) kept; 1 point(s) cut by "
                    "the kill continue from their next repetition (docker response x=128 B icmp on host-a)")
    assemble_manifest(run_dir)
    (resume,) = json.loads((run_dir / "manifest.json").read_text())["resumes"].values()
    assert resume == {"finished_points": 1, "samples": 18, "cut_points": ["docker response x=128 B icmp on host-a"]}


@pytest.mark.parametrize(("name", "value"), [("profile", "default"), ("response_sizes", [64, 128, 256]),
                                             ("repeat", {"response": {"batch": 5}})])
def test_a_resume_that_would_change_the_sweep_is_refused(tmp_path: Path, name: str, value: Any) -> None:
    from vnflab.measure.resume import ResumeRefused, resume_run

    run_dir = killed_run(tmp_path / RUN_ID)
    parameters = {"profile": "quick", "response_sizes": [64, 128], "repeat": {"response": {"batch": 3}}, name: value}
    with pytest.raises(ResumeRefused, match=f"measured with other {name} "):
        resume_run(run_dir, parameters)
    assert not list((run_dir / "manifest.d").glob("resume-*"))


def test_the_report_of_a_killed_run_merges_its_manifest_parts_and_names_the_cut_point(tmp_path: Path) -> None:
    from vnflab.cli import main

    run_dir = killed_run(tmp_path / RUN_ID)
    assert not (run_dir / "manifest.json").exists()
    assert main(["report", str(run_dir)]) == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["hosts"]["host-a"]["kernel"] == "6.1.0-killed"
    assert manifest["parameters"]["response_sizes"] == [64, 128]
    report = (run_dir / "report.md").read_text()
    assert "6.1.0-killed" in report
    assert "1 point(s) have samples but no summary in points.jsonl (the run was killed there, or the point failed): " \
           "docker response x=128 B icmp on host-a" in report


def test_vnflab_run_resume_gives_the_killed_run_directory_to_the_lab(tmp_path: Path) -> None:
    from vnflab.run.labrun import RunOptions, resume_dir, run_lab

    results = tmp_path / "results"
    run_dir = killed_run(results / RUN_ID)
    project = tmp_path / "project"
    project.mkdir()
    (project / "site.yml").write_text("""---
- name: Tiny lab
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Say which run directory the lab was given
      ansible.builtin.copy:
        dest: "{{ vnflab_run_dir }}/given"
        content: "{{ vnflab_run_dir }}"
        mode: "0644"
""")
    options = RunOptions(project_dir=project, inventory="localhost,", profile="quick", results_dir=results,
                         extravars={"ansible_connection": "local"}, interval=60, resume=RUN_ID)
    assert resume_dir(options) == run_dir
    assert resume_dir(RunOptions(results_dir=results, resume=str(run_dir))) == run_dir
    with pytest.raises(FileNotFoundError, match="is not a run directory"):
        resume_dir(RunOptions(results_dir=results, resume="20261207T000000Z-000000"))
    before = (run_dir / "samples.jsonl").read_bytes()
    assert run_lab(options, io.StringIO()) == 0
    assert [p.name for p in results.iterdir()] == [RUN_ID]  # no new run directory
    assert (run_dir / "given").read_text() == str(run_dir)
    assert (run_dir / "samples.jsonl").read_bytes() == before
    assert (run_dir / "report.md").is_file()


def test_a_worker_whose_ansible_playbook_was_killed_stops_before_its_next_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ansible-playbook's workers outlive a kill -9 of it; the loop sees its parent change and stops there."""
    from vnflab.measure import ansible_measure

    parents = iter([4242, 4242, 4242, 1])  # the run starts, two batches, then the parent is gone (reparented)
    monkeypatch.setattr(ansible_measure.os, "getppid", lambda: next(parents))
    script = Script([rtt_outcome(64, STEADY), rtt_outcome(64, STEADY), rtt_outcome(128, STEADY)])
    result = run_action(response_action, "vnf_response_time", response_args(tmp_path, [64, 128]), script)
    assert result["failed"] and len(script.calls) == 2
    assert result["msg"] == ("x=128 B: ansible-playbook (PID 4242) is gone; stopped before batch 0, with every earlier "
                             "batch journaled (resume with vnflab_run_dir)")
    assert [p["x"] for p in lines(tmp_path / "points.jsonl")] == [64]


def test_a_full_results_disk_stops_the_task_saying_so_with_the_samples_before_it_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    real_append = Journal.append
    appends = iter([True, False])  # the first batch is journaled, the second finds the disk full

    def append(self: Journal, records: Any) -> int:
        if self.path.name == "samples.jsonl" and not next(appends):
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real_append(self, records)

    monkeypatch.setattr(Journal, "append", append)
    script = Script([rtt_outcome(64, STEADY), rtt_outcome(64, STEADY), rtt_outcome(64, STEADY)])
    result = run_action(response_action, "vnf_response_time", response_args(tmp_path, [64]), script)
    assert result["failed"] and len(script.calls) == 2 and result["samples_written"] == 6
    assert result["msg"].startswith(f"x=64 B: cannot journal batch 1 in {tmp_path}: [Errno 28] No space left on device")
    assert len(lines(tmp_path / "samples.jsonl")) == 6


def test_progress_reads_lines_whatever_their_json_spacing_and_tells_x_5_from_x_50(tmp_path: Path) -> None:
    key = PointKey(RUN_ID, "docker", LABEL, "boot", "host-a")
    lines_out = [json.dumps(record) for x in (5, 50) for record in boot_records(
        key, {"count": x, "all_ms": float(x), "boot_ms": []}, 0)]  # ", " and ": " separators, not the journal's
    (tmp_path / "samples.jsonl").write_text("\n".join(lines_out) + "\n")
    assert read_point_progress(tmp_path, key, 5, "instances").values == [5.0]
    assert read_point_progress(tmp_path, key, 50, "instances").values == [50.0]


def test_a_failed_start_that_cannot_be_journaled_is_not_retried_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def append(self: Journal, records: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(Journal, "append", append)
    script = Script([{"failed": True, "start_failed": True, "msg": "vnflab-docker-1 did not start"}])
    result = run_action(boot_action, "vnf_boot_time", boot_args(tmp_path), script)
    assert result["failed"] and len(script.calls) == 1
    assert result["msg"].startswith("vnflab-docker-1 did not start (and it could not be journaled in ")
    assert "No space left on device" in result["msg"]


def test_a_boot_batch_of_one_that_older_profiles_gave_is_the_same_sweep() -> None:
    from vnflab.measure.resume import changed_parameters

    before = {"repeat": {"boot": {"min_samples": 6, "batch": 1}, "response": {"min_samples": 20, "batch": 20}}}
    assert changed_parameters(before, {"repeat": {"boot": {"min_samples": 6},
                                                  "response": {"min_samples": 20, "batch": 20}}}) == []
    # a response batch is how many samples a batch takes: another value is another sweep, as is another boot batch
    assert changed_parameters(before, {"repeat": {"boot": {"min_samples": 6},
                                                  "response": {"min_samples": 20, "batch": 1}}}) == ["repeat"]
    assert changed_parameters(before, {"repeat": {"boot": {"min_samples": 6, "batch": 2},
                                                  "response": {"min_samples": 20, "batch": 20}}}) == ["repeat"]
