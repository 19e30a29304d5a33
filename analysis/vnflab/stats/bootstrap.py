"""Seeded percentile-bootstrap confidence intervals of quantiles (median, p95, p99).

The generator is seeded with a fixed constant on every call, so the same values always give the
same interval: a report rebuilt from the same samples is identical byte for byte.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

#: Seed of every bootstrap (changing it changes the last digits of bootstrap intervals, nothing else).
BOOTSTRAP_SEED = 20_161_010
#: Resamples per interval.
BOOTSTRAP_RESAMPLES = 2000


def resample_indices(n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> npt.NDArray[np.intp]:
    """``resamples x n`` indices drawn with replacement from ``range(n)`` by a freshly seeded generator."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(resamples, n))


def quantile_ci(values: npt.ArrayLike, q: float, confidence: float = 0.95,
                resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile-bootstrap CI of the ``q`` quantile (linear interpolation, numpy's default).

    ``(nan, nan)`` with fewer than two values (a single value has no sampling distribution).
    """
    data = np.asarray(values, dtype="float64")
    data = data[~np.isnan(data)]
    if data.size < 2:
        return (math.nan, math.nan)
    replicates = np.quantile(data[resample_indices(data.size, resamples, seed)], q, axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return (float(low), float(high))


def statistic_ci(a: npt.ArrayLike, b: npt.ArrayLike, confidence: float = 0.95,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                 how: str = "ratio") -> tuple[float, float]:
    """Percentile-bootstrap CI of ``mean(a) / mean(b)`` (``how="ratio"``) or ``mean(a) - mean(b)``
    (``how="difference"``), resampling the two groups independently."""
    x = np.asarray(a, dtype="float64")
    y = np.asarray(b, dtype="float64")
    x = x[~np.isnan(x)]
    y = y[~np.isnan(y)]
    if x.size < 2 or y.size < 2:
        return (math.nan, math.nan)
    mean_x = x[resample_indices(x.size, resamples, seed)].mean(axis=1)
    mean_y = y[resample_indices(y.size, resamples, seed + 1)].mean(axis=1)
    if how == "ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            replicates = mean_x / mean_y
    elif how == "difference":
        replicates = mean_x - mean_y
    else:
        raise ValueError(f"how must be 'ratio' or 'difference', got {how!r}")
    replicates = replicates[np.isfinite(replicates)]
    if replicates.size == 0:
        return (math.nan, math.nan)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return (float(low), float(high))
