"""kill -9 of a real ansible-playbook in the middle of a measurement, then the same run resumed: no lab needed.

The measuring loop (vnflab.measure.ansible_measure) drives a stand-in probe module that sleeps for its batch and
returns a boot result. ansible-playbook is killed with SIGKILL while its worker measures the second point; the worker it
forked outlives it, and must stop before its next batch rather than measure the point to its end. The same run
directory, given again, must then measure only what is missing: the first point not again, the second from its
next repetition, the third from the start; every sample of the first session kept byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from testkit import kill_run

BIN = Path(sys.executable).parent
RUN_ID = "20261207T050000Z-c0ffee"
BATCHES = 4  # per point: min_samples = max_samples
BATCH_S = 0.8  # how long the stand-in module takes per batch

MODULE = '''#!/usr/bin/python
import time
from ansible.module_utils.basic import AnsibleModule

module = AnsibleModule(argument_spec={"count": {"type": "int", "required": True},
                                      "delay": {"type": "float", "default": 0.5}})
time.sleep(module.params["delay"])
count = module.params["count"]
boot = [100.0 * count + index for index in range(count)]
module.exit_json(changed=False, count=count, all_ms=max(boot), boot_ms=boot)
'''

ACTION = '''from vnflab.measure.ansible_measure import MeasureAction


class ActionModule(MeasureAction):
    METRIC = "boot"

    def points(self, args):
        return [(int(args["count"]), "instances", args)]
'''


def project(tmp_path: Path, run_dir: Path) -> Path:
    root = tmp_path / "project"
    (root / "library").mkdir(parents=True)
    (root / "action_plugins").mkdir()
    (root / "library" / "vnflab_stand_in_boot.py").write_text(MODULE)
    (root / "action_plugins" / "vnflab_stand_in_boot.py").write_text(ACTION)
    (root / "ansible.cfg").write_text("[defaults]\nlibrary = library\naction_plugins = action_plugins\n")
    journal = {"path": str(run_dir), "run_id": RUN_ID, "platform": "docker", "label": "stand-in"}
    (root / "measure.yml").write_text(f"""---
- name: Boot time of N stand-in instances
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Boot time of N instances
      vnflab_stand_in_boot:
        count: "{{{{ item }}}}"
        delay: {BATCH_S}
        repeat: {{min_samples: {BATCHES}, max_samples: {BATCHES}}}
        journal: {json.dumps(journal)}
      loop: [1, 2, 3]
""")
    return root


def playbook(root: Path) -> list[str]:
    return [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={sys.executable}", str(root / "measure.yml")]


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def repetitions(samples: list[dict[str, Any]], x: int) -> list[int]:
    return [s["repetition"] for s in samples if s["x"] == x and s["quantity"] == "all_ms"]


@pytest.mark.timeout(300)
def test_kill_9_mid_point_stops_the_orphaned_worker_and_the_run_resumes_where_it_was_cut(tmp_path: Path) -> None:
    run_dir = tmp_path / "results" / RUN_ID
    run_dir.mkdir(parents=True)
    root = project(tmp_path, run_dir)
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0")
    samples_path = run_dir / "samples.jsonl"
    with (tmp_path / "first.log").open("wb") as log:
        proc = subprocess.Popen(playbook(root), cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not repetitions(lines(samples_path), 2):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.05)
        # kill -9 of ansible-playbook itself; the worker's command line is ansible-playbook's
        orphan_s = kill_run(proc, str(root / "measure.yml"), timeout_s=60, poll_s=0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The worker stopped before its next batch: the second point unfinished, the third (the same worker runs every
    # loop item) not begun.
    assert orphan_s < 15, orphan_s  # a batch and a report, with margin for a loaded machine
    before = samples_path.read_bytes()
    first = lines(samples_path)
    cut = repetitions(first, 2)
    assert repetitions(first, 1) == list(range(BATCHES)) and 1 <= len(cut) < BATCHES, cut
    assert [p["x"] for p in lines(run_dir / "points.jsonl")] == [1]
    assert not repetitions(first, 3)

    again = subprocess.run(playbook(root), cwd=root, env=env, capture_output=True, text=True, timeout=120,
                           check=False)
    assert again.returncode == 0, again.stdout[-3000:]
    assert samples_path.read_bytes().startswith(before)
    samples = lines(samples_path)
    for x in (1, 2, 3):
        assert repetitions(samples, x) == list(range(BATCHES)), (x, repetitions(samples, x))
    ids = Counter((s["x"], s["quantity"], s["repetition"], s["seq"]) for s in samples)
    assert max(ids.values()) == 1
    points = lines(run_dir / "points.jsonl")
    assert [p["x"] for p in points] == [1, 2, 3]
    assert points[1]["resumed_batches"] == len(cut) and points[1]["batches"] == BATCHES
    assert "resumed_batches" not in points[2]
