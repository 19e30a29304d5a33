"""Controller loop of the probe modules (vnflab.measure.ansible_measure + action_plugins/vnf_*.py).

The ActionModule is built like ansible-core's own unit tests build ActionBase instances (mocked task,
connection, play context, loader and templar); ``_execute_module`` is replaced by a script of batches
that also checks, each time it is called, what the journal already holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ansible.errors import AnsibleActionFail
from plugin_harness import LABEL, TASK_VARS, lines, load_action, make_action
from scipy import stats

from vnflab.measure.schema import validate_sample

response_action = load_action("vnf_response_time")
boot_action = load_action("vnf_boot_time")
memory_action = load_action("vnf_memory")


class Script:
    """Stands in for ActionBase._execute_module: returns scripted outcomes, checks the journal each call."""

    def __init__(self, outcomes: Iterator[dict[str, Any]], run_dir: Path | None,
                 records_per_outcome: Callable[[dict[str, Any]], int]) -> None:
        self.outcomes = outcomes
        self.run_dir = run_dir
        self.records_per_outcome = records_per_outcome
        self.calls: list[dict[str, Any]] = []
        self.expected_lines = 0

    def __call__(self, module_name: str | None = None, module_args: dict[str, Any] | None = None,
                 task_vars: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        if self.run_dir is not None:
            # every earlier batch must be in samples.jsonl before the next one is requested
            assert len(lines(self.run_dir / "samples.jsonl")) == self.expected_lines
        self.calls.append({"module_name": module_name, "module_args": dict(module_args or {}),
                           "task_vars": task_vars})
        outcome = next(self.outcomes)
        if not outcome.get("failed") and (module_args or {}).get("state") != "absent":  # a cleanup measures nothing
            self.expected_lines += self.records_per_outcome(outcome)
        return outcome


def journal(run_dir: Path) -> dict[str, Any]:
    return {"path": str(run_dir), "run_id": run_dir.name, "platform": "docker", "label": LABEL}


def t_half_width(values: list[float], confidence: float = 0.95) -> float:
    """Independent Student-t half-width, for the expected stopping points below."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)


# ---------------------------------------------------------------- response


def rtt_outcome(size: int, proxy: list[float | None], direct: list[float | None] | None = None) -> dict[str, Any]:
    direct = direct if direct is not None else [v / 2 if v is not None else None for v in proxy]
    return {"changed": False, "mode": "icmp", "timestamping": "tx=kernel-software rx=kernel-software",
            "results": [{"path": "proxy", "size": size, "rtt_us": proxy, "lost": proxy.count(None)},
                        {"path": "direct", "size": size, "rtt_us": direct, "lost": direct.count(None)}]}


def rtt_records(outcome: dict[str, Any]) -> int:
    return sum(len(entry["rtt_us"]) for entry in outcome["results"])


def response_args(run_dir: Path, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "paths": {"proxy": "198.18.11.1", "direct": "198.18.0.2"}, "sizes": [64], "mode": "icmp",
        "repeat": {"min_samples": 6, "max_samples": 12, "rel_half_width": 0.05, "batch": 3},
        "journal": journal(run_dir),
    }
    args.update(overrides)
    return args


def test_response_batches_repeat_until_converged(tmp_path: Path) -> None:
    run_dir = tmp_path / "run-1"
    run_dir.mkdir()
    batches = [[100.0, 101.0, 99.0], [100.0, 101.0, 99.0], [100.0, 100.0, 100.0]]
    # independent expectation: after batch 1, n=3 < min 6; after batch 2, n=6 and the half-width is tight
    assert t_half_width(batches[0] + batches[1]) <= 0.05 * 100.0
    script = Script(iter(rtt_outcome(64, b) for b in batches), run_dir, rtt_records)
    plugin = make_action(response_action, "vnf_response_time", response_args(run_dir))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)

    assert len(script.calls) == 2
    for call in script.calls:
        assert call["module_name"] == "vnf_response_time"
        assert call["module_args"]["samples"] == 3  # repeat.batch
        assert call["module_args"]["sizes"] == [64]
        assert "repeat" not in call["module_args"] and "journal" not in call["module_args"]
        assert call["task_vars"] == TASK_VARS
    samples = lines(run_dir / "samples.jsonl")
    assert len(samples) == 12 == result["samples_written"]
    assert all(validate_sample(record) == [] for record in samples)
    assert [r["repetition"] for r in samples if r["quantity"] == "rtt_proxy_us"] == [0, 0, 0, 1, 1, 1]
    assert {(r["host"], r["mode"], r["x"], r["run_id"]) for r in samples} == {("host-a", "icmp", 64, "run-1")}
    points = lines(run_dir / "points.jsonl")
    assert len(points) == 1
    point = points[0]
    assert (point["reason"], point["batches"], point["n"], point["x"], point["x_unit"]) == ("converged", 2, 6, 64, "B")
    assert (point["metric"], point["quantity"], point["mode"]) == ("response", "rtt_proxy_us", "icmp")
    assert point["mean"] == pytest.approx(100.0)
    assert point["half_width"] == pytest.approx(t_half_width(batches[0] + batches[1]))
    assert (point["rule_min_samples"], point["rule_max_samples"]) == (6, 12)
    assert result["points"] == points
    assert result["changed"] is False and not result.get("failed")


