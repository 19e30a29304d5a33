"""``manifest.json`` of a run: atomic writes and merges of per-host facts and parameters.

Merges are read-modify-write under an exclusive ``flock`` on ``.manifest.lock`` in the run
directory, so concurrent writers (Ansible forks) do not lose each other's updates; the file itself
is replaced atomically (temp file in the same directory, fsync, rename, fsync of the directory).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vnflab.measure.rundir import RunPaths

MANIFEST_NAME = RunPaths(Path()).manifest.name
_LOCK_NAME = ".manifest.lock"


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``update`` merged into ``base``; nested mappings merge, anything else replaces."""
    merged: dict[str, Any] = dict(base)
    for key, value in update.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def encode_manifest(manifest: Mapping[str, Any]) -> str:
    """Stable text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of ``run_dir``, or ``{}`` when there is none yet."""
    path = Path(run_dir) / MANIFEST_NAME
    if not path.exists():
        return {}
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(manifest, dict):
        return manifest
    raise ValueError(f"{path}: expected a JSON object")


def write_manifest(run_dir: Path, manifest: Mapping[str, Any]) -> Path:
    """Atomically replace ``run_dir/manifest.json`` with ``manifest``."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST_NAME
    data = encode_manifest(manifest).encode("utf-8")
    fd, temp_name = tempfile.mkstemp(prefix=".manifest.", suffix=".tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


@contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    fd = os.open(Path(run_dir) / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def merge_manifest(
    run_dir: Path,
    *,
    hosts: Mapping[str, Mapping[str, Any]] | None = None,
    parameters: Mapping[str, Any] | None = None,
    other: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge per-host facts under ``hosts.<name>``, ``parameters`` under ``parameters`` and any
    ``other`` top-level keys into the manifest (deep merge, new values win); return the result."""
    update: dict[str, Any] = dict(other or {})
    if hosts:
        update = deep_merge(update, {"hosts": {name: dict(facts) for name, facts in hosts.items()}})
    if parameters:
        update = deep_merge(update, {"parameters": dict(parameters)})
    with _locked(run_dir):
        merged = deep_merge(read_manifest(run_dir), update)
        write_manifest(run_dir, merged)
    return merged


def assemble_manifest(run_dir: Path) -> list[Path]:
    """Merge every part in ``run_dir/manifest.d/`` (what the plays wrote: parameters, controller, one per host,
    one per resume) into ``manifest.json``, in name order; return the parts. A killed run never reached the
    report play that does this, so ``vnflab report`` does it too."""
    parts = sorted(RunPaths(Path(run_dir)).manifest_parts.glob("*.json"))
    for part in parts:
        content = json.loads(part.read_text(encoding="utf-8"))
        if not isinstance(content, dict):
            raise ValueError(f"{part}: expected a JSON object")
        merge_manifest(run_dir, other=content)
    return parts
