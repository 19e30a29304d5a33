"""No SIGPIPE traps in the project's shell scripts: under ``set -o pipefail`` a reader that stops early (``head``,
``grep -q``, ``awk '... exit'``) makes the writer die of SIGPIPE, and the pipeline fails although it found what it
wanted. It bit once: ``apt-cache policy PKG | awk '/Candidate:/ {print $2; exit}'`` exited 141 every time on a
machine with a few hundred more packages, and no emulated server could start."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EARLY_READERS = [
    (re.compile(r"\|\s*head\b"), "| head"),
    (re.compile(r"\|\s*grep\s+(-[A-Za-z]*q[A-Za-z]*|--quiet|--silent)\b"), "| grep -q"),
    (re.compile(r"\|\s*(sed\s+-n\s+'[^']*q|awk\b(?:(?!END).)*\bexit\b)"), "| awk/sed that quits before the end"),
]


def shell_scripts() -> list[Path]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    scripts = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in (".py", ".md", ".yml", ".yaml", ".j2", ".json", ".c", ".h", ".patch") or not path.is_file():
            continue
        head = path.read_bytes()[:200]
        if name.endswith(".sh") or re.match(rb"#!.*\b(bash|sh)\b", head):
            scripts.append(path)
    return scripts


def traps(text: str) -> list[str]:
    if "pipefail" not in text:
        return []
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split(" #", 1)[0]
        if line.lstrip().startswith("#") or "sigpipe-safe" in line:
            continue
        found += [f"{number}: {what}: {line.strip()}" for pattern, what in EARLY_READERS if pattern.search(code)]
    return found


def test_the_check_finds_the_trap_that_bit() -> None:
    text = "set -euo pipefail\ncandidate() { apt-cache policy \"$1\" | awk '/Candidate:/ {print $2; exit}'; }\n"
    assert traps(text) and traps("set -o pipefail\nx=$(ls | head -1)\n") and traps("set -o pipefail\nf | grep -q y\n")
    assert not traps("set -o pipefail\nxl info | awk '$1 == 1 {f=1} END {exit !f}'\n")
    assert not traps("set -eu\nx=$(ls | head -1)\n"), "without pipefail a reader that quits early is harmless"


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_early_reader_under_pipefail(script: Path) -> None:
    assert traps(script.read_text(errors="replace")) == []