def test_response_batches_stop_at_the_cap(tmp_path: Path) -> None:
    noisy = [[10.0, 500.0, 1000.0], [20.0, 900.0, 50.0], [5.0, 700.0, 300.0], [1.0, 2.0, 3000.0],
             [1.0, 1.0, 1.0]]
    script = Script(iter(rtt_outcome(64, b) for b in noisy), tmp_path, rtt_records)
    plugin = make_action(response_action, "ansible.legacy.vnf_response_time", response_args(tmp_path))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert len(script.calls) == 4  # 12 samples = max_samples
    assert {call["module_name"] for call in script.calls} == {"vnf_response_time"}
    (point,) = lines(tmp_path / "points.jsonl")
    assert (point["reason"], point["n"], point["batches"]) == ("cap", 12, 4)
    assert point["half_width"] > 0.05 * point["mean"]
    assert result["samples_written"] == len(lines(tmp_path / "samples.jsonl")) == 24


def test_response_lost_samples_are_journaled_and_count_to_the_cap(tmp_path: Path) -> None:
    """Losses the point's threshold allows (here 90%) are journaled as lost samples and count to the cap."""
    outcomes = [rtt_outcome(64, batch) for batch in ([None, 80.0, None], [80.0, None, 90.0], [None, 85.0, None],
                                                     [70.0, None, 100.0])]
    script = Script(iter(outcomes), tmp_path, rtt_records)
    repeat = {"min_samples": 6, "max_samples": 12, "rel_half_width": 0.05, "batch": 3, "max_loss_fraction": 0.9}
    plugin = make_action(response_action, "vnf_response_time", response_args(tmp_path, repeat=repeat))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert not result.get("failed"), result
    samples = lines(tmp_path / "samples.jsonl")
    assert len(samples) == 24
    proxy = [r for r in samples if r["quantity"] == "rtt_proxy_us"]
    assert [r["status"] for r in proxy].count("lost") == 6
    (point,) = lines(tmp_path / "points.jsonl")
    assert (point["reason"], point["n"], point["n_lost"]) == ("cap", 12, 6)


@pytest.mark.parametrize(("threshold", "fails"), [(None, True), (0.05, True), (0.2, False)])
def test_a_point_that_loses_more_than_its_threshold_fails_naming_it_at_that_batch(
        tmp_path: Path, threshold: float | None, fails: bool) -> None:
    """Judged on every batch, not only the first: the second batch brings the point to 1 lost of 6 (16.7%)."""
    outcomes = [rtt_outcome(64, [80.0, 80.0, 80.0]), rtt_outcome(64, [80.0, None, 80.0])]
    outcomes += [rtt_outcome(64, [80.0, 80.0, 80.0])] * 4
    script = Script(iter(outcomes), tmp_path, rtt_records)
    repeat: dict[str, Any] = {"min_samples": 9, "max_samples": 12, "rel_half_width": 0.05, "batch": 3}
    if threshold is not None:
        repeat["max_loss_fraction"] = threshold
    plugin = make_action(response_action, "vnf_response_time", response_args(tmp_path, repeat=repeat))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert bool(result.get("failed")) is fails
    if fails:
        assert len(script.calls) == 2
        assert result["msg"].startswith("x=64 B: 1 of 6 requests through the proxy lost (16.7%), more than "
                                        "vnflab_repeat.response.max_loss_fraction (5%)"), result["msg"]
        assert len(lines(tmp_path / "samples.jsonl")) == 12 == result["samples_written"]
    else:
        assert len(script.calls) > 2  # measured on past the lossy batch, to the rule's end


def test_a_proxy_that_dies_mid_run_fails_its_path_at_its_next_batch(tmp_path: Path) -> None:
    """The first size converges; the proxy dies; the next size's first batch gets no reply: the task fails there,
    not after every later size ran to its cap of timeouts."""
    outcomes = [rtt_outcome(64, [80.0, 80.0, 80.0])] * 2 + [rtt_outcome(1472, [None, None, None], [5.0] * 3)] * 10
    script = Script(iter(outcomes), tmp_path, rtt_records)
    plugin = make_action(response_action, "vnf_response_time", response_args(tmp_path, sizes=[64, 1472, 8192]))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert len(script.calls) == 3
    assert result["failed"]
    assert result["msg"].startswith("x=1472 B: no reply through the proxy to any of a batch of 3 requests"), result
    assert [point["x"] for point in result["points"]] == [64]


