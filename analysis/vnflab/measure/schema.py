"""The sample record contract of docs/design.md: field names, units (from :mod:`vnflab.metrics`), label format,
validation."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vnflab.metrics import METRICS as _METRICS

#: Sample record fields in design.md order (the columns of the tidy DataFrame).
SAMPLE_FIELDS: tuple[str, ...] = (
    "run_id", "platform", "label", "metric", "quantity", "x", "x_unit", "value", "unit", "status",
    "repetition", "instance", "seq", "time", "host", "mode",
)

#: Fields without which a sample cannot be placed in a table.
REQUIRED_FIELDS: tuple[str, ...] = ("platform", "label", "metric", "quantity", "x", "value", "unit", "status")

METRICS: tuple[str, ...] = tuple(_METRICS)
#: ``skipped``: nothing could be measured here (no mechanism on this platform or server); the record's
#: ``reason`` field says why, and its value is null.
STATUSES: tuple[str, ...] = ("ok", "lost", "skipped")

X_UNITS: dict[str, str] = {name: metric.x_unit for name, metric in _METRICS.items()}

QUANTITY_UNITS: dict[tuple[str, str], str] = {
    (name, quantity): unit for name, metric in _METRICS.items() for quantity, unit in metric.units.items()}

_LABEL_RE = re.compile(
    r"^(?P<engine>[^/\s]+)/(?P<image>\S+) \((?P<accelerator>[^,()]+), "
    r"(?P<status>real|stand-in)(?: for (?P<stands_in_for>[^()]+))?\)$"
)


@dataclass(frozen=True)
class Label:
    """A parsed platform label ``engine/image (accelerator, real|stand-in[ for X])``."""

    engine: str
    image: str
    accelerator: str
    status: str
    stands_in_for: str | None

    @property
    def is_stand_in(self) -> bool:
        return self.status == "stand-in"


def parse_label(label: str) -> Label | None:
    """Parse a platform label; ``None`` if it does not follow the design.md format."""
    match = _LABEL_RE.match(label)
    if match is None:
        return None
    return Label(**match.groupdict())


def validate_sample(record: Mapping[str, Any], *, consistency: bool = True) -> list[str]:
    """Contract violations of one sample record (empty list: valid).

    Unknown metrics and quantities are allowed (new probes); units must match known quantities.
    ``consistency=False`` skips the status/value agreement checks (``ok`` needs a value, ``lost``
    needs ``null``); the loader tolerates those by treating such a sample as lost.
    """
    errors = [f"missing field {name!r}" for name in REQUIRED_FIELDS if name not in record]
    if errors:
        return errors
    for name in ("platform", "label", "metric", "quantity", "unit", "status"):
        if not isinstance(record[name], str) or not record[name]:
            errors.append(f"{name} must be a non-empty string")
    x = record["x"]
    if isinstance(x, bool) or not isinstance(x, int):
        errors.append(f"x must be an integer, got {x!r}")
    status = record["status"]
    if status not in STATUSES:
        errors.append(f"status must be one of {STATUSES}, got {status!r}")
    value = record["value"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        errors.append(f"value must be a number or null, got {value!r}")
    elif isinstance(value, float) and not math.isfinite(value):
        errors.append(f"value must be finite, got {value!r}")
    if consistency and status == "ok" and value is None:
        errors.append("status ok with a null value")
    if status == "skipped" and value is not None:
        errors.append("status skipped with a non-null value")
    if consistency and status == "lost" and value is not None:
        errors.append("status lost with a non-null value")
    expected_unit = QUANTITY_UNITS.get((record["metric"], record["quantity"]))
    if expected_unit is not None and record["unit"] != expected_unit:
        errors.append(f"unit {record['unit']!r} for {record['quantity']} should be {expected_unit!r}")
    return errors
