"""pytest imports test files by basename (no packages under tests/): two files with one name in different
folders break the collection of the whole suite (as tests/static and tests/integration once did)."""

from __future__ import annotations

import collections
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_name_is_unique() -> None:
    names = collections.Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert not [name for name, count in names.items() if count > 1]
