"""Append-only JSONL journals on the controller: ``samples.jsonl`` and ``points.jsonl``.

Every :meth:`Journal.append` writes its lines, flushes and ``fsync``s before it returns, so a run
killed at any point keeps every record already appended. Durability is per line: a kill during an
``append`` may leave a prefix of that batch plus one torn (incomplete) last line. Readers skip a torn
last line with a warning; the next ``append`` repairs it (see :meth:`Journal.append`).

Stdlib only, so action plugins can import it without pandas.
"""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vnflab.measure.stopping import Decision, StoppingRule

_TAIL_CHUNK = 4096


class TornLineWarning(UserWarning):
    """A journal ended in an incomplete line (a writer was killed mid-write)."""


class JournalCorruptError(ValueError):
    """A line other than the last one is not a JSON object: the file was damaged, not torn."""


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO 8601 UTC time with microseconds and a ``Z`` suffix, e.g. ``2025-01-02T03:04:05.000006Z``."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One compact JSON line. NaN/Infinity are refused: a lost sample is ``null``, never NaN."""
    if not isinstance(record, Mapping):
        raise TypeError(f"journal records must be mappings, got {type(record).__name__}")
    text = json.dumps(dict(record), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False


def _repair_tail(fd: int, path: Path) -> None:
    """Make the file end in a newline before appending (called with the lock held).

    If the bytes after the last newline are a complete JSON object (the kill fell between the
    object and its newline) the newline is added; otherwise the fragment, which was never a
    whole record and whose ``append`` never returned, is truncated away with a warning.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    end = size
    line_start = 0
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        chunk = os.pread(fd, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            line_start = start + newline + 1
            break
        end = start
    fragment = os.pread(fd, size - line_start, line_start)
    if _is_json_object(fragment):
        _write_all(fd, b"\n")
        return
    os.ftruncate(fd, line_start)
    warnings.warn(
        f"{path}: dropped a torn last line of {len(fragment)} bytes left by an interrupted append",
        TornLineWarning,
        stacklevel=3,
    )


class Journal:
    """Append-only JSONL file; safe against kills and against concurrent appenders (``flock``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append ``records`` as lines; return how many. Durable (fsynced) when it returns.

        All records are encoded before anything is written, so a record that cannot be encoded
        (not a mapping, NaN) raises without touching the file.
        """
        data = b"".join(encode_record(record) for record in records)
        if not data:
            return 0
        count = data.count(b"\n")
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            was_empty = os.fstat(fd).st_size == 0
            _repair_tail(fd, self.path)
            _write_all(fd, data)
            os.fsync(fd)
            if was_empty:
                _fsync_dir(self.path.parent)
        finally:
            os.close(fd)
        return count


class PointsJournal(Journal):
    """``points.jsonl``: one line per finished point saying which rule applied and why it stopped."""

    def append_point(
        self,
        point: Mapping[str, Any],
        rule: StoppingRule,
        decision: Decision,
        *,
        batches: int | None = None,
        time: str | None = None,
    ) -> dict[str, Any]:
        """Journal the summary of one point and return the record written.

        ``point`` identifies it: ``run_id``, ``platform``, ``label``, ``metric``, ``quantity``
        (the one the rule was applied to), ``x``, ``x_unit``, ``mode``, ``host``.
        """
        record: dict[str, Any] = dict(point)
        record.update(decision.as_dict())
        record.update({f"rule_{key}": value for key, value in rule.as_dict().items()})
        if batches is not None:
            record["batches"] = batches
        record["time"] = time or utc_timestamp()
        self.append([record])
        return record


@dataclass(frozen=True)
class JsonlContents:
    """Records read from a JSONL journal and how many torn last lines were skipped (0 or 1)."""

    records: list[dict[str, Any]]
    torn_lines: int


def read_jsonl(path: Path) -> JsonlContents:
    """Read a journal, skipping (with a :class:`TornLineWarning`) an incomplete last line.

    Blank lines are ignored. A bad line anywhere but at the end raises :class:`JournalCorruptError`.
    """
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    # A file that ends in "\n" splits into a trailing empty element: that is not a line.
    complete_last = raw.endswith(b"\n")
    records: list[dict[str, Any]] = []
    torn = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        is_last_fragment = number == len(lines) and not complete_last
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if is_last_fragment:
                torn += 1
                continue
            raise JournalCorruptError(f"{path}:{number}: not valid JSON: {exc}") from exc
        if not isinstance(record, dict):
            if is_last_fragment:
                torn += 1
                continue
            raise JournalCorruptError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        records.append(record)
    if torn:
        warnings.warn(f"{path}: skipped a torn last line (interrupted write)", TornLineWarning, stacklevel=2)
    return JsonlContents(records=records, torn_lines=torn)