def test_response_stops_when_the_first_batch_gets_no_reply_through_the_proxy(tmp_path: Path) -> None:
    """A proxy whose server failed earlier in the run: one batch, journaled, then the task fails naming why
    (every size to its cap of timeouts took over half an hour in a run)."""
    script = Script(iter([rtt_outcome(64, [None, None, None], direct=[5.0, 5.0, 5.0])] * 8), tmp_path, rtt_records)
    plugin = make_action(response_action, "vnf_response_time", response_args(tmp_path, sizes=[64, 1472]))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert len(script.calls) == 1
    assert result["failed"] and "x=64 B: no reply through the proxy to any of the first 3 requests" in result["msg"]
    samples = lines(tmp_path / "samples.jsonl")
    assert len(samples) == 6 == result["samples_written"]
    assert not (tmp_path / "points.jsonl").exists() or lines(tmp_path / "points.jsonl") == []



def test_response_one_point_per_size(tmp_path: Path) -> None:
    outcomes = iter([rtt_outcome(64, [50.0] * 3), rtt_outcome(64, [50.0] * 3),
                     rtt_outcome(1472, [80.0] * 3), rtt_outcome(1472, [80.0] * 3)])
    script = Script(outcomes, tmp_path, rtt_records)
    plugin = make_action(response_action, "vnf_response_time", response_args(tmp_path, sizes=[64, 1472]))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert [call["module_args"]["sizes"] for call in script.calls] == [[64], [64], [1472], [1472]]
    points = lines(tmp_path / "points.jsonl")
    assert [(p["x"], p["reason"], p["batches"], p["mean"]) for p in points] == [
        (64, "converged", 2, 50.0), (1472, "converged", 2, 80.0)]
    assert [p["x"] for p in result["points"]] == [64, 1472]


def test_response_batch_size_defaults_to_samples(tmp_path: Path) -> None:
    script = Script(iter([rtt_outcome(64, [1.0] * 7)]), tmp_path, rtt_records)
    args = response_args(tmp_path, samples=7, repeat={"min_samples": 2, "max_samples": 7})
    plugin = make_action(response_action, "vnf_response_time", args)
    plugin._execute_module = script  # type: ignore[method-assign]
    plugin.run(task_vars=TASK_VARS)
    assert [call["module_args"]["samples"] for call in script.calls] == [7]


def test_response_batch_size_defaults_to_the_metrics_batch(tmp_path: Path) -> None:
    script = Script(iter([rtt_outcome(64, [1.0] * 20)]), tmp_path, rtt_records)
    plugin = make_action(response_action, "vnf_response_time",
                         response_args(tmp_path, repeat={"min_samples": 2, "max_samples": 20}))
    plugin._execute_module = script  # type: ignore[method-assign]
    plugin.run(task_vars=TASK_VARS)
    assert [call["module_args"]["samples"] for call in script.calls] == [20]


def test_samples_and_repeat_batch_that_disagree_fail_before_any_batch(tmp_path: Path) -> None:
    script = Script(iter([]), tmp_path, rtt_records)
    plugin = make_action(response_action, "vnf_response_time", response_args(tmp_path, samples=7))  # batch 3
    plugin._execute_module = script  # type: ignore[method-assign]
    with pytest.raises(AnsibleActionFail, match=r"samples \(7\) and repeat.batch \(3\) are one setting"):
        plugin.run(task_vars=TASK_VARS)
    assert script.calls == []
    assert not (tmp_path / "samples.jsonl").exists()


@pytest.mark.parametrize("batch", [1, "1", None])
def test_a_boot_batch_of_one_or_none_is_the_rule_without_it(tmp_path: Path, batch: object) -> None:
    repeat = {"min_samples": 2, "max_samples": 2, **({} if batch is None else {"batch": batch})}
    script = Script(iter([boot_outcome(1000.0, [900.0, 1000.0])] * 2), tmp_path, lambda o: 1 + len(o["boot_ms"]))
    plugin = make_action(boot_action, "vnf_boot_time", boot_args(tmp_path, repeat=repeat))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert not result.get("failed") and len(script.calls) == 2
    assert "batch" not in script.calls[0]["module_args"]


def test_a_boot_batch_other_than_one_is_refused_before_any_batch(tmp_path: Path) -> None:
    script = Script(iter([]), tmp_path, lambda o: 0)
    args = boot_args(tmp_path, repeat={"min_samples": 2, "max_samples": 2, "batch": 4})
    plugin = make_action(boot_action, "vnf_boot_time", args)
    plugin._execute_module = script  # type: ignore[method-assign]
    with pytest.raises(AnsibleActionFail, match="boot measures one value per batch .* applies to response"):
        plugin.run(task_vars=TASK_VARS)
    assert script.calls == []


