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

A run directory that already holds journals (a killed run given again, ``vnflab_run_dir``) is resumed point by
point (:mod:`vnflab.measure.resume`): a finished point is skipped and its summary returned with ``resumed: skipped``; a
point the kill cut continues from its next repetition number, its journaled values, failed batches and time
counted by the stopping rule, and its ``points.jsonl`` line says how many batches it had (``resumed_batches``).

A metric may share one time budget among its points on a server (``repeat.server_budget_s``,
:mod:`vnflab.measure.budget`): each point's budget is then its share of what the metric has left there; ``points_after``
(a task option) says how many points the task's later loop items will measure, so the share counts them.

A worker whose ansible-playbook was killed (``kill -9``) stops before its next batch (:func:`controller_gone`).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from vnflab.limits import CONFIDENCE, MAX_FAILED_BATCHES, REL_HALF_WIDTH
from vnflab.measure.ansible_record import checked_journal
from vnflab.measure.budget import server_budget, time_spent_s
from vnflab.measure.journal import Journal, PointsJournal, utc_timestamp
from vnflab.measure.records import PointKey
from vnflab.measure.resume import read_point_progress
from vnflab.measure.rundir import RunPaths
from vnflab.measure.stopping import StoppingRule
from vnflab.metrics import METRICS


def stopping_rule(repeat: Mapping[str, Any]) -> StoppingRule:
    try:
        return StoppingRule(
            min_samples=int(repeat["min_samples"]), max_samples=int(repeat["max_samples"]),
            rel_half_width=float(repeat.get("rel_half_width", REL_HALF_WIDTH)),
            confidence=float(repeat.get("confidence", CONFIDENCE)),
            time_budget_s=float(repeat["time_budget_s"]) if repeat.get("time_budget_s") is not None else None,
            budget_floor=int(repeat["budget_floor"]) if repeat.get("budget_floor") is not None else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleActionFail(f"repeat: {exc}") from exc


def max_failed_batches(repeat: Mapping[str, Any] | None) -> int:
    """How many batches of one point may fail to start (each journaled and measured again)."""
    value = (repeat or {}).get("max_failed_batches", MAX_FAILED_BATCHES)
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


class Controller:
    """ansible-playbook, the process that forked this worker.

    A worker is not killed with it (a ``kill -9`` of the run): it would go on measuring every point and loop item of
    its task, journaling them and holding the run lock it inherited, and die only when it reports. The worker is a
    ``multiprocessing`` child, so its parent's liveness is read from the pipe multiprocessing keeps to it (a parent
    that died is seen even after the worker was reparented); outside multiprocessing, from the parent PID."""

    def __init__(self) -> None:
        self._parent = multiprocessing.parent_process()
        self.pid = self._parent.pid if self._parent is not None and self._parent.pid else os.getppid()

    def alive(self) -> bool:
        if self._parent is not None:
            return self._parent.is_alive()
        return os.getppid() == self.pid


def controller_gone(controller: Controller, point: str, batch: int) -> str | None:
    """Why to stop before the next batch when ansible-playbook has died, or None. Checked before each batch, the
    worker stops within one batch; what it journaled stays for a resume."""
    if controller.alive():
        return None
    return (f"{point}: ansible-playbook (PID {controller.pid}) is gone; stopped before batch {batch}, with every "
            "earlier batch journaled (resume with vnflab_run_dir)")


class MeasureAction(ActionBase):
    """Run the module of the same name point by point, batch by batch."""

    TRANSFERS_FILES = False
    METRIC = ""
    STOPS_LEFTOVERS = False  # the module takes state: absent (stop the batch's instances, nothing else)

    def points(self, args: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
        """(x, x_unit, module args) of each point; one point by default."""
        raise NotImplementedError

    def batch_args(self, args: dict[str, Any], repeat: Mapping[str, Any]) -> dict[str, Any]:
        """The module's arguments for one batch. A metric whose batch is one start of its instances takes no
        ``repeat.batch`` (1 is accepted: older profiles said so)."""
        batch = repeat.get("batch")
        if batch is not None and str(batch) != "1":
            batched = ", ".join(name for name, metric in METRICS.items() if metric.batch_samples is not None)
            raise AnsibleActionFail(f"repeat.batch ({batch!r}): {self.METRIC} measures one value per batch (one start "
                                    f"of its instances); batch, the samples of one module run, applies to {batched}")
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
        points_after = args.pop("points_after", 0)
        module = self._task.action.split(".")[-1]
        if self._task.check_mode or not journal:
            result.update(self._execute_module(module_name=module, module_args=args, task_vars=task_vars))
            return result
        checked_journal(journal)
        rule = stopping_rule(repeat or {"min_samples": 1, "max_samples": 1})
        try:
            budget = server_budget(repeat)
            points_after = int(str(points_after).strip())
            if points_after < 0:
                raise ValueError(f"points_after must be >= 0, got {points_after}")
        except ValueError as exc:
            raise AnsibleActionFail(str(exc)) from exc
        failed_batches_allowed = max_failed_batches(repeat)
        paths = RunPaths(Path(journal["path"]))
        run_dir = paths.run_dir
        samples = Journal(paths.samples)
        failures = Journal(paths.failures)
        batches = Journal(paths.batches)
        points_journal = PointsJournal(paths.points)
        key = PointKey(run_id=str(journal["run_id"]), platform=str(journal["platform"]),
                       label=str(journal["label"]), metric=self.METRIC,
                       host=str((task_vars or {}).get("inventory_hostname", "")),
                       mode=METRICS[self.METRIC].mode_of(args))
        summaries = []
        written = 0
        probe_s = 0.0  # the probe modules' own wall time, summed over batches (scripts/bench.sh)
        measured_here = 0  # batches this task measured (the first one may show a path that is down)
        controller = Controller()  # ansible-playbook: this worker outlives a kill -9 of it
        points = self.points(args)
        for index, (x, x_unit, point_args) in enumerate(points):
            # A run directory given again (a killed run resumed): a finished point is skipped, a cut one continues
            # from its next repetition with its journaled values (vnflab.measure.resume).
            progress = read_point_progress(run_dir, key, x, x_unit)
            if progress.finished is not None:
                summaries.append({**progress.finished, "resumed": "skipped"})
                continue
            point_rule, shared = rule, {}
            if budget is not None:  # this point's share of what the metric has left on this server
                spent = time_spent_s(paths.points, key)
                point_rule = replace(rule, time_budget_s=budget.point_budget_s(
                    spent, len(points) - index + points_after, rule.time_budget_s))
                shared = {"server_budget_s": budget.total_s, "server_spent_before_s": round(spent, 3)}
            values: list[float | None] = list(progress.values)
            quantity = progress.quantity
            batch = progress.next_repetition
            failed_batches = progress.failed_batches
            # the point's time budget counts failed batches too, and the time it took before a kill
            started = time.monotonic() - progress.elapsed_s
            # a point cut after its last batch was journaled but before its summary needs no further batch
            decision = point_rule.decide(values, elapsed_s=progress.elapsed_s, batches=batch) if batch else None
            while decision is None or not decision.done:
                gone = controller_gone(controller, f"x={x} {x_unit}", batch)
                if gone:
                    return {**result, "failed": True, "msg": gone, "points": summaries, "samples_written": written,
                            "failed_batches": failed_batches}
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
                        try:
                            failures.append([failure_record(key, x, x_unit, batch, outcome, retry, cleanup)])
                        except OSError as exc:
                            retry = False
                            outcome = {**outcome, "msg": f"{outcome.get('msg', '')} (and it could not be journaled "
                                                         f"in {run_dir}: {exc})"}
                        failed_batches += 1
                        if retry:
                            continue
                    if cleanup is not None:
                        outcome = {**outcome, "msg": f"{outcome.get('msg', '')} ({cleanup})"}
                    outcome["points"] = summaries
                    outcome["samples_written"] = written
                    outcome["failed_batches"] = failed_batches
                    return {**result, **outcome}
                try:
                    written += samples.append(METRICS[self.METRIC].build_records(key, outcome, batch))
                    if isinstance(outcome.get("probe"), Mapping):
                        batches.append([batch_record(key, x, x_unit, batch, outcome["probe"])])
                except OSError as exc:  # a full results disk: stop here, saying so, with what was journaled
                    return {**result, "failed": True, "points": summaries, "samples_written": written,
                            "failed_batches": failed_batches,
                            "msg": f"x={x} {x_unit}: cannot journal batch {batch} in {run_dir}: {exc}; the task stops "
                                   f"here, with the {written} sample(s) it journaled before"}
                batch_values = METRICS[self.METRIC].watched_values(outcome)
                quantity = METRICS[self.METRIC].watched_quantity(outcome)
                values.extend(batch_values)
                down = self.judge_batch(values, batch_values, repeat or {}, f"x={x} {x_unit}", measured_here == 0)
                measured_here += 1
                if down:
                    return {**result, "failed": True, "msg": down, "points": summaries,
                            "samples_written": written, "failed_batches": failed_batches}
                batch += 1
                decision = point_rule.decide(values, elapsed_s=round(time.monotonic() - started, 3), batches=batch)
            point = {"run_id": key.run_id, "platform": key.platform, "label": key.label, "metric": self.METRIC,
                     "quantity": quantity, "x": x, "x_unit": x_unit, "mode": key.mode,
                     "host": key.host, "failed_batches": failed_batches,
                     **({"resumed_batches": progress.batches} if progress.batches else {}), **shared}
            try:
                summaries.append(points_journal.append_point(point, point_rule, decision, batches=batch))
            except OSError as exc:
                return {**result, "failed": True, "points": summaries, "samples_written": written,
                        "failed_batches": failed_batches,
                        "msg": f"x={x} {x_unit}: cannot journal the point's summary in {run_dir}: {exc}; its samples "
                               "are journaled, and a resume will summarise it without measuring it again"}
        result.update(changed=False, points=summaries, samples_written=written)
        return result
