"""No fixed names in shared temporary directories: a file at a name anyone can guess in /tmp can be planted or
swapped by another user before root writes or reads it, and two runs at once overwrite each other's. Temporary
files and directories go through ``mktemp`` (or Ansible's ``tempfile``), which makes a fresh name, readable by its
owner only. It bit once: the proxy's root file system was built at ``/tmp/vnflab-proxy-rootfs.tar``."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A literal path under /tmp or /var/tmp, or one under $TMPDIR's fallback ("{{ ... default('/tmp') }}/name").
FIXED = [
    re.compile(r"(?<![\w$}])/(var/)?tmp/[A-Za-z0-9_][\w.-]*"),
    re.compile(r"TMPDIR[^\n]*\}\}/[A-Za-z0-9_]"),
    re.compile(r"\$\{TMPDIR:-/(var/)?tmp\}/[A-Za-z0-9_][\w.-]*(?!X)"),
]
SOURCES = ("roles/", "scripts/", "library/", "module_utils/", "action_plugins/", "playbooks/", "src/", "site.yml",
           "molecule/")


def project_files() -> list[Path]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in tracked if name.startswith(SOURCES) and not name.endswith((".md", ".patch"))
            and (ROOT / name).is_file()]


def fixed_names(text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if "mktemp" in line or re.search(r"XXXX", line):
            continue  # a template: mktemp picks the name
        for pattern in FIXED:
            match = pattern.search(line)
            if match:
                found.append(f"{number}: {match.group(0)}")
    return found


@pytest.mark.parametrize(("line", "fixed"), [
    ('tar -cf /tmp/vnflab-proxy-rootfs.tar .', True),
    ("path: \"{{ lookup('env', 'TMPDIR') | default('/tmp', true) }}/vnflab-proxy-rootfs.tar\"", True),
    ('log=/var/tmp/build.log', True),
    ('work=$(mktemp -d "${TMPDIR:-/tmp}/vnflab-microvm.XXXXXX")', False),
    ('/dev|/dev/*|/proc|/proc/*|/tmp|/tmp/*) echo nope ;;', False),
    ('"$root/tmp/x"', False),
])
def test_the_check_tells_a_fixed_name_from_a_template(line: str, fixed: bool) -> None:
    assert bool(fixed_names(line)) is fixed


def test_no_project_file_writes_a_fixed_name_in_a_shared_temporary_directory() -> None:
    found = {str(path.relative_to(ROOT)): names for path in project_files()
             if (names := fixed_names(path.read_text(errors="replace")))}
    assert found == {}, found
