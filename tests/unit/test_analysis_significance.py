"""Bootstrap CIs, outlier flags, Mann-Whitney U, effect sizes and Holm against known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from vnflab.stats.bootstrap import quantile_ci, statistic_ci
from vnflab.stats.outliers import outlier_mask, tukey_fences
from vnflab.stats.significance import benjamini_hochberg, exact_p_value, holm, mann_whitney, smallest_p_value
from vnflab.stats.summary import summarize


def test_bootstrap_median_ci_covers_the_true_median_about_95_percent() -> None:
    rng = np.random.default_rng(7)
    draws = 1000
    covered = 0
    for _ in range(draws):
        low, high = quantile_ci(rng.normal(50.0, 5.0, size=40), 0.5)
        covered += low <= 50.0 <= high
    # the percentile bootstrap of a median is slightly conservative or liberal by a few points
    assert 0.90 <= covered / draws <= 0.985


def test_bootstrap_is_seeded_and_needs_two_values() -> None:
    values = np.arange(30, dtype=float)
    assert quantile_ci(values, 0.95) == quantile_ci(values.copy(), 0.95)
    low, high = quantile_ci(values, 0.5)
    assert low < 14.5 < high
    assert all(math.isnan(v) for v in quantile_ci([3.0], 0.5))
    ratio = statistic_ci(np.full(10, 20.0) + np.arange(10) * 0.01, np.full(10, 10.0) + np.arange(10) * 0.01)
    assert ratio[0] < 2.0 < ratio[1] + 1e-3 and ratio[1] - ratio[0] < 0.01
    with pytest.raises(ValueError):
        statistic_ci([1.0, 2.0], [1.0, 2.0], how="sum")


def test_summary_carries_bootstrap_cis_and_flags_outliers_without_dropping_them() -> None:
    values = pd.Series([10.0, 11.0, 9.0, 10.5, 9.5, 10.0, 100.0])
    summary = summarize(values)
    assert summary.n_outliers == 1
    assert summary.max == 100.0 and summary.mean == pytest.approx(sum(values) / 7)  # kept
    assert summary.median_ci_low <= summary.median <= summary.median_ci_high
    assert summary.p95_ci_low <= summary.p95_ci_high


def test_tukey_fences_known_answer() -> None:
    data = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # Q1 = 2, Q3 = 4, IQR = 2
    assert tukey_fences(data) == (-1.0, 7.0)
    assert list(outlier_mask([1.0, 2.0, 3.0, 4.0, 5.0, np.nan, 50.0])) == [False] * 6 + [True]


def test_mann_whitney_detects_a_known_difference() -> None:
    rng = np.random.default_rng(11)
    a = rng.normal(100.0, 10.0, size=30)
    b = a + 25.0
    test = mann_whitney(b, a)
    assert test.p_value < 0.001
    assert test.cliffs_delta > 0.7 and test.magnitude == "large"
    assert test.hl_shift == pytest.approx(25.0, abs=5.0)


def test_mann_whitney_does_not_flag_an_identical_pair() -> None:
    values = np.random.default_rng(3).exponential(5.0, size=25)
    same = mann_whitney(values, values.copy())
    assert same.p_value > 0.9 and same.cliffs_delta == 0.0 and same.hl_shift == 0.0
    constant = mann_whitney([4.0, 4.0, 4.0], [4.0, 4.0])
    assert constant.p_value == 1.0 and constant.magnitude == "negligible"


def test_mann_whitney_false_positive_rate_is_about_alpha() -> None:
    rng = np.random.default_rng(2024)
    rejections = sum(
        mann_whitney(rng.lognormal(3.0, 0.5, 20), rng.lognormal(3.0, 0.5, 20)).p_value < 0.05 for _ in range(1000)
    )
    assert 0.02 <= rejections / 1000 <= 0.08


def test_known_effect_sizes_and_empty_sides() -> None:
    below = mann_whitney([1.0, 2.0, 3.0], [10.0, 11.0])
    assert below.cliffs_delta == -1.0 and below.u == 0.0
    assert below.hl_shift == pytest.approx(-8.5)  # median of (1..3) - (10, 11)
    empty = mann_whitney([], [1.0, 2.0])
    assert (empty.n_a, empty.n_b) == (0, 2) and math.isnan(empty.p_value) and empty.magnitude == "n/a"
    assert mann_whitney([1.0, np.nan, 2.0], [3.0]).n_a == 2


def test_holm_known_answer() -> None:
    # sorted 0.01, 0.02, 0.04 -> 3*0.01, max(.03, 2*0.02), max(.04, 1*0.04)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    adjusted = holm([0.5, math.nan, 0.9])
    assert adjusted[0] == 1.0 and math.isnan(adjusted[1]) and adjusted[2] == 1.0


def test_exact_p_value_known_answers() -> None:
    # complete separation of 6 against 6: 2 of the C(12, 6) = 924 relabellings are as extreme
    assert exact_p_value([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]) == pytest.approx(2 / 924)
    assert smallest_p_value(6, 6) == pytest.approx(2 / 924) and smallest_p_value(3, 3) == pytest.approx(0.1)
    # ties are handled exactly: with every value tied but one, only the side holding it matters
    assert exact_p_value([1.0, 1.0, 2.0], [1.0, 1.0, 1.0]) == pytest.approx(1.0)
    tied = mann_whitney([1.0, 1.0, 2.0, 2.0], [2.0, 3.0, 3.0, 3.0])
    assert tied.method == "exact" and 0 < tied.p_value < 1
    # without ties the exact test is scipy's exact Mann-Whitney
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 7), rng.normal(1, 1, 5)
    expected = scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue
    assert mann_whitney(a, b).p_value == pytest.approx(expected)
    assert mann_whitney(rng.normal(0, 1, 30), rng.normal(0, 1, 30)).method == "asymptotic"


def test_benjamini_hochberg_known_answer() -> None:
    adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.5, math.nan])
    # sorted 0.01, 0.03, 0.04, 0.5 -> p * 4 / rank = 0.04, 0.06, 0.0533, 0.5; then the running minimum from the top
    assert adjusted[:4] == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5]) and math.isnan(adjusted[4])