def test_failed_module_result_stops_and_keeps_written_samples(tmp_path: Path) -> None:
    failure = {"failed": True, "msg": "probe failed: [Errno 1] Operation not permitted"}
    outcomes = iter([rtt_outcome(64, [50.0] * 3), rtt_outcome(64, [50.0] * 3),  # point 64 done
                     rtt_outcome(1472, [70.0, 90.0, 110.0]), failure,
                     rtt_outcome(1472, [1.0] * 3)])  # never requested
    script = Script(outcomes, tmp_path, rtt_records)
    plugin = make_action(response_action, "vnf_response_time", response_args(tmp_path, sizes=[64, 1472, 9000]))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert len(script.calls) == 4
    assert result["failed"] is True
    assert result["msg"] == failure["msg"]
    assert result["samples_written"] == 18
    samples = lines(tmp_path / "samples.jsonl")
    assert len(samples) == 18
    assert [r["value"] for r in samples if r["x"] == 1472 and r["quantity"] == "rtt_proxy_us"] == [70.0, 90.0, 110.0]
    points = lines(tmp_path / "points.jsonl")
    assert [p["x"] for p in points] == [64]
    assert result["points"] == points


@pytest.mark.parametrize("check_mode", [True, False])
def test_check_mode_or_missing_journal_runs_the_module_once(tmp_path: Path, check_mode: bool) -> None:
    args = response_args(tmp_path)
    if not check_mode:
        del args["journal"]
    module_result = {"changed": False, "mode": "icmp", "msg": "check mode: parameters valid, nothing sent"}
    script = Script(iter([module_result]), None, lambda outcome: 0)
    plugin = make_action(response_action, "vnf_response_time", args, check_mode=check_mode)
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    (call,) = script.calls
    assert call["module_args"] == {"paths": args["paths"], "sizes": [64], "mode": "icmp"}
    assert result == module_result
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("missing", ["path", "run_id", "platform", "label"])
def test_incomplete_journal_fails_before_measuring(tmp_path: Path, missing: str) -> None:
    args = response_args(tmp_path)
    args["journal"] = {k: v for k, v in journal(tmp_path).items() if k != missing}
    script = Script(iter([]), tmp_path, rtt_records)
    plugin = make_action(response_action, "vnf_response_time", args)
    plugin._execute_module = script  # type: ignore[method-assign]
    with pytest.raises(AnsibleActionFail, match=f"journal.{missing} is required"):
        plugin.run(task_vars=TASK_VARS)
    assert script.calls == []


@pytest.mark.parametrize("repeat", [{"min_samples": 5}, {"min_samples": 5, "max_samples": 2},
                                    {"min_samples": "many", "max_samples": 9},
                                    {"min_samples": 1, "max_samples": 2, "time_budget_s": 0},
                                    {"min_samples": 1, "max_samples": 2, "time_budget_s": "soon"}])
def test_bad_repeat_fails_before_measuring(tmp_path: Path, repeat: dict[str, Any]) -> None:
    script = Script(iter([]), tmp_path, rtt_records)
    plugin = make_action(response_action, "vnf_response_time", response_args(tmp_path, repeat=repeat))
    plugin._execute_module = script  # type: ignore[method-assign]
    with pytest.raises(AnsibleActionFail, match="repeat: "):
        plugin.run(task_vars=TASK_VARS)
    assert script.calls == []


# ---------------------------------------------------------------- boot and memory


def boot_outcome(all_ms: float | None, boot_ms: list[float | None]) -> dict[str, Any]:
    return {"changed": False, "count": len(boot_ms), "label": LABEL, "all_ms": all_ms, "boot_ms": boot_ms}


def boot_args(run_dir: Path, repeat: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"driver": {"name": "docker"}, "count": "2",  # templated loop items may arrive as strings
            "repeat": repeat or {"min_samples": 3, "max_samples": 6}, "journal": journal(run_dir)}


def test_boot_repeats_until_converged(tmp_path: Path) -> None:
    alls = [1000.0, 1010.0, 990.0, 5000.0]
    assert t_half_width(alls[:3]) <= 0.05 * 1000.0  # converged at n = min_samples = 3
    outcomes = iter(boot_outcome(a, [a - 100.0, a]) for a in alls)
    script = Script(outcomes, tmp_path, lambda outcome: 1 + len(outcome["boot_ms"]))
    plugin = make_action(boot_action, "vnf_boot_time", boot_args(tmp_path))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert len(script.calls) == 3
    assert all(call["module_args"] == {"driver": {"name": "docker"}, "count": "2"} for call in script.calls)
    samples = lines(tmp_path / "samples.jsonl")
    assert len(samples) == 9 == result["samples_written"]
    assert all(validate_sample(record) == [] for record in samples)
    assert [(r["repetition"], r["value"]) for r in samples if r["quantity"] == "all_ms"] == [
        (0, 1000.0), (1, 1010.0), (2, 990.0)]
    assert {(r["x"], r["x_unit"], r["mode"], r["metric"]) for r in samples} == {(2, "instances", None, "boot")}
    (point,) = lines(tmp_path / "points.jsonl")
    assert (point["reason"], point["batches"], point["quantity"], point["x"]) == ("converged", 3, "all_ms", 2)
    assert point["mean"] == pytest.approx(1000.0)


