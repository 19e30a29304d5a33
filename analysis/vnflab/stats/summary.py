"""Per-point summary statistics over a pandas Series of sample values (NaN/None = lost)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

from vnflab.measure.stopping import t_half_width
from vnflab.stats.bootstrap import quantile_ci
from vnflab.stats.outliers import outlier_mask

#: Columns of :meth:`Summary.as_dict`, in order.
SUMMARY_FIELDS: tuple[str, ...] = (
    "n", "n_lost", "mean", "median", "stdev", "min", "max", "p95", "p99", "ci_low", "ci_high",
    "median_ci_low", "median_ci_high", "p95_ci_low", "p95_ci_high", "p99_ci_low", "p99_ci_high", "n_outliers",
)


@dataclass(frozen=True)
class Summary:
    """Statistics of one point.

    ``n`` counts every sample, lost ones included; ``n_lost`` the lost ones. All other fields are
    over the ``n - n_lost`` values and are NaN when undefined (no values; ``stdev`` and the CI need
    two). Percentiles use linear interpolation between order statistics (numpy's default, type 7).
    ``ci_low``/``ci_high`` is the two-sided Student-t interval of the mean at ``confidence``;
    ``median_ci_*``, ``p95_ci_*`` and ``p99_ci_*`` are seeded percentile-bootstrap intervals
    (:mod:`vnflab.stats.bootstrap`). ``n_outliers`` counts values outside Tukey's fences
    (:mod:`vnflab.stats.outliers`); they are flagged, and every statistic still includes them.
    """

    n: int
    n_lost: int
    mean: float
    median: float
    stdev: float
    min: float
    max: float
    p95: float
    p99: float
    ci_low: float
    ci_high: float
    median_ci_low: float = math.nan
    median_ci_high: float = math.nan
    p95_ci_low: float = math.nan
    p95_ci_high: float = math.nan
    p99_ci_low: float = math.nan
    p99_ci_high: float = math.nan
    n_outliers: int = 0

    @property
    def n_ok(self) -> int:
        return self.n - self.n_lost

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def valid_values(values: pd.Series) -> pd.Series:
    """The values that arrived, as float64 (lost samples dropped)."""
    return pd.to_numeric(values, errors="raise").astype("float64").dropna()


def mean_ci(values: pd.Series, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Student-t CI of the mean of the valid values; ``(nan, nan)`` with fewer than two."""
    ok = valid_values(values)
    if len(ok) < 2:
        return (math.nan, math.nan)
    mean = float(ok.mean())
    half = t_half_width(float(ok.std(ddof=1)), len(ok), confidence)
    return (mean - half, mean + half)


def summarize(values: pd.Series, confidence: float = 0.95) -> Summary:
    """Summary of one point's samples."""
    ok = valid_values(values)
    n = len(values)
    if ok.empty:
        nan = math.nan
        return Summary(n, n, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    ci_low, ci_high = mean_ci(ok, confidence)
    array = ok.to_numpy()
    median_ci = quantile_ci(array, 0.5, confidence)
    p95_ci = quantile_ci(array, 0.95, confidence)
    p99_ci = quantile_ci(array, 0.99, confidence)
    return Summary(
        n=n,
        n_lost=n - len(ok),
        mean=float(ok.mean()),
        median=float(ok.median()),
        stdev=float(ok.std(ddof=1)) if len(ok) >= 2 else math.nan,
        min=float(ok.min()),
        max=float(ok.max()),
        p95=float(ok.quantile(0.95)),
        p99=float(ok.quantile(0.99)),
        ci_low=ci_low,
        ci_high=ci_high,
        median_ci_low=median_ci[0],
        median_ci_high=median_ci[1],
        p95_ci_low=p95_ci[0],
        p95_ci_high=p95_ci[1],
        p99_ci_low=p99_ci[0],
        p99_ci_high=p99_ci[1],
        n_outliers=int(outlier_mask(array).sum()),
    )
