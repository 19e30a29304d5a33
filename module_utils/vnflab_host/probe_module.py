# Copyright: vnflab contributors
# Apache License 2.0
"""What the vnflab probe modules share: argument-spec pieces, their validators and the run loop around a probe."""

from __future__ import annotations

import math
import time
from typing import Any

from ansible.module_utils.vnflab_host.driver import StartError
from ansible.module_utils.vnflab_host.limits import MAX_INSTANCES, MAX_PAYLOAD, MAX_PPS

__all__ = ["MAX_INSTANCES", "MAX_PAYLOAD", "MAX_PPS"]  # re-exported for the modules

# Options read by the controller-side action plugin (repetition and journaling); a module run
# without the action plugin accepts and ignores them.
CONTROLLER_OPTIONS: dict[str, dict[str, Any]] = {
    "repeat": {"type": "dict", "required": False},
    "journal": {"type": "dict", "required": False},
    "points_after": {"type": "int", "required": False, "default": 0},
}

def instances_absent(driver: Any, count: int, check_mode: bool) -> dict[str, Any]:
    """Result of ``state: absent``: every stop command of the batch's instances run (none in check mode).

    A stop command's error is reported, not raised: an instance that is not there may make a platform's
    stop complain (``docker rm`` does), and a cleanup must try every instance.
    """
    instances = driver.instances(count)
    result: dict[str, Any] = {"changed": False, "count": len(instances), "label": driver.label, "stop_errors": []}
    if check_mode:
        result["msg"] = f"check mode: would stop {len(instances)} instance(s)"
        return result
    result["stop_errors"] = driver.stop(instances)
    result["changed"] = len(result["stop_errors"]) < len(instances)
    return result


def check_count(count: int) -> str | None:
    if not 1 <= count <= MAX_INSTANCES:
        return f"count must be between 1 and {MAX_INSTANCES}, got {count}"
    return None


def check_sizes(sizes: list[int]) -> str | None:
    bad = [size for size in sizes if not 1 <= size <= MAX_PAYLOAD]
    if bad:
        return f"sizes must be between 1 and {MAX_PAYLOAD} bytes, got {bad}"
    return None


def check_positive(value: float) -> str | None:
    if not (math.isfinite(value) and value > 0):
        return f"must be a finite number greater than 0, got {value}"
    return None


def check_non_negative(value: float) -> str | None:
    if not (math.isfinite(value) and value >= 0):
        return f"must be a finite number of at least 0, got {value}"
    return None


def check_between(value: int, low: int, high: int) -> str | None:
    if not low <= value <= high:
        return f"must be between {low} and {high}, got {value}"
    return None


def run_probe_module(module: Any, checks: list[tuple[str, str | None]], run: Any,
                     expected: tuple[type[Exception], ...] = ()) -> None:
    """The shape every probe module's main() shares: fail on the first bad option (naming it) before
    anything starts, then run and exit; expected errors and OSError (no raw socket, no root) become
    fail_json with the traceback, a StartError with ``start_failed: true`` and the batch's ``stop_errors``."""
    import traceback

    for name, problem in checks:
        if problem:
            module.fail_json(msg=f"{name}: {problem}")
    # module_s: the probe's own wall time, from here to its result (the benchmark's "inside the probes";
    # what a task takes beyond the sum of its batches' module_s is Ansible's).
    started = time.monotonic()
    try:
        result = run(module)
        module.exit_json(**result, module_s=round(time.monotonic() - started, 6))
    except StartError as exc:
        # The platform failed to start an instance: the controller may journal the batch and retry it.
        module.fail_json(msg=f"driver: {exc}", start_failed=True, stop_errors=exc.stop_errors,
                         module_s=round(time.monotonic() - started, 6), exception=traceback.format_exc())
    except expected as exc:
        module.fail_json(msg=f"driver: {exc}", exception=traceback.format_exc())
    except OSError as exc:
        module.fail_json(msg=f"probe failed: {exc}", exception=traceback.format_exc())
