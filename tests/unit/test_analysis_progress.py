"""``vnflab run``: planned points, the progress line from runner events and journals, a real ansible-runner run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from vnflab.measure.journal import Journal
from vnflab.run.labrun import RunOptions, run_lab
from vnflab.run.progress import Progress, Server, format_seconds, last_record, planned_points

PROFILE = {"vnflab_boot_counts": [1, 4, 16], "vnflab_memory_counts": [1, 16], "vnflab_response_sizes": [64, 1472]}


def test_planned_points_cap_instance_counts_per_server() -> None:
    servers = [Server("docker"), Server("kvm", max_instances=8)]
    # docker: 3 boot + 2 memory + 2 response; kvm: 2 boot (1, 4) + 1 memory + 2 response
    assert planned_points(PROFILE, servers) == 7 + 5
    assert planned_points(PROFILE, servers, {"response"}) == 4
    assert planned_points({}, servers) == 0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_line_from_events_and_journals(tmp_path: Path) -> None:
    clock = Clock()
    progress = Progress(tmp_path, planned=4, clock=clock)
    progress.on_event({"event": "playbook_on_play_start", "event_data": {"play": "Provision"}})
    progress.on_event({"event": "playbook_on_task_start", "event_data": {"task": "Docker engine"}})
    progress.on_event({"event": "runner_on_start", "event_data": {"host": "coreos"}})
    clock.now += 30
    assert progress.status() == "[0:30] | Docker engine (coreos) | points 0/4"
    progress.on_event({"event": "playbook_on_task_start", "event_data": {"task": "Boot time of N instances"}})
    Journal(tmp_path / "samples.jsonl").append([{"platform": "docker", "metric": "boot", "x": 4,
                                                 "x_unit": "instances", "repetition": 2, "mode": None}])
    clock.now += 10  # measuring starts being counted at the first status that sees a sample
    progress.status()
    (tmp_path / "points.jsonl").write_text('{"x": 1}\n')
    clock.now += 20
    line = progress.status()
    assert line == ("[1:00] | docker boot x=4 instances repetition 3 | points 1/4 "
                    "| ~1:00 of measuring left (estimate)")
    progress.on_event({"event": "runner_on_failed", "event_data": {"host": "osv", "task": "Boot",
                                                                    "res": {"msg": "boom"}}})
    progress.on_event({"event": "runner_on_failed", "event_data": {"host": "osv", "ignore_errors": True}})
    assert progress.failures == ["osv: Boot: boom"]


def test_journal_tail_and_time_format(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    assert last_record(path) is None
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "tor')
    assert last_record(path) == {"a": 2}
    assert format_seconds(59.6) == "1:00" and format_seconds(3725) == "1:02:05"


SAMPLE = {"run_id": "r", "platform": "docker", "label": "docker/x (native, stand-in for CoreOS)", "metric": "boot",
          "quantity": "all_ms", "x": 1, "x_unit": "instances", "value": 12.5, "unit": "ms", "status": "ok",
          "repetition": 0, "instance": None, "seq": 0, "time": "2025-01-01T00:00:00.000000Z", "host": "h",
          "mode": None}


def tiny_project(tmp_path: Path, more_plays: str = "") -> Path:
    """A project whose site.yml journals one sample, then ``more_plays``."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "site.yml").write_text(f"""---
- name: Tiny lab
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Boot time of N instances
      ansible.builtin.copy:
        dest: "{{{{ vnflab_run_dir }}}}/samples.jsonl"
        content: |
          {json.dumps(SAMPLE)}
        mode: "0644"
{more_plays}""")
    return project


@pytest.mark.timeout(300)
def test_run_lab_drives_a_playbook_through_ansible_runner_and_writes_the_report(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    out = io.StringIO()
    options = RunOptions(project_dir=project, inventory="localhost,", profile="quick",
                         results_dir=tmp_path / "results", extravars={"ansible_connection": "local"}, interval=0.2)
    assert run_lab(options, out) == 0
    text = out.getvalue()
    run_dir = next((tmp_path / "results").iterdir())
    assert f"vnflab run: {run_dir}" in text and "ansible-runner: successful (rc 0)" in text
    assert (run_dir / "report.md").is_file() and (run_dir / "report.html").is_file()
    assert "docker boot x=1 instances repetition 1" in text  # the progress line saw the journal


@pytest.mark.timeout(300)
def test_vnflab_run_builds_the_report_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """site.yml's report play builds the report for ansible-playbook users; under ``vnflab run``, which builds it
    after the playbook (also when the run stopped before that play), the play leaves it alone."""
    import vnflab.report.build

    repo = Path(__file__).resolve().parents[2]
    project = tiny_project(tmp_path, """
- name: The report play of site.yml
  ansible.builtin.import_playbook: playbooks/report.yml
""")
    (project / "playbooks").symlink_to(repo / "playbooks")
    (project / "ansible.cfg").write_text(f"[defaults]\nfilter_plugins = {repo / 'filter_plugins'}\n")
    real_build = vnflab.report.build.build_report
    builds: list[bool] = []

    def counted_build(run_dir: Path, *args: object, **kwargs: object) -> object:
        builds.append((Path(run_dir) / "report.md").exists())  # whether the play had built it already
        return real_build(run_dir, *args, **kwargs)

    monkeypatch.setattr(vnflab.report.build, "build_report", counted_build)
    out = io.StringIO()
    options = RunOptions(project_dir=project, inventory="localhost,", profile="quick",
                         results_dir=tmp_path / "results", extravars={"ansible_connection": "local"}, interval=60)
    assert run_lab(options, out) == 0, out.getvalue()
    run_dir = next((tmp_path / "results").iterdir())
    assert (run_dir / "manifest.json").is_file()  # the report play ran: it assembles the manifest
    assert builds == [False], "the report play built the report before vnflab run built it again"
    assert (run_dir / "report.md").is_file() and (run_dir / "report.html").is_file()
