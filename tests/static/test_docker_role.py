"""roles/platform_docker without a Docker engine: the order that keeps dockerd inside the lab range, and the
driver's health command (run by the engine against a fake `docker`)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.vnflab_host import driver as drv

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "roles" / "platform_docker" / "tasks" / "engine.yml"


def task_index(tasks: list[dict], module: str, predicate: str) -> int:
    return next(i for i, task in enumerate(tasks) if module in task and predicate in str(task[module]))


def test_daemon_json_is_written_before_the_package_can_start_dockerd() -> None:
    # Debian's docker.io starts dockerd from its postinst: without daemon.json it would bring up docker0 on
    # its default bridge network (outside 198.18.0.0/15) before the role's configuration existed.
    tasks = yaml.safe_load(ENGINE.read_text())
    daemon_json = task_index(tasks, "ansible.builtin.copy", "/etc/docker/daemon.json")
    install = task_index(tasks, "ansible.builtin.apt", "platform_docker_packages")
    assert daemon_json < install
    assert "bip" in tasks[daemon_json]["vars"]["platform_docker_lab_daemon"]
    # Merged into the host's own keys, never written over them.
    assert "platform_docker_host_daemon | combine(platform_docker_lab_daemon)" in tasks[daemon_json][
        "ansible.builtin.copy"]["content"]


RENDER = Path(__file__).resolve().parent / "playbooks" / "docker-driver-render.yml"
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
INSTANCE = "vnflab-docker-0"


@pytest.fixture(scope="module")
def docker_driver(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The driver the role publishes, rendered by Ansible (the Go templates must come through Jinja intact)."""
    out_dir = tmp_path_factory.mktemp("docker-driver")
    done = subprocess.run([PLAYBOOK, "-i", "localhost,", "-c", "local", str(RENDER), "-e", f"out_dir={out_dir}",
                           "-e", f"ansible_python_interpreter={sys.executable}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    driver: dict[str, Any] = json.loads((out_dir / "driver.json").read_text())
    return driver


def test_instances_run_with_every_capability_dropped_but_net_admin_and_bounded(docker_driver: dict[str, Any]) -> None:
    start = docker_driver["start"]
    assert start[start.index("--cap-drop") + 1] == "ALL"
    added = [start[i + 1] for i, word in enumerate(start) if word == "--cap-add"]
    assert added == ["NET_ADMIN"]  # the render's server uses iptables-nft: no raw socket, no NET_RAW
    assert start[start.index("--security-opt") + 1] == "no-new-privileges"
    assert start[start.index("--memory") + 1] == "64m"
    assert start[start.index("--pids-limit") + 1] == "32"
    assert "--privileged" not in start


@pytest.fixture()
def fake_docker(tmp_path: Path) -> Path:
    """A `docker inspect` that fills in Go template fields {{.State.X}} from state.json (no file: no container)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"""#!{sys.executable}
import json, re, sys
from pathlib import Path
args = sys.argv[1:]
assert args[:3] == ["inspect", "--type", "container"] and args[3] == "--format", args
state_file = Path({str(tmp_path / "state.json")!r})
if not state_file.exists():
    sys.exit(print("Error: No such container: " + args[5], file=sys.stderr) or 1)
state = json.loads(state_file.read_text())
go = lambda value: str(value).lower() if isinstance(value, bool) else str(value)
print(re.sub(r"\\{{\\{{\\.State\\.(\\w+)\\}}\\}}", lambda m: go(state[m.group(1)]), args[4]))
""")
    docker.chmod(0o755)
    return tmp_path


def health(driver_spec: dict[str, Any], fake: Path) -> str | None:
    """What the engine's boot prober learns from the driver's health command about INSTANCE."""
    env = dict(os.environ, PATH=f"{fake / 'bin'}:{os.environ['PATH']}")
    driver = drv.PlatformDriver(driver_spec, runner=functools.partial(subprocess.run, env=env))
    instance = next(inst for inst in driver.instances(1) if inst.name == INSTANCE)
    instance.started_ns = 1  # its start command returned
    return driver.failure(instance)


def set_state(fake: Path, status: str, code: int = 0, oom: bool = False, error: str = "") -> None:
    (fake / "state.json").write_text(json.dumps({"Status": status, "ExitCode": code, "OOMKilled": oom, "Error": error}))


@pytest.mark.parametrize("status", ["created", "running", "restarting"])
def test_health_of_a_live_container(docker_driver: dict[str, Any], fake_docker: Path, status: str) -> None:
    set_state(fake_docker, status)
    assert health(docker_driver, fake_docker) is None


@pytest.mark.parametrize(("state", "why"), [
    ({"status": "exited", "code": 1}, "container vnflab-docker-0 exited (code 1)"),
    ({"status": "exited", "code": 137, "oom": True},
     "container vnflab-docker-0 exited (code 137): out of memory (OOM killed)"),
    ({"status": "dead", "code": 128, "error": "failed to create task: cgroup: no space left on device"},
     "container vnflab-docker-0 dead (code 128): failed to create task: cgroup: no space left on device"),
])
def test_health_says_why_a_container_is_dead(docker_driver: dict[str, Any], fake_docker: Path,
                                             state: dict[str, Any], why: str) -> None:
    set_state(fake_docker, **state)
    assert health(docker_driver, fake_docker) == why


def test_health_of_a_missing_container(docker_driver: dict[str, Any], fake_docker: Path) -> None:
    assert health(docker_driver, fake_docker) == "container vnflab-docker-0 is gone"


MIGRATE = Path(__file__).resolve().parents[2] / "roles" / "platform_docker" / "files" / "vnflab-docker-migrate"


def run_migrate(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(MIGRATE), "vnflab-docker-proxy"], capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, check=False, timeout=30)


def test_migrate_where_criu_cannot_run_says_why_with_exit_3(tmp_path: Path) -> None:
    """Exit 3 = the mechanism is not here: the migration is journaled as skipped with these words."""
    (tmp_path / "criu").write_text(
        "#!/bin/sh\necho 'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds' >&2\nexit 1\n")
    (tmp_path / "criu").chmod(0o755)
    done = run_migrate(tmp_path)
    assert done.returncode == 3 and "criu check failed" in done.stderr and "vDSO area bounds" in done.stderr


def test_migrate_without_an_experimental_engine_says_why_with_exit_3(tmp_path: Path) -> None:
    for tool, body in (("criu", "exit 0"), ("docker", "echo false")):
        (tmp_path / tool).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / tool).chmod(0o755)
    done = run_migrate(tmp_path)
    assert done.returncode == 3 and "experimental" in done.stderr
