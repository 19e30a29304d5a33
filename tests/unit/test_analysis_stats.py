"""Summary statistics (vnflab.stats.summary) against known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vnflab.stats.summary import SUMMARY_FIELDS, mean_ci, summarize


def test_known_mean_median_percentiles() -> None:
    summary = summarize(pd.Series(np.arange(1, 101, dtype=float)))
    assert (summary.n, summary.n_lost, summary.n_ok) == (100, 0, 100)
    assert summary.mean == 50.5
    assert summary.median == 50.5
    assert (summary.min, summary.max) == (1.0, 100.0)
    # linear interpolation between order statistics: 1 + q * 99
    assert summary.p95 == pytest.approx(95.05)
    assert summary.p99 == pytest.approx(99.01)
    assert summary.stdev == pytest.approx(math.sqrt(100 * 101 / 12))  # sample sd of 1..100


def test_known_ci() -> None:
    summary = summarize(pd.Series([8.0, 10.0, 12.0]))
    half = 4.302652729749464 * 2.0 / math.sqrt(3)
    assert summary.ci_low == pytest.approx(10.0 - half)
    assert summary.ci_high == pytest.approx(10.0 + half)
    assert mean_ci(pd.Series([8.0, 10.0, 12.0])) == pytest.approx((10.0 - half, 10.0 + half))


def test_lost_values_are_counted_not_averaged() -> None:
    summary = summarize(pd.Series([1.0, None, 3.0, np.nan], dtype="float64"))
    assert (summary.n, summary.n_lost, summary.mean, summary.median) == (4, 2, 2.0, 2.0)
    object_series = summarize(pd.Series([1.0, None, 3.0], dtype="object"))
    assert (object_series.n, object_series.n_lost, object_series.mean) == (3, 1, 2.0)


def test_degenerate_points() -> None:
    single = summarize(pd.Series([7.0]))
    assert (single.mean, single.median, single.p99) == (7.0, 7.0, 7.0)
    assert math.isnan(single.stdev) and math.isnan(single.ci_low) and math.isnan(single.ci_high)
    lost = summarize(pd.Series([None, None], dtype="float64"))
    assert (lost.n, lost.n_lost) == (2, 2)
    assert all(math.isnan(getattr(lost, f)) for f in SUMMARY_FIELDS if f not in ("n", "n_lost", "n_outliers"))
    assert lost.n_outliers == 0
    empty = summarize(pd.Series([], dtype="float64"))
    assert (empty.n, empty.n_lost) == (0, 0)


def test_as_dict_follows_field_order() -> None:
    assert tuple(summarize(pd.Series([1.0, 2.0])).as_dict()) == SUMMARY_FIELDS


def test_ci_covers_true_mean_about_95_percent() -> None:
    rng = np.random.default_rng(20240611)
    true_mean = 10.0
    draws = 1000
    covered = 0
    for _ in range(draws):
        low, high = mean_ci(pd.Series(rng.normal(true_mean, 2.0, size=10)))
        covered += low <= true_mean <= high
    assert 0.92 <= covered / draws <= 0.98
