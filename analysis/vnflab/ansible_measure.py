"""Controller side of the probe modules: repeat a point until the stopping rule holds, journal every sample.

The action plugins in ``action_plugins/`` are thin subclasses of :class:`MeasureAction`. A probe module
measures one batch on the lab host; this loop runs on the controller, so each batch's samples are fsynced
into ``results/<run-id>/samples.jsonl`` the moment the batch returns, whatever happens later.

A batch in which the platform failed to start an instance (the module says ``start_failed``) is journaled
in ``failures.jsonl`` and measured again, up to ``repeat.max_failed_batches`` times per point (default
2); one more failure fails the task. Any other failure fails it at once.

A subclass judges every batch (``judge_batch``; by default the task's very first batch through ``path_down``):
when it shows that nothing can be measured (no reply at all through a proxy whose server failed earlier in the
run, or that died during it) or that the point lost more than its threshold, the task fails at once, with that
batch journaled, instead of running every point to its cap.

A module that starts instances (``STOPS_LEFTOVERS``) is run once more with ``state: absent`` after a batch that
failed without a failed start (the module may have died before its own stop ran: it did, in a nested Xen
dom0), or with a failed start whose stop failed too; before the batch is measured again or the task fails.
Instances left running would make every later start of their names fail and weigh on every later point
and metric of that server.

A module that returns ``probe`` (how its prober ran and ended) has it journaled per measured batch in
``batches.jsonl``, so a lost instance can be told from a probe that ended early.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from vnflab.journal import Journal, PointsJournal, utc_timestamp
from vnflab.records import PointKey, watched_quantity, watched_values
from vnflab.stopping import StoppingRule

RecordBuilder = Callable[[PointKey, Mapping[str, Any], int], list[dict[str, Any]]]

DEFAULT_MAX_FAILED_BATCHES = 2


def stopping_rule(repeat: Mapping[str, Any]) -> StoppingRule:
    try:
        return StoppingRule(
            min_samples=int(repeat["min_samples"]), max_samples=int(repeat["max_samples"]),
            rel_half_width=float(repeat.get("rel_half_width", 0.05)),
            confidence=float(repeat.get("confidence", 0.95)),
            time_budget_s=float(repeat["time_budget_s"]) if repeat.get("time_budget_s") is not None else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleActionFail(f"repeat: {exc}") from exc


def max_failed_batches(repeat: Mapping[str, Any] | None) -> int:
    """How many batches of one point may fail to start (each journaled and measured again)."""
    value = (repeat or {}).get("max_failed_batches", DEFAULT_MAX_FAILED_BATCHES)
    try:
        count = int(str(value).strip()) if not isinstance(value, bool) else -1
    except ValueError:
        count = -1
    if count < 0:
        raise AnsibleActionFail(f"repeat.max_failed_batches must be a whole number of at least 0, got {value!r}")
    return count


def failure_record(key: PointKey, x: int, x_unit: str, batch: int, outcome: Mapping[str, Any],
                   retried: bool, cleanup: str | None = None) -> dict[str, Any]:
    """One line of ``failures.jsonl``: which batch of which point failed to start, why, and what followed
    (``cleanup``: how stopping the instances a failed stop left went, when the controller had to)."""
    record = {"run_id": key.run_id, "platform": key.platform, "label": key.label, "metric": key.metric,
              "host": key.host, "mode": key.mode, "x": x, "x_unit": x_unit, "batch": batch,
              "msg": str(outcome.get("msg", "")), "retried": retried, "time": utc_timestamp()}
    if cleanup is not None:
        record["cleanup"] = cleanup
    return record


def batch_record(key: PointKey, x: int, x_unit: str, batch: int, probe: Mapping[str, Any]) -> dict[str, Any]:
    """One line of ``batches.jsonl``: how the module's prober ran in one measured batch (its ``probe``)."""
    return {"run_id": key.run_id, "platform": key.platform, "label": key.label, "metric": key.metric,
            "host": key.host, "mode": key.mode, "x": x, "x_unit": x_unit, "batch": batch,
            "probe": dict(probe), "time": utc_timestamp()}