def test_boot_points_whose_instances_never_answer_stop_at_the_cap(tmp_path: Path) -> None:
    outcomes = iter([boot_outcome(None, [400.0, None])] * 6)
    script = Script(outcomes, tmp_path, lambda outcome: 3)
    plugin = make_action(boot_action, "vnf_boot_time", boot_args(tmp_path))
    plugin._execute_module = script  # type: ignore[method-assign]
    plugin.run(task_vars=TASK_VARS)
    assert len(script.calls) == 6
    (point,) = lines(tmp_path / "points.jsonl")
    assert (point["reason"], point["n"], point["n_lost"]) == ("cap", 6, 6)
    samples = lines(tmp_path / "samples.jsonl")
    assert [r["status"] for r in samples if r["quantity"] == "all_ms"] == ["lost"] * 6
    assert [r["value"] for r in samples if r["quantity"] == "instance_ms"] == [400.0, None] * 6


def test_each_batch_probe_is_journaled_with_its_point(tmp_path: Path) -> None:
    probes = [{"ended": "deadline", "elapsed_s": 16.2, "clock_glitches": 0},
              {"ended": "all answered", "elapsed_s": 14.0, "clock_glitches": 1}]
    outcomes = iter([{**boot_outcome(None, [None, None]), "probe": probes[0]},
                     {**boot_outcome(1000.0, [900.0, 1000.0]), "probe": probes[1]},
                     boot_outcome(1000.0, [900.0, 1000.0])])  # a module without a probe adds no line
    script = Script(outcomes, tmp_path, lambda outcome: 3)
    plugin = make_action(boot_action, "vnf_boot_time", boot_args(tmp_path, {"min_samples": 3, "max_samples": 3}))
    plugin._execute_module = script  # type: ignore[method-assign]
    plugin.run(task_vars=TASK_VARS)
    batches = lines(tmp_path / "batches.jsonl")
    assert [(b["batch"], b["probe"]) for b in batches] == [(0, probes[0]), (1, probes[1])]
    assert {(b["platform"], b["metric"], b["x"], b["x_unit"], b["host"]) for b in batches} == {
        ("docker", "boot", 2, "instances", "host-a")}


def test_without_probes_there_is_no_batches_journal(tmp_path: Path) -> None:
    outcomes = iter([boot_outcome(1000.0, [900.0, 1000.0])])
    plugin = make_action(boot_action, "vnf_boot_time", boot_args(tmp_path, {"min_samples": 1, "max_samples": 1}))
    plugin._execute_module = Script(outcomes, tmp_path, lambda outcome: 3)  # type: ignore[method-assign]
    plugin.run(task_vars=TASK_VARS)
    assert not (tmp_path / "batches.jsonl").exists()


@pytest.mark.parametrize(("pss", "quantity", "mean", "reason"), [
    ([2.50, 2.51, 2.49], "exact_used_mb", 2.5, "converged"),  # the exact figure converges where MemAvailable cannot
    ([None, None, None], "server_used_mb", 71.0, "cap"),  # no per-instance figure: the server's delta
])
def test_memory_point(tmp_path: Path, pss: list[float | None], quantity: str, mean: float, reason: str) -> None:
    used = [40.0, 71.0, 102.0]
    outcomes = iter({"changed": False, "count": 1, "label": LABEL, "server_used_mb": u,
                     "available_before_mb": 1000.0, "available_after_mb": 1000.0 - u,
                     "available_restored_mb": 1000.0,
                     "instances": [{"name": "vnflab-docker-0", "pss_mb": p, "cgroup_mb": None if p is None else 1.0,
                                    "hypervisor_mb": None}]} for u, p in zip(used, pss, strict=True))
    script = Script(outcomes, tmp_path, lambda outcome: 4 + 2 * (outcome["instances"][0]["pss_mb"] is not None))
    args = {"driver": {}, "count": 1, "repeat": {"min_samples": 3, "max_samples": 3},
            "journal": journal(tmp_path)}
    plugin = make_action(memory_action, "vnf_memory", args)
    plugin._execute_module = script  # type: ignore[method-assign]
    plugin.run(task_vars=TASK_VARS)
    (point,) = lines(tmp_path / "points.jsonl")
    assert (point["quantity"], point["n"], point["mean"], point["reason"]) == (
        quantity, 3, pytest.approx(mean), reason)
    samples = lines(tmp_path / "samples.jsonl")
    assert len(samples) == (18 if quantity == "exact_used_mb" else 12)
    assert all(validate_sample(record) == [] for record in samples)


def test_without_repeat_one_batch_per_point(tmp_path: Path) -> None:
    script = Script(iter([boot_outcome(None, [None, None])]), tmp_path, lambda outcome: 3)
    args = boot_args(tmp_path)
    del args["repeat"]
    plugin = make_action(boot_action, "vnf_boot_time", args)
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert len(script.calls) == 1
    assert result["points"][0]["reason"] == "cap"


# ---------------------------------------------------------------- batches whose instances failed to start


START_FAILURE = {"failed": True, "start_failed": True,
                 "msg": "driver: 1 of 2 instances failed to start: vnflab-xen-1: xl create vnflab-xen-1 failed"}


