"""roles/platform_docker without a Docker engine: the order that keeps dockerd inside the lab range."""

from __future__ import annotations

from pathlib import Path

import yaml

ENGINE = Path(__file__).resolve().parents[2] / "roles" / "platform_docker" / "tasks" / "engine.yml"


def task_index(tasks: list[dict], module: str, predicate: str) -> int:
    return next(i for i, task in enumerate(tasks) if module in task and predicate in str(task[module]))


def test_daemon_json_is_written_before_the_package_can_start_dockerd() -> None:
    # Debian's docker.io starts dockerd from its postinst: without daemon.json it would bring up docker0 on
    # its default bridge network (outside 198.18.0.0/15) before the role's configuration existed.
    tasks = yaml.safe_load(ENGINE.read_text())
    daemon_json = task_index(tasks, "ansible.builtin.copy", "/etc/docker/daemon.json")
    install = task_index(tasks, "ansible.builtin.apt", "platform_docker_packages")
    assert daemon_json < install
    assert "bip" in tasks[daemon_json]["vars"]["platform_docker_daemon"]
