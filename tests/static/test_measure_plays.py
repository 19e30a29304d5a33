"""The measurement plays measure one server at a time, and one server's failure does not end the run.

With `serial: 1` a server that failed was a whole failed batch, and Ansible ends the playbook then: no later
server, no report (seen when the emulated Xen server failed its last memory point). `throttle: 1` on the
measuring task keeps one server at a time without that.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
MEASURING_TASKS = {"boot.yml": "Boot time of N instances", "memory.yml": "Memory with N instances"}
#: The task file both instance plays import, parametrised by the play (instance_metric, instance_task, ...).
INSTANCE_TASKS = ROOT / "playbooks" / "tasks" / "measure-instances.yml"


def play_tasks(playbook: str) -> list[dict[str, Any]]:
    """Every task of every play of playbooks/PLAYBOOK, in order."""
    return [task for play in yaml.safe_load((ROOT / "playbooks" / playbook).read_text())
            for task in play.get("tasks", [])]


def instance_parameters(playbook: str) -> dict[str, Any]:
    """The vars with which ``playbook`` imports the instance task file (its one import of it)."""
    imports = [task for task in play_tasks(playbook)
               if task.get("ansible.builtin.import_tasks") == "tasks/measure-instances.yml"]
    assert len(imports) == 1, f"{playbook} must import tasks/measure-instances.yml once"
    return imports[0]["vars"]


def instance_tasks() -> list[dict[str, Any]]:
    return yaml.safe_load(INSTANCE_TASKS.read_text())


@pytest.mark.parametrize(("playbook", "task_name"), MEASURING_TASKS.items())
def test_measuring_task_is_throttled_not_the_play_serial(playbook: str, task_name: str) -> None:
    for play in yaml.safe_load((ROOT / "playbooks" / playbook).read_text()):
        assert "serial" not in play, f"{playbook}: a failed server would end the whole run"
    parameters = instance_parameters(playbook)
    assert parameters["instance_task"] == task_name
    assert parameters["instance_metric"] == playbook.removesuffix(".yml")
    tasks = [task for task in instance_tasks() if task.get("name") == "{{ instance_task }}"]
    assert len(tasks) == 1 and tasks[0].get("throttle") == 1


def test_a_failed_server_leaves_the_others_and_the_report(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {
        name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        for name in ("first", "second", "localhost")}}}))
    done = subprocess.run([PLAYBOOK, "-i", str(inventory), str(ROOT / "tests/static/playbooks/one-server-fails.yml")],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode != 0, "the run must still say that a server failed"
    assert "measured second" in done.stdout and "report written" in done.stdout, done.stdout


def measuring_task(playbook: str) -> dict[str, Any]:
    """The measuring task ``playbook`` runs (from the instance task file), with its module named."""
    task = next(task for task in instance_tasks() if task.get("name") == "{{ instance_task }}")
    module = render(task["action"], instance_parameters(playbook))
    assert module.startswith("vnf_"), module
    return task


def render(template: str, variables: dict[str, Any]) -> Any:
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    # Plays read with yaml.safe_load are untrusted text for ansible-core 2.19; the play file is ours.
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(template))


PROFILE_REPEAT = {"boot": {"min_samples": 3, "max_failed_batches": 2},
                  "memory": {"min_samples": 3}}


@pytest.mark.parametrize("playbook", MEASURING_TASKS)
def test_a_server_may_allow_more_failed_starts_than_the_profile(playbook: str) -> None:
    task = measuring_task(playbook)
    template = task["args"]["repeat"]
    metric = playbook.removesuffix(".yml")
    parameters = instance_parameters(playbook)
    profile_only = render(template, {"vnflab_repeat": PROFILE_REPEAT, **parameters})
    assert profile_only == PROFILE_REPEAT[metric]
    allowed = render(template, {"vnflab_repeat": PROFILE_REPEAT, "vnflab_max_failed_batches": "6", **parameters})
    assert allowed == {**PROFILE_REPEAT[metric], "max_failed_batches": 6}


def test_a_failed_response_path_neither_ends_the_run_nor_passes_unnoticed() -> None:
    """Host A measures every path: its failure would end the playbook before memory and the report (seen when
    the Xen server failed), so the task goes on, and the report play fails the run for the failed paths."""
    response, failures = play_tasks("response.yml")[-2:]
    assert response["ignore_errors"] is True and response["register"] == "response_runs"
    runs = {"results": [{"item": "coreos", "failed": False}, {"item": "clickos", "failed": True, "msg": "down"},
                        {"item": "osv", "skipped": True}]}
    hostvars = {"coreos": {"vnflab_platform": "docker"}, "clickos": {"vnflab_platform": "xen"},
                "osv": {"vnflab_platform": "kvm"}}
    failed = render(failures["ansible.builtin.set_fact"]["vnflab_response_failures"],
                    {"response_runs": runs, "hostvars": hostvars})
    assert failed == ["xen"]

    check = next(task for task in play_tasks("report.yml") if task.get("ansible.builtin.assert"))
    assert play_tasks("report.yml").index(check) > next(
        i for i, task in enumerate(play_tasks("report.yml")) if task["name"] == "Build the report")
    paths = check["vars"]["report_failed_paths"]
    groups = {"host_a": ["vnflab-a"]}
    assert render(paths, {"groups": groups, "hostvars": {"vnflab-a": {"vnflab_response_failures": ["xen"]}}}) == ["xen"]
    assert render(paths, {"groups": groups, "hostvars": {"vnflab-a": {}}}) == []


@pytest.mark.parametrize("playbook", MEASURING_TASKS)
def test_a_failed_point_neither_ends_the_server_nor_passes_unnoticed(playbook: str) -> None:
    """A failed host leaves every later play: the Xen server's failed boot point N=2 cost it its memory metric.
    The task goes on, its failed points become a fact, and the report play fails the run for them."""
    metric = playbook.removesuffix(".yml")
    parameters = instance_parameters(playbook)
    tasks = instance_tasks()
    task = measuring_task(playbook)
    assert task["ignore_errors"] is True and task["register"] == "instance_runs"
    facts = tasks[tasks.index(task) + 1]["ansible.builtin.set_fact"]
    assert [render(name, parameters) for name in facts] == [f"vnflab_{metric}_failures"]
    record = next(iter(facts.values()))
    runs = {"results": [{"item": "1", "failed": False}, {"item": "2", "failed": True, "msg": "domain exists"},
                        {"item": "4"}]}
    assert render(record, {"instance_runs": runs}) == [2]
    assert render(record, {"instance_runs": {"results": [{"item": 1}]}}) == []

    report = play_tasks("report.yml")
    check = report[-1]
    assert report.index(check) > next(i for i, t in enumerate(report) if t["name"] == "Build the report")
    points = check["vars"]["report_failed_points"]
    groups = {"vnf_servers": ["coreos", "clickos"]}
    hostvars = {"coreos": {"vnflab_platform": "docker"},
                "clickos": {"vnflab_platform": "xen", f"vnflab_{metric}_failures": [2]}}
    assert render(points, {"groups": groups, "hostvars": hostvars}) == [f"xen {metric} N=2"]
    condition = "{{ " + check["ansible.builtin.assert"]["that"] + " }}"  # assert's `that` is a bare expression
    assert render(condition, {"report_failed_points": [f"xen {metric} N=2"]}) is False
    assert render(condition, {"report_failed_points": []}) is True