def test_a_failed_start_is_journaled_and_the_batch_measured_again(tmp_path: Path) -> None:
    outcomes = iter([boot_outcome(1000.0, [900.0, 1000.0]), START_FAILURE,
                     boot_outcome(1010.0, [910.0, 1010.0]), boot_outcome(990.0, [890.0, 990.0])])
    script = Script(outcomes, tmp_path, lambda outcome: 3)
    plugin = make_action(boot_action, "vnf_boot_time", boot_args(tmp_path))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert "failed" not in result
    assert len(script.calls) == 4
    samples = lines(tmp_path / "samples.jsonl")
    assert [(r["repetition"], r["value"]) for r in samples if r["quantity"] == "all_ms"] == [
        (0, 1000.0), (1, 1010.0), (2, 990.0)]
    (failure,) = lines(tmp_path / "failures.jsonl")
    assert {k: failure[k] for k in ("platform", "label", "metric", "host", "x", "x_unit", "batch", "retried")} == {
        "platform": "docker", "label": LABEL, "metric": "boot", "host": "host-a", "x": 2, "x_unit": "instances",
        "batch": 1, "retried": True}
    assert failure["msg"] == START_FAILURE["msg"]
    (point,) = lines(tmp_path / "points.jsonl")
    assert (point["reason"], point["batches"], point["failed_batches"]) == ("converged", 3, 1)


def test_one_failed_start_too_many_fails_the_task_with_everything_journaled(tmp_path: Path) -> None:
    outcomes = iter([boot_outcome(1000.0, [900.0, 1000.0]), START_FAILURE, START_FAILURE])
    script = Script(outcomes, tmp_path, lambda outcome: 3)
    plugin = make_action(boot_action, "vnf_boot_time",
                         boot_args(tmp_path, {"min_samples": 3, "max_samples": 6, "max_failed_batches": 1}))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert result["failed"] is True
    assert (result["msg"], result["failed_batches"], result["samples_written"]) == (START_FAILURE["msg"], 2, 3)
    assert [f["retried"] for f in lines(tmp_path / "failures.jsonl")] == [True, False]
    assert len(lines(tmp_path / "samples.jsonl")) == 3
    assert lines(tmp_path / "points.jsonl") == []


STOPPED = {"changed": True, "count": 2, "label": LABEL, "stop_errors": []}
MODULE_DIED = {"failed": True, "msg": "MODULE FAILURE\nSee stdout/stderr for the exact error", "rc": 139}


def test_other_failures_are_not_retried(tmp_path: Path) -> None:
    script = Script(iter([{"failed": True, "msg": "driver: bad spec"}, STOPPED]), tmp_path, lambda outcome: 3)
    plugin = make_action(boot_action, "vnf_boot_time", boot_args(tmp_path))
    plugin._execute_module = script  # type: ignore[method-assign]
    assert plugin.run(task_vars=TASK_VARS)["failed"] is True
    assert [call["module_args"].get("state") for call in script.calls] == [None, "absent"]
    assert not (tmp_path / "failures.jsonl").exists()


@pytest.mark.parametrize("action, name", [(boot_action, "vnf_boot_time"), (memory_action, "vnf_memory")])
def test_a_module_that_died_has_its_batch_stopped_before_the_task_fails(tmp_path: Path, action: ModuleType,
                                                                        name: str) -> None:
    script = Script(iter([MODULE_DIED, STOPPED]), tmp_path, lambda outcome: 3)
    plugin = make_action(action, name, boot_args(tmp_path))
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert result["failed"] is True
    assert result["msg"] == MODULE_DIED["msg"] + " (the batch's instances were stopped afterwards)"
    cleanup = script.calls[1]
    assert cleanup["module_name"] == name
    assert {k: cleanup["module_args"][k] for k in ("count", "state")} == {"count": "2", "state": "absent"}
    assert cleanup["module_args"]["driver"] == script.calls[0]["module_args"]["driver"]


@pytest.mark.parametrize("cleanup, said", [
    ({**STOPPED, "stop_errors": ["vnflab-xen-1: xl destroy failed"]},
     "(the batch's instances were stopped afterwards (1 stop command(s) failed, e.g. vnflab-xen-1: xl destroy"
     " failed))"),
    ({"failed": True, "msg": "Failed to connect to the host via ssh"},
     "(stopping the batch's instances afterwards failed too: Failed to connect to the host via ssh)"),
])
def test_a_cleanup_that_went_wrong_is_named_in_the_message(tmp_path: Path, cleanup: dict[str, Any], said: str) -> None:
    script = Script(iter([MODULE_DIED, cleanup]), tmp_path, lambda outcome: 3)
    plugin = make_action(boot_action, "vnf_boot_time", boot_args(tmp_path))
    plugin._execute_module = script  # type: ignore[method-assign]
    assert plugin.run(task_vars=TASK_VARS)["msg"] == f"{MODULE_DIED['msg']} {said}"


