"""manifest.json helpers (vnflab.measure.manifest) and run directories (vnflab.measure.rundir)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import vnflab
from vnflab.measure.manifest import deep_merge, merge_manifest, read_manifest, write_manifest
from vnflab.measure.rundir import RUN_ID_RE, RunPaths, create_run_dir, new_run_id

PACKAGE_ROOT = str(Path(vnflab.__file__).resolve().parent.parent)


def test_deep_merge_is_pure_and_nested() -> None:
    base = {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}
    merged = deep_merge(base, {"a": {"c": {"f": 3}}, "e": [2]})
    assert merged == {"a": {"b": 1, "c": {"d": 2, "f": 3}}, "e": [2]}
    assert base == {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}


def test_write_is_atomic_and_stable(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"b": 1, "a": {"z": 1, "y": 2}})
    assert path == tmp_path / "manifest.json"
    assert path.read_text() == '{\n  "a": {\n    "y": 2,\n    "z": 1\n  },\n  "b": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]  # no temp file left
    assert read_manifest(tmp_path) == {"a": {"y": 2, "z": 1}, "b": 1}


def test_failed_write_keeps_old_manifest(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"a": 1})
    with pytest.raises(ValueError):
        write_manifest(tmp_path, {"a": float("nan")})
    assert read_manifest(tmp_path) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_merge_hosts_and_parameters(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) == {}
    merge_manifest(tmp_path, other={"run_id": "x"}, parameters={"instances": [1, 2], "response": {"min": 20}})
    merge_manifest(tmp_path, hosts={"lab1": {"kernel": "6.8", "cpu": {"model": "A"}}})
    merged = merge_manifest(
        tmp_path,
        hosts={"lab1": {"cpu": {"mhz": 3600}}, "lab2": {"kernel": "6.1"}},
        parameters={"response": {"max": 200}},
    )
    assert merged == {
        "run_id": "x",
        "hosts": {"lab1": {"kernel": "6.8", "cpu": {"model": "A", "mhz": 3600}}, "lab2": {"kernel": "6.1"}},
        "parameters": {"instances": [1, 2], "response": {"min": 20, "max": 200}},
    }
    assert read_manifest(tmp_path) == merged


def test_concurrent_merges_lose_nothing(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom pathlib import Path\nfrom vnflab.measure.manifest import merge_manifest\n"
        "for i in range(20):\n"
        "    merge_manifest(Path(sys.argv[1]), hosts={f'h{sys.argv[2]}': {f'fact{i}': i}})\n"
    )
    env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT}
    children = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(w)], env=env) for w in range(4)]
    assert [c.wait(timeout=60) for c in children] == [0, 0, 0, 0]
    hosts = json.loads((tmp_path / "manifest.json").read_text())["hosts"]
    assert hosts == {f"h{w}": {f"fact{i}": i for i in range(20)} for w in range(4)}


def test_run_id_format() -> None:
    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert new_run_id(when, "0a1b2c") == "20250304T050607Z-0a1b2c"
    assert RUN_ID_RE.match(new_run_id())
    with pytest.raises(ValueError):
        new_run_id(when, "XYZ")


def test_create_run_dir_never_reuses(tmp_path: Path) -> None:
    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    dirs = {create_run_dir(tmp_path / "results", now=when) for _ in range(5)}
    assert len(dirs) == 5 and all(d.is_dir() and RUN_ID_RE.match(d.name) for d in dirs)
    paths = RunPaths(next(iter(dirs)))
    assert paths.samples.name == "samples.jsonl" and paths.report.name == "report.md"
    assert paths.run_id == paths.run_dir.name
