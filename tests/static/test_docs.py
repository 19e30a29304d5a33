"""The documentation cannot drift from the tree: the README stays a front door that links every doc, every link
resolves inside the repository, the metric definitions live in one text, and every role's README names every
variable its argument specs declare."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from vnflab.report.build import METRIC_DEFINITIONS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
ROLES = sorted(path for path in (ROOT / "roles").iterdir() if path.is_dir())
MARKDOWN = [README, ROOT / "CHANGELOG.md", *DOCS, *(role / "README.md" for role in ROLES)]
README_MAX_BYTES = 10 * 1024

# [text](target) outside code: the target up to an optional "#anchor"; web links are left alone.
LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
HEADING = re.compile(r"^#{1,6} (?P<text>.+?)\s*$", re.M)


def links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text())
    return [m["target"] for m in LINK.finditer(text) if not re.match(r"[a-z]+:", m["target"])]


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (not '-' or '_'), spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {anchor(m["text"]) for m in HEADING.finditer(FENCE.sub("", path.read_text()))}


def test_readme_is_a_front_door() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail to docs/ (at most {README_MAX_BYTES})"
    linked = {(README.parent / target.split("#")[0]).resolve() for target in links(README)}
    missing = [doc.name for doc in DOCS if doc.resolve() not in linked]
    assert not missing, f"README.md does not link docs/{', docs/'.join(missing)}"


@pytest.mark.parametrize("path", MARKDOWN, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN])
def test_links_resolve_inside_the_repository(path: Path) -> None:
    if not path.is_file():
        pytest.skip("no such file (the role README test says so)")
    for target in links(path):
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        assert resolved.is_relative_to(ROOT), f"{target}: outside the repository"
        assert resolved.exists(), f"{target}: no such file"
        if fragment and resolved.suffix == ".md":
            assert fragment in anchors(resolved), f"{target}: no heading with that anchor in {resolved.name}"


def test_anchor_is_githubs() -> None:
    assert anchor("Sample record (one JSON object per line in `results/<run-id>/samples.jsonl`)") == (
        "sample-record-one-json-object-per-line-in-resultsrun-idsamplesjsonl")
    assert anchor("The `vnflab` command (controller)") == "the-vnflab-command-controller"


def test_metric_definitions_are_one_text() -> None:
    """docs/metrics.md carries the definitions every report prints, word for word."""
    assert METRIC_DEFINITIONS in (ROOT / "docs" / "metrics.md").read_text()


def argument_spec_options(role: Path) -> set[str]:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return {name for spec in specs.values() for name in (spec.get("options") or {})}


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_readme_names_every_variable(role: Path) -> None:
    readme = role / "README.md"
    assert readme.is_file(), f"roles/{role.name} has no README.md (purpose, variables, an example play)"
    text = readme.read_text()
    for section in ("## Variables", "## Example"):
        assert section in text, f"roles/{role.name}/README.md has no '{section}' section"
    missing = sorted(name for name in argument_spec_options(role) if f"`{name}`" not in text)
    assert not missing, f"roles/{role.name}/README.md does not describe {', '.join(missing)}"