def test_a_failed_start_over_the_limit_needs_no_cleanup(tmp_path: Path) -> None:
    script = Script(iter([START_FAILURE]), tmp_path, lambda outcome: 3)
    plugin = make_action(boot_action, "vnf_boot_time",
                         boot_args(tmp_path, {"min_samples": 3, "max_samples": 6, "max_failed_batches": 0}))
    plugin._execute_module = script  # type: ignore[method-assign]
    assert plugin.run(task_vars=TASK_VARS)["msg"] == START_FAILURE["msg"]
    assert len(script.calls) == 1


def test_a_failed_start_whose_stop_failed_is_cleaned_up_before_it_is_measured_again(tmp_path: Path) -> None:
    """A domain its stop left behind made every later start of its name fail ("domain vnflab-xen-0 exists")."""
    failed = {**START_FAILURE, "stop_errors": ["vnflab-xen-0: xenstore does not answer"]}
    outcomes = iter([failed, STOPPED, boot_outcome(1000.0, [900.0, 1000.0]), boot_outcome(1000.0, [900.0, 1000.0]),
                     boot_outcome(1000.0, [900.0, 1000.0])])
    script = Script(outcomes, tmp_path, lambda outcome: 3)
    plugin = make_action(boot_action, "vnf_boot_time", boot_args(tmp_path))
    plugin._execute_module = script  # type: ignore[method-assign]
    assert "failed" not in plugin.run(task_vars=TASK_VARS)
    assert [call["module_args"].get("state") for call in script.calls] == [None, "absent", None, None, None]
    (failure,) = lines(tmp_path / "failures.jsonl")
    assert (failure["retried"], failure["cleanup"]) == (True, "the batch's instances were stopped afterwards")


def test_a_failed_start_that_stopped_its_batch_needs_no_cleanup(tmp_path: Path) -> None:
    outcomes = iter([{**START_FAILURE, "stop_errors": []}] + [boot_outcome(1000.0, [900.0, 1000.0])] * 3)
    script = Script(outcomes, tmp_path, lambda outcome: 3)
    plugin = make_action(boot_action, "vnf_boot_time", boot_args(tmp_path))
    plugin._execute_module = script  # type: ignore[method-assign]
    plugin.run(task_vars=TASK_VARS)
    assert [call["module_args"].get("state") for call in script.calls] == [None] * 4
    assert "cleanup" not in lines(tmp_path / "failures.jsonl")[0]


def test_response_failures_stop_no_instances(tmp_path: Path) -> None:
    failure = {"failed": True, "msg": "probe failed: [Errno 1] Operation not permitted"}
    script = Script(iter([failure]), tmp_path, rtt_records)
    plugin = make_action(response_action, "vnf_response_time", response_args(tmp_path))
    plugin._execute_module = script  # type: ignore[method-assign]
    assert plugin.run(task_vars=TASK_VARS)["msg"] == failure["msg"]
    assert len(script.calls) == 1


@pytest.mark.parametrize("value", [-1, "some", True, 1.5])
def test_bad_max_failed_batches_fails_before_measuring(tmp_path: Path, value: Any) -> None:
    script = Script(iter([]), tmp_path, lambda outcome: 3)
    plugin = make_action(boot_action, "vnf_boot_time",
                         boot_args(tmp_path, {"min_samples": 3, "max_samples": 6, "max_failed_batches": value}))
    plugin._execute_module = script  # type: ignore[method-assign]
    with pytest.raises(AnsibleActionFail, match="repeat.max_failed_batches must be"):
        plugin.run(task_vars=TASK_VARS)
    assert script.calls == []


def test_boot_point_stops_at_its_time_budget_after_the_pilot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # each batch takes 10 s on a patched clock; noisy values never converge; budget 45 s, pilot 3:
    # batches 1-3 (the pilot, 30 s), batch 4 ends at 40 s and a 5th would end at 50 s > 45 s
    import vnflab.measure.ansible_measure as measure

    clock = iter(float(10 * i) for i in range(100))
    monkeypatch.setattr(measure.time, "monotonic", lambda: next(clock))
    alls = [1000.0, 2000.0, 500.0, 1500.0, 800.0, 1900.0]
    outcomes = iter(boot_outcome(a, [a, a]) for a in alls)
    script = Script(outcomes, tmp_path, lambda outcome: 1 + len(outcome["boot_ms"]))
    plugin = make_action(boot_action, "vnf_boot_time", boot_args(
        tmp_path, {"min_samples": 3, "max_samples": 6, "time_budget_s": 45}))
    plugin._execute_module = script  # type: ignore[method-assign]
    plugin.run(task_vars=TASK_VARS)
    assert len(script.calls) == 4
    (point,) = lines(tmp_path / "points.jsonl")
    assert (point["reason"], point["batches"], point["elapsed_s"], point["rule_time_budget_s"]) == (
        "budget", 4, 40.0, 45.0)
    assert point["needed"] > 6


