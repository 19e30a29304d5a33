"""Layout of one run directory and creation of new ones (``results/<run-id>/``)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

RUN_ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


@dataclass(frozen=True)
class RunPaths:
    """Every file a run directory holds, derived from the directory alone."""

    run_dir: Path

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def samples(self) -> Path:
        return self.run_dir / "samples.jsonl"

    @property
    def points(self) -> Path:
        return self.run_dir / "points.jsonl"

    @property
    def failures(self) -> Path:
        """Batches in which the platform failed to start an instance (journaled, then measured again)."""
        return self.run_dir / "failures.jsonl"

    @property
    def batches(self) -> Path:
        """How each measured batch's prober ran and ended (the probe modules' ``probe``)."""
        return self.run_dir / "batches.jsonl"

    @property
    def manifest(self) -> Path:
        return self.run_dir / "manifest.json"

    @property
    def manifest_parts(self) -> Path:
        """What the plays write for the manifest (parameters, controller, one part per host and per resume)."""
        return self.run_dir / "manifest.d"

    @property
    def tables_dir(self) -> Path:
        return self.run_dir / "tables"

    @property
    def figures_dir(self) -> Path:
        return self.run_dir / "figures"

    @property
    def report(self) -> Path:
        return self.run_dir / "report.md"

    @property
    def report_html(self) -> Path:
        return self.run_dir / "report.html"


def new_run_id(now: datetime | None = None, token: str | None = None) -> str:
    """Return ``YYYYmmddTHHMMSSZ-<6 hex>`` for ``now`` (UTC; default: the current time)."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    suffix = token if token is not None else secrets.token_hex(3)
    if not re.fullmatch(r"[0-9a-f]{6}", suffix):
        raise ValueError(f"run id token must be 6 lowercase hex digits, got {suffix!r}")
    return f"{when:%Y%m%dT%H%M%SZ}-{suffix}"


def create_run_dir(results_dir: Path, now: datetime | None = None, attempts: int = 8) -> Path:
    """Create ``results_dir/<new run id>/`` (never reusing an existing one) and return it."""
    results_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        run_dir = results_dir / new_run_id(now)
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        return run_dir
    raise FileExistsError(f"could not find a free run id under {results_dir} after {attempts} attempts")
