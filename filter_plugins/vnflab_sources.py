# Copyright: vnflab contributors
# Apache License 2.0
"""Jinja filter: what is wrong with a list of pinned sources, checked on the controller before the lab changes."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from ansible.errors import AnsibleFilterError

SOURCES_PY = Path(__file__).resolve().parent.parent / "module_utils" / "vnflab_host" / "sources.py"


def _sources() -> ModuleType:
    """The module_utils code the vnflab_source module runs on the build host (stdlib only), loaded here too."""
    name = "vnflab_module_utils_sources"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SOURCES_PY)
    if spec is None or spec.loader is None:
        raise AnsibleFilterError(f"cannot load {SOURCES_PY}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def vnflab_source_problems(pins: Sequence[Mapping[str, Any]] | Mapping[str, Any], mirror: str, variable: str,
                           check_files: bool = True) -> list[str]:
    """Problems of each pin, each naming ``variable`` and the source.

    ``check_files`` also checks each archive of a directory ``mirror`` on this machine (present, listed in
    SHA256SUMS, matching it); use it when the build host is the controller. URL mirrors and mirrors on other
    hosts are checked by the vnflab_source module in check mode on the build host.
    """
    sources = _sources()
    if isinstance(pins, Mapping):
        pins = [pins]
    problems: list[str] = []
    seen: set[str] = set()
    # One Mirror for every pin: it reads SHA256SUMS once. Files are checked only in a directory on this machine.
    local_mirror = sources.Mirror(mirror) if mirror and check_files and not sources.Mirror(mirror).is_url else None
    mirror_missing = local_mirror is not None and not os.path.isdir(mirror)
    for index, pin in enumerate(pins):
        if not isinstance(pin, Mapping):
            problems.append(f"{variable}[{index}]: expected a mapping with name, version, git_url and archive")
            continue
        name = str(pin.get("name") or f"[{index}]")
        where = f"{variable}[{name}]"
        if name in seen:
            problems.append(f"{where}: listed twice")
        seen.add(name)
        source = sources.Source(name=name, version=str(pin.get("version", "")), git_url=str(pin.get("git_url", "")),
                                mirror=str(mirror or ""), archive=str(pin.get("archive", "")),
                                sha256=str(pin.get("sha256", "")).lower())
        pin_problems = source.problems()
        problems.extend(f"{where}: {problem}" for problem in pin_problems)
        if local_mirror is None or pin_problems:
            continue
        if mirror_missing:
            problems.append(f"{where}: the source mirror {mirror} is not a directory on the controller")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local_mirror.verified(source.archive, tmp, source.sha256)
            except sources.SourceError as exc:
                problems.append(f"{where}: {exc}")
    return problems


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"vnflab_source_problems": vnflab_source_problems}