class MeasureAction(ActionBase):
    """Run the module of the same name point by point, batch by batch."""

    TRANSFERS_FILES = False
    METRIC = ""
    STOPS_LEFTOVERS = False  # the module takes state: absent (stop the batch's instances, nothing else)
    build_records: RecordBuilder

    def points(self, args: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
        """(x, x_unit, module args) of each point; one point by default."""
        raise NotImplementedError

    def batch_args(self, args: dict[str, Any], repeat: Mapping[str, Any]) -> dict[str, Any]:
        return args

    def stop_leftovers(self, module: str, point_args: dict[str, Any], task_vars: Any) -> str:
        """Stop a failed batch's instances; a sentence for the task's message saying how that went."""
        cleanup = self._execute_module(module_name=module, module_args={**point_args, "state": "absent"},
                                       task_vars=task_vars)
        if cleanup.get("failed"):
            return f"stopping the batch's instances afterwards failed too: {cleanup.get('msg', '')}"
        errors = cleanup.get("stop_errors") or []
        return ("the batch's instances were stopped afterwards" +
                (f" ({len(errors)} stop command(s) failed, e.g. {errors[0]})" if errors else ""))

    def path_down(self, first_batch: Sequence[float | None]) -> str | None:
        """Why nothing can be measured, judged from the task's first batch (its watched values), or None."""
        return None

    def judge_batch(self, point_values: Sequence[float | None], batch_values: Sequence[float | None],
                    repeat: Mapping[str, Any], point: str, first_of_task: bool) -> str | None:
        """Why the task must stop after this batch (journaled already), or None. ``point_values`` holds every
        watched value of the point so far, this batch's included; ``point`` names it ("x=64 B")."""
        return self.path_down(batch_values) if first_of_task else None

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        repeat = args.pop("repeat", None)
        journal = args.pop("journal", None)
        module = self._task.action.split(".")[-1]
        if self._task.check_mode or not journal:
            result.update(self._execute_module(module_name=module, module_args=args, task_vars=task_vars))
            return result
        for key in ("path", "run_id", "platform", "label"):
            if not journal.get(key):
                raise AnsibleActionFail(f"journal.{key} is required")
        rule = stopping_rule(repeat or {"min_samples": 1, "max_samples": 1})
        failed_batches_allowed = max_failed_batches(repeat)
        run_dir = Path(journal["path"])
        samples = Journal(run_dir / "samples.jsonl")
        failures = Journal(run_dir / "failures.jsonl")
        batches = Journal(run_dir / "batches.jsonl")
        points_journal = PointsJournal(run_dir / "points.jsonl")
        key = PointKey(run_id=str(journal["run_id"]), platform=str(journal["platform"]),
                       label=str(journal["label"]), metric=self.METRIC,
                       host=str((task_vars or {}).get("inventory_hostname", "")),
                       mode=args.get("mode", "icmp") if self.METRIC == "response" else None)
        summaries = []
        written = 0
        probe_s = 0.0  # the probe modules' own wall time, summed over batches (scripts/bench.sh)
        for x, x_unit, point_args in self.points(args):
            values: list[float | None] = []
            quantity = ""
            batch = 0
            failed_batches = 0
            started = time.monotonic()  # the point's time budget counts failed batches too
            while True:
                outcome = self._execute_module(module_name=module,
                                               module_args=self.batch_args(point_args, repeat or {}),
                                               task_vars=task_vars)
                probe_s += float(outcome.get("module_s") or 0.0)
                result["probe_s"] = round(probe_s, 6)
                if outcome.get("failed"):
                    cleanup = None
                    if self.STOPS_LEFTOVERS and (not outcome.get("start_failed") or outcome.get("stop_errors")):
                        # A failed start stopped its batch itself, unless a stop failed (an instance left running
                        # makes every later start of its name fail); any other failure may have left it running.
                        cleanup = self.stop_leftovers(module, point_args, task_vars)
                    if outcome.get("start_failed"):
                        retry = failed_batches < failed_batches_allowed
                        failures.append([failure_record(key, x, x_unit, batch, outcome, retry, cleanup)])
                        failed_batches += 1
                        if retry:
                            continue
                    if cleanup is not None:
                        outcome = {**outcome, "msg": f"{outcome.get('msg', '')} ({cleanup})"}
                    outcome["points"] = summaries
                    outcome["samples_written"] = written
                    outcome["failed_batches"] = failed_batches
                    return {**result, **outcome}
                written += samples.append(self.build_records(key, outcome, batch))
                if isinstance(outcome.get("probe"), Mapping):
                    batches.append([batch_record(key, x, x_unit, batch, outcome["probe"])])
                batch_values = watched_values(self.METRIC, outcome)
                quantity = watched_quantity(self.METRIC, outcome)
                values.extend(batch_values)
                down = self.judge_batch(values, batch_values, repeat or {}, f"x={x} {x_unit}",
                                        not summaries and batch == 0)
                if down:
                    return {**result, "failed": True, "msg": down, "points": summaries,
                            "samples_written": written, "failed_batches": failed_batches}
                batch += 1
                decision = rule.decide(values, elapsed_s=round(time.monotonic() - started, 3), batches=batch)
                if decision.done:
                    break
            summaries.append(points_journal.append_point(
                {"run_id": key.run_id, "platform": key.platform, "label": key.label, "metric": self.METRIC,
                 "quantity": quantity, "x": x, "x_unit": x_unit, "mode": key.mode,
                 "host": key.host, "failed_batches": failed_batches}, rule, decision, batches=batch))
        result.update(changed=False, points=summaries, samples_written=written)
        return result