def run_budgeted_boot_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int, points_after: int,
                            repeat: dict[str, Any], batch_s: float = 10.0) -> list[dict[str, Any]]:
    """One boot point (one loop item) on a clock where each batch takes ``batch_s``; values never converge."""
    import vnflab.measure.ansible_measure as measure

    ticks = iter(float(batch_s * i) for i in range(1000))
    monkeypatch.setattr(measure.time, "monotonic", lambda: next(ticks))
    noisy = iter(boot_outcome(a, [a]) for a in [1000.0, 3000.0] * 50)
    script = Script(noisy, tmp_path, lambda outcome: 1 + len(outcome["boot_ms"]))
    script.expected_lines = len(lines(tmp_path / "samples.jsonl"))  # the earlier points' samples
    args = {**boot_args(tmp_path, repeat), "count": count, "points_after": points_after}
    plugin = make_action(boot_action, "vnf_boot_time", args)
    plugin._execute_module = script  # type: ignore[method-assign]
    result = plugin.run(task_vars=TASK_VARS)
    assert "points_after" not in script.calls[0]["module_args"]  # the controller's option, not the module's
    return list(result["points"])


def test_a_server_budget_is_shared_among_the_points_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 120 s for three points, floor 2 of a pilot of 6, 10 s batches: the first point gets 120/3 = 40 s (4 batches),
    # the second (80 s left) 40 s, the third what is left (40 s); a per-point cap of 30 s would bind first
    repeat = {"min_samples": 6, "max_samples": 50, "server_budget_s": 120, "budget_floor": 2}
    first = run_budgeted_boot_point(tmp_path, monkeypatch, 1, 2, repeat)
    second = run_budgeted_boot_point(tmp_path, monkeypatch, 2, 1, repeat)
    third = run_budgeted_boot_point(tmp_path, monkeypatch, 4, 0, {**repeat, "time_budget_s": 30})
    assert [(p["reason"], p["batches"], p["rule_time_budget_s"]) for p in first + second + third] == [
        ("budget", 4, 40.0), ("budget", 4, 40.0), ("budget", 3, 30.0)]
    assert [p["server_spent_before_s"] for p in first + second + third] == [0.0, 40.0, 80.0]
    assert {p["server_budget_s"] for p in first + second + third} == {120.0}
    assert [p["rule_budget_floor"] for p in first + second + third] == [2, 2, 2]


def test_a_spent_server_budget_leaves_a_point_its_floor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repeat = {"min_samples": 6, "max_samples": 50, "server_budget_s": 25, "budget_floor": 2}
    first = run_budgeted_boot_point(tmp_path, monkeypatch, 1, 1, repeat)
    second = run_budgeted_boot_point(tmp_path, monkeypatch, 2, 0, repeat)
    assert [(p["reason"], p["batches"]) for p in first + second] == [("budget", 2), ("budget", 2)]
    assert second[0]["server_spent_before_s"] == 20.0 and second[0]["n_ok"] == 2


def test_without_a_floor_a_server_budget_still_runs_the_whole_pilot(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (point,) = run_budgeted_boot_point(tmp_path, monkeypatch, 1, 3,
                                       {"min_samples": 5, "max_samples": 50, "server_budget_s": 40})
    assert (point["reason"], point["batches"]) == ("budget", 5)
    assert "rule_budget_floor" not in point


def test_points_of_another_platform_or_metric_do_not_spend_this_budget(tmp_path: Path) -> None:
    from vnflab.measure.budget import time_spent_s
    from vnflab.measure.records import PointKey

    key = PointKey(run_id="r", platform="docker", label=LABEL, metric="boot", host="host-a", mode=None)
    rows = [{"run_id": "r", "platform": "docker", "label": LABEL, "metric": "boot", "host": "host-a", "elapsed_s": 7},
            {"run_id": "r", "platform": "kvm", "label": LABEL, "metric": "boot", "host": "host-a", "elapsed_s": 100},
            {"run_id": "r", "platform": "docker", "label": LABEL, "metric": "memory", "host": "host-a",
             "elapsed_s": 100},
            {"run_id": "other", "platform": "docker", "label": LABEL, "metric": "boot", "host": "host-a",
             "elapsed_s": 100}]
    path = tmp_path / "points.jsonl"
    torn = '{"run_id": "r", "elapsed_s": 5'
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + torn, encoding="utf-8")
    assert time_spent_s(path, key) == 7.0


@pytest.mark.parametrize("repeat", [{"min_samples": 3, "max_samples": 6, "server_budget_s": 0},
                                    {"min_samples": 3, "max_samples": 6, "server_budget_s": "soon"},
                                    {"min_samples": 3, "max_samples": 6, "budget_floor": 1},
                                    {"min_samples": 3, "max_samples": 6, "budget_floor": 4}])
def test_bad_budget_settings_fail_before_measuring(tmp_path: Path, repeat: dict[str, Any]) -> None:
    script = Script(iter([]), tmp_path, lambda outcome: 0)
    plugin = make_action(boot_action, "vnf_boot_time", boot_args(tmp_path, repeat))
    plugin._execute_module = script  # type: ignore[method-assign]
    with pytest.raises(AnsibleActionFail):
        plugin.run(task_vars=TASK_VARS)
    assert script.calls == []
