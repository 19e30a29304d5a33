"""The controller package reads as the pipeline: measure -> stats -> report, with run (``vnflab run``) on top and the
CLI over all of them; and its measuring side stays cheap to import, because every action plugin imports it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import vnflab

PACKAGE = Path(vnflab.__file__).resolve().parent
REPO = Path(__file__).resolve().parents[2]
PARTS = ("measure", "stats", "report", "run")
#: what each part may import from the package besides itself and the shared top-level modules
MAY_IMPORT: dict[str, set[str]] = {
    "measure": set(),
    "stats": {"measure"},
    "report": {"measure", "stats"},
    "run": {"measure", "stats", "report"},
}
#: top-level modules every part may use: the metric declarations, the limits, number formatting
SHARED = {"metrics", "limits", "markdown"}
#: never imported on the measuring path (the action plugins, the filters, metrics and limits); scipy is, for the
#: stopping rule's Student t quantiles
HEAVY = ("pandas", "matplotlib", "seaborn")


def package_imports(path: Path) -> set[str]:
    """The first name under ``vnflab`` of every import in ``path`` (``vnflab.measure.journal`` -> ``measure``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "vnflab":
                continue
            if len(parts) > 1:
                names.add(parts[1])
            else:
                names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name.split(".")[1] for alias in node.names
                      if alias.name.startswith("vnflab.")}
    return names - {"__version__"}


def part_modules(part: str) -> list[Path]:
    return sorted((PACKAGE / part).glob("*.py"))


@pytest.mark.parametrize("part", PARTS)
def test_each_part_imports_only_the_parts_before_it(part: str) -> None:
    allowed = {part} | MAY_IMPORT[part] | SHARED
    modules = part_modules(part)
    assert modules, f"vnflab.{part} has no modules"
    wrong = {f"{path.name} imports vnflab.{name}" for path in modules for name in package_imports(path) - allowed}
    assert not wrong, f"vnflab.{part} reaches past the parts before it: {sorted(wrong)}"


def test_the_shared_modules_lean_on_measure_alone() -> None:
    """metrics builds its records with vnflab.measure; nothing shared reaches stats, report, run or the CLI."""
    for name in SHARED:
        path = PACKAGE / f"{name}.py"
        assert path.is_file(), path
        assert package_imports(path) <= SHARED | {"measure"}, f"vnflab.{name}: {package_imports(path)}"


def test_nothing_in_the_package_imports_the_cli() -> None:
    importers = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                 if path.name != "__main__.py" and "cli" in package_imports(path)]
    assert importers == [], importers


def test_the_measuring_side_imports_no_pandas_or_matplotlib() -> None:
    """In a fresh interpreter: every measure module, metrics, limits, the run lock, every action plugin and the
    filters (what ansible-playbook loads for every task) leave the heavy libraries unloaded."""
    modules = [f"vnflab.measure.{p.stem}" for p in part_modules("measure") if p.stem != "__init__"]
    modules += ["vnflab.metrics", "vnflab.limits", "vnflab.run.runlock"]
    plugins = sorted(str(p) for p in (REPO / "action_plugins").glob("*.py"))
    plugins += [str(REPO / "filter_plugins" / "vnflab_lab.py"), *map(str, (REPO / "callback_plugins").glob("*.py"))]
    script = f"""
import importlib, importlib.util, sys
for name in {modules!r}:
    importlib.import_module(name)
for index, path in enumerate({plugins!r}):
    spec = importlib.util.spec_from_file_location(f"plugin_{{index}}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(" ".join(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"loaded on the measuring path: {done.stdout.strip()}"
    assert len(modules) >= 10 and len(plugins) >= 6  # the loop above really imported the measuring side


def test_python_dash_m_vnflab_is_the_vnflab_command() -> None:
    done = subprocess.run([sys.executable, "-m", "vnflab", "--version"], capture_output=True, text=True, check=False,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"vnflab {vnflab.__version__}", done.stderr
