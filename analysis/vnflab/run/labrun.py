"""``vnflab run``: site.yml through ansible-runner (Python API, no process isolation), progress, then the report.

``ansible-playbook site.yml`` stays the way to run the lab without this wrapper; ``vnflab run`` adds a
progress line (platform, metric, point, repetition, elapsed, remaining estimate) and ends by building
the report of the run directory it created, also when the run stopped before site.yml's report play; that play
then leaves the report to it (``vnflab_report_in_play=false``), so the report is built once.
``vnflab run --resume ID`` gives a killed run's directory to the lab again (``vnflab_run_dir``): its finished
points are skipped and its cut one continues (:mod:`vnflab.measure.resume`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from vnflab.measure.rundir import RunPaths
from vnflab.run.progress import Progress, Server, planned_points

#: The repository root (site.yml, ansible.cfg, playbooks/), two levels above this package.
PROJECT_DIR = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class RunOptions:
    project_dir: Path = PROJECT_DIR
    playbook: str = "site.yml"
    inventory: str | None = None
    profile: str = "default"
    metrics: tuple[str, ...] = ()
    results_dir: Path = PROJECT_DIR / "results"
    extravars: Mapping[str, Any] = field(default_factory=dict)
    interval: float = 5.0
    resume: str | None = None  # a run id under results_dir (or a run directory): resume that killed run


def resume_dir(options: RunOptions) -> Path:
    """The run directory ``--resume`` names: a run id under the results directory, or a path (with a ``/``)."""
    if options.resume is None:
        raise ValueError("no run to resume")
    named = Path(options.resume)
    run_dir = named if len(named.parts) > 1 else Path(options.results_dir) / named
    if not RunPaths(run_dir).samples.is_file() and not RunPaths(run_dir).manifest_parts.is_dir():
        raise FileNotFoundError(f"--resume {options.resume}: {run_dir} is not a run directory (no samples.jsonl, "
                                "no manifest.d/)")
    return run_dir


def _servers(project_dir: Path, inventory: str | None, extravars: Mapping[str, Any]) -> list[Server]:
    """The VNF servers the run will measure, read through Ansible's inventory API (empty if unreadable)."""
    try:
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.vars.manager import VariableManager
    except ImportError:  # pragma: no cover - ansible-core is a dependency
        return []
    loader = DataLoader()
    source = inventory or str(project_dir / "inventory" / "local")
    manager = InventoryManager(loader=loader, sources=[source])
    variables = VariableManager(loader=loader, inventory=manager)
    group = manager.groups.get("vnf_servers")
    servers = []
    for host in sorted(group.get_hosts() if group else [], key=lambda h: h.name):
        hostvars = variables.get_vars(host=host)
        wanted = extravars.get("vnflab_platforms", hostvars.get("vnflab_platforms"))
        platform = str(hostvars.get("vnflab_platform", host.name))
        if isinstance(wanted, list) and platform not in wanted:
            continue
        cap = hostvars.get("vnflab_max_instances")
        servers.append(Server(platform, int(cap) if cap is not None else None))
    return servers


def _profile(project_dir: Path, profile: str) -> dict[str, Any]:
    import yaml

    path = project_dir / "playbooks" / "profiles" / f"{profile}.yml"
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return loaded if isinstance(loaded, dict) else {}


def run_playbook(options: RunOptions, run_dir: Path, on_event: Callable[[Mapping[str, Any]], None],
                 cmdline: str = "") -> tuple[str, int]:
    """Run the playbook with ansible-runner; ``(status, rc)``. Events go to ``on_event``."""
    import ansible_runner

    # the venv's ansible-playbook first on PATH, even when the venv is not activated
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
    # run_lab builds the report once the playbook ends, whether or not the run reached the report play
    extravars = {"vnflab_profile": options.profile, "vnflab_run_dir": str(run_dir), **options.extravars,
                 "vnflab_report_in_play": False}
    with tempfile.TemporaryDirectory(prefix="vnflab-runner-") as private:
        def handler(event: Mapping[str, Any]) -> bool:
            on_event(event)
            return True

        result = ansible_runner.run(
            private_data_dir=private, project_dir=str(options.project_dir), playbook=options.playbook,
            inventory=options.inventory, extravars=extravars, cmdline=cmdline or None,
            event_handler=handler, quiet=True, process_isolation=False, suppress_env_files=True,
            envvars={"ANSIBLE_CONFIG": str(options.project_dir / "ansible.cfg"), "PATH": path},
        )
    return str(result.status), int(result.rc if result.rc is not None else 1)


def run_lab(options: RunOptions, out: TextIO = sys.stdout) -> int:
    """Create the run directory, run the lab with progress on ``out``, build the report; the exit status."""
    from vnflab import __version__
    from vnflab.measure.journal import utc_timestamp
    from vnflab.measure.manifest import merge_manifest
    from vnflab.measure.rundir import create_run_dir
    from vnflab.report.build import build_report

    if options.resume is not None:
        run_dir = resume_dir(options)  # the lab_config role records the resume and checks its parameters
    else:
        run_dir = create_run_dir(Path(options.results_dir))
        merge_manifest(run_dir, other={"run_id": run_dir.name, "created": utc_timestamp(),
                                       "vnflab_version": __version__})
    servers = _servers(options.project_dir, options.inventory, options.extravars)
    planned = planned_points(_profile(options.project_dir, options.profile), servers, set(options.metrics) or None)
    progress = Progress(run_dir, planned)
    print(f"vnflab run: {'resuming ' if options.resume is not None else ''}{run_dir} ({len(servers)} VNF server(s), "
          f"{planned} points planned)", file=out, flush=True)
    stop = threading.Event()

    def report_progress() -> None:
        while not stop.wait(options.interval):
            print(progress.status(), file=out, flush=True)

    ticker = threading.Thread(target=report_progress, daemon=True)
    ticker.start()
    tags = ",".join(options.metrics)
    try:
        status, rc = run_playbook(options, run_dir, progress.on_event, f"--tags {tags}" if tags else "")
    finally:
        stop.set()
        ticker.join()
    print(progress.status(), file=out, flush=True)
    for failure in progress.failures:
        print(f"failed: {failure}", file=out, flush=True)
    print(f"ansible-runner: {status} (rc {rc})", file=out, flush=True)
    if RunPaths(run_dir).samples.is_file():
        generated = build_report(run_dir)
        print(f"report: {generated.report}\nhtml: {generated.html}", file=out, flush=True)
    return 0 if rc == 0 else 1
