"""Static checks: ansible-lint (production profile), ruff, playbook syntax, module documentation."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.vnflab_host import instances, probe_module

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
                          env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", NO_COLOR="1"))


def test_ansible_lint_production_profile() -> None:
    done = run(str(BIN / "ansible-lint"), "-q", "--nocolor", "site.yml", "playbooks", "roles")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff() -> None:
    done = run(str(BIN / "ruff"), "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_site_syntax() -> None:
    done = run(str(BIN / "ansible-playbook"), "--syntax-check", "site.yml")
    assert done.returncode == 0, done.stdout + done.stderr


MODULES = sorted((ROOT / "library").glob("*.py"))


def test_ansible_doc_renders_every_module() -> None:
    """ansible-doc loads every module with its doc fragments and renders it (a description item with an unquoted
    ': ' parses as a mapping, which ansible-doc cannot render)."""
    done = run(str(BIN / "ansible-doc"), "-t", "module", *(path.stem for path in MODULES))
    assert done.returncode == 0, done.stderr
    rendered = [line.split()[2] for line in done.stdout.splitlines() if line.startswith("> MODULE ")]
    assert len(rendered) == len(MODULES), (rendered, done.stderr)


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_module_documentation_is_complete(path: Path) -> None:
    """DOCUMENTATION, EXAMPLES and RETURN parse as YAML; every argument_spec option is documented."""
    tree = ast.parse(path.read_text())
    docs = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN")}
    assert set(docs) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    documentation = yaml.safe_load(docs["DOCUMENTATION"])
    assert documentation["module"] == path.stem
    fragments = documentation.get("extends_documentation_fragment") or []
    attributes: dict[str, dict[str, object]] = {}
    for part in [*(fragment_part(name).get("attributes", {}) for name in fragments),
                 documentation.get("attributes") or {}]:
        for name, spec in part.items():
            attributes[name] = {**attributes.get(name, {}), **spec}
    assert {"check_mode", "diff_mode"} <= set(attributes), "extend vnflab_attributes (doc_fragments/)"
    for name, spec in attributes.items():
        assert spec.get("support") in ("full", "partial", "none"), f"attribute {name}: no support"
    yaml.safe_load(docs["EXAMPLES"])
    returned = yaml.safe_load(docs["RETURN"]) or {}
    for key, spec in returned.items():
        assert {"description", "returned", "type"} <= set(spec), f"RETURN {key} is incomplete"
    documented = set(documentation.get("options") or {})
    for fragment in fragments:
        documented |= set(fragment_part(fragment).get("options") or {})
    assert top_level_options(tree) == documented


def fragment_part(name: str) -> dict[str, dict[str, object]]:
    """A doc fragment of doc_fragments/ (ansible.cfg doc_fragment_plugins): its DOCUMENTATION, or for ``name.var``
    its VAR, as ansible-doc reads it."""
    file, _, var = name.partition(".")
    tree = ast.parse((ROOT / "doc_fragments" / f"{file}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == (var.upper() or "DOCUMENTATION"):
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError(f"doc fragment {name} has no {var.upper() or 'DOCUMENTATION'}")


def top_level_options(tree: ast.Module) -> set[str]:
    """Option names of the module's argument_spec (a dict(...) call, possibly with **CONTROLLER_OPTIONS)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        call = None
        if isinstance(node, ast.keyword) and node.arg == "argument_spec":
            call = node.value
        elif isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "argument_spec":
            call = node.value
        if isinstance(call, ast.Call):
            for keyword in call.keywords:
                if keyword.arg is not None:
                    names.add(keyword.arg)
                else:  # **SHARED_OPTIONS from module_utils/vnflab_host/probe_module.py or instances.py
                    shared = next(module for module in (probe_module, instances) if hasattr(module, keyword.value.id))
                    names |= set(getattr(shared, keyword.value.id))
    return names
