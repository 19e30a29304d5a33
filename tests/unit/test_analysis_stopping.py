"""Stopping rule of docs/design.md (vnflab.measure.stopping)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vnflab.measure.stopping import DEFAULT_MIN_SAMPLES, StoppingRule, rule_for, samples_needed, t_half_width


def run_until_done(rule: StoppingRule, rng: np.random.Generator, mean: float, sd: float, batch: int = 1):
    values: list[float | None] = []
    while True:
        values.extend(rng.normal(mean, sd, size=batch).tolist())
        decision = rule.decide(values)
        if decision.done:
            return decision


def test_converges_on_low_variance_data() -> None:
    rule = StoppingRule(min_samples=3, max_samples=50)
    decision = run_until_done(rule, np.random.default_rng(1), mean=100.0, sd=1.0)
    assert decision.reason == "converged"
    assert decision.done
    assert decision.n == 3  # t(0.975, 2) * 1 / sqrt(3) ~ 2.5 << 5
    assert decision.half_width is not None and decision.mean is not None
    assert decision.half_width <= 0.05 * decision.mean


def test_hits_cap_on_high_variance_data() -> None:
    rule = StoppingRule(min_samples=3, max_samples=30)
    decision = run_until_done(rule, np.random.default_rng(2), mean=100.0, sd=80.0)
    assert decision.reason == "cap"
    assert decision.done
    assert decision.n == 30
    assert decision.half_width is not None and decision.half_width > 5.0


def test_respects_min_samples_even_when_already_tight() -> None:
    rule = StoppingRule(min_samples=20, max_samples=100)
    for n in range(1, 20):
        assert rule.decide([5.0] * n).reason == "need_more"
    decision = rule.decide([5.0] * 20)
    assert (decision.reason, decision.n, decision.mean, decision.half_width) == ("converged", 20, 5.0, 0.0)


def test_converges_only_when_half_width_is_within_bound() -> None:
    rule = StoppingRule(min_samples=3, max_samples=100, rel_half_width=0.05)
    values = [90.0, 110.0, 100.0]  # sd 10, hw = 4.303 * 10 / sqrt(3) = 24.8 > 5
    decision = rule.decide(values)
    assert decision.reason == "need_more"
    expected_hw = 4.302652729749464 * 10.0 / math.sqrt(3)
    assert decision.half_width == pytest.approx(expected_hw, rel=1e-9)
    assert decision.rel_half_width == pytest.approx(expected_hw / 100.0)


def test_lost_samples_count_towards_n_and_cap_but_not_mean() -> None:
    rule = StoppingRule(min_samples=3, max_samples=10)
    decision = rule.decide([10.0, None, 10.0, 10.0])
    assert (decision.reason, decision.n, decision.n_ok, decision.n_lost, decision.mean) == (
        "converged", 4, 3, 1, 10.0,
    )
    # three samples but only two values: min_samples counts values, so not yet
    assert rule.decide([10.0, None, 10.0]).reason == "need_more"
    # NaN is treated as lost
    assert rule.decide([10.0, math.nan, 10.0]).n_lost == 1


def test_all_lost_stops_at_cap() -> None:
    rule = StoppingRule(min_samples=3, max_samples=5)
    early = rule.decide([None] * 4)
    assert (early.reason, early.done, early.mean, early.half_width) == ("need_more", False, None, None)
    final = rule.decide([None] * 5)
    assert (final.reason, final.done, final.n, final.n_lost, final.mean) == ("cap", True, 5, 5, None)


def test_single_value_cannot_converge() -> None:
    rule = StoppingRule(min_samples=1, max_samples=3)
    assert rule.decide([1.0]).reason == "need_more"
    assert rule.decide([1.0]).half_width is None
    assert rule.decide([1.0, 1.0]).reason == "converged"


def test_negative_mean_uses_absolute_value() -> None:
    rule = StoppingRule(min_samples=3, max_samples=10)
    assert rule.decide([-100.0, -100.5, -99.5]).reason == "converged"


def test_converged_wins_over_cap_at_the_same_n() -> None:
    assert StoppingRule(min_samples=3, max_samples=3).decide([1.0, 1.0, 1.0]).reason == "converged"
    assert StoppingRule(min_samples=3, max_samples=3).decide([1.0, 5.0, 9.0]).reason == "cap"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_samples": 0, "max_samples": 5},
        {"min_samples": 5, "max_samples": 4},
        {"min_samples": 3, "max_samples": 5, "rel_half_width": 0.0},
        {"min_samples": 3, "max_samples": 5, "confidence": 1.0},
    ],
)
def test_invalid_rules_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        StoppingRule(**kwargs)  # type: ignore[arg-type]


def test_design_defaults() -> None:
    assert DEFAULT_MIN_SAMPLES == {"response": 20, "boot": 3, "memory": 3}
    rule = rule_for("response", max_samples=200)
    assert (rule.min_samples, rule.max_samples, rule.rel_half_width, rule.confidence) == (20, 200, 0.05, 0.95)
    with pytest.raises(ValueError):
        rule_for("throughput", max_samples=10)


def test_decision_and_rule_serialise_for_points_journal() -> None:
    rule = StoppingRule(3, 10)
    record = rule.decide([1.0, 1.0, 1.0]).as_dict()
    assert record["reason"] == "converged" and record["rel_half_width"] == 0.0
    assert rule.as_dict() == {"min_samples": 3, "max_samples": 10, "rel_half_width": 0.05, "confidence": 0.95}


def test_t_half_width_needs_two_values() -> None:
    assert math.isnan(t_half_width(1.0, 1, 0.95))
    assert t_half_width(2.0, 4, 0.95) == pytest.approx(3.182446305284263 * 2.0 / 2.0)


def test_samples_needed_known_answers() -> None:
    # t(0.975, n-1) * 10 / sqrt(n) <= 5: n = 18 gives 2.110 * 10 / 4.243 = 4.97, n = 17 gives 5.14
    assert samples_needed(10.0, 100.0, 0.05, 0.95) == 18
    assert t_half_width(10.0, 18, 0.95) <= 5.0 < t_half_width(10.0, 17, 0.95)
    assert samples_needed(0.0, 100.0, 0.05, 0.95) == 2
    assert samples_needed(10.0, 0.0, 0.05, 0.95) is None and samples_needed(math.nan, 1.0, 0.05, 0.95) is None


def test_pilot_then_as_many_as_the_ci_needs() -> None:
    # sd 10 on a mean of 100 needs about 18 values; the pilot of 6 does not stop it, the CI does
    rule = StoppingRule(min_samples=6, max_samples=200, time_budget_s=1000.0)
    rng = np.random.default_rng(3)
    values: list[float | None] = []
    while True:
        values.append(float(rng.normal(100.0, 10.0)))
        decision = rule.decide(values, elapsed_s=len(values) * 1.0)
        if len(values) == 6:
            assert decision.reason == "need_more" and decision.needed is not None and decision.needed > 6
        if decision.done:
            break
    assert decision.reason == "converged" and 10 <= decision.n <= 40
    assert decision.needed is not None and decision.needed <= decision.n


def test_budget_stops_after_the_pilot_and_says_how_many_were_needed() -> None:
    rule = StoppingRule(min_samples=6, max_samples=200, time_budget_s=20.0)
    noisy = [100.0, 160.0, 60.0, 140.0, 80.0, 120.0]
    # the pilot always completes, even past the budget
    assert rule.decide(noisy[:5], elapsed_s=50.0).reason == "need_more"
    decision = rule.decide(noisy, elapsed_s=18.0)  # 3 s per batch: the 7th would end at 21 s > 20 s
    assert decision.reason == "budget" and decision.done and decision.elapsed_s == 18.0
    assert decision.needed is not None and decision.needed > 50
    assert rule.decide(noisy, elapsed_s=16.0).reason == "need_more"  # the 7th would end at 18.7 s
    # batches of 20 samples: the budget is judged per batch, not per sample
    assert rule.decide(noisy * 4, elapsed_s=12.0, batches=4).reason == "need_more"
    assert rule.decide(noisy * 4, elapsed_s=18.0, batches=4).reason == "budget"
    with pytest.raises(ValueError, match="time_budget_s"):
        StoppingRule(min_samples=3, max_samples=6, time_budget_s=0.0)
