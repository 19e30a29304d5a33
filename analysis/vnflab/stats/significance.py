"""Distribution-free comparison of two samples: Mann-Whitney U, Cliff's delta, Hodges-Lehmann shift, Holm, BH.

Used to compare platforms within a run and one platform across runs: response times are skewed
and boot times of a few repetitions are not normal, so no test here assumes normality.

Small samples (boot and memory points: a handful of batches) are tested exactly: the p-value is the
share of all ``C(n_a + n_b, n_a)`` relabellings of the pooled values whose rank sum is at least as far
from its mean as the observed one (mid-ranks, so ties are handled exactly, conditional on them). Larger
samples use scipy's normal approximation with tie correction. :func:`detectable_shift_sd` gives the
power side: the smallest shift the same test finds with 80% probability.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from itertools import combinations
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as _scipy_stats

#: Conventional thresholds of |Cliff's delta| (Romano et al. 2006): negligible/small/medium/large.
_DELTA_LEVELS: tuple[tuple[float, str], ...] = ((0.147, "negligible"), (0.33, "small"), (0.474, "medium"))

#: The exact test enumerates every relabelling while there are at most this many (9 + 9 values: 48,620).
EXACT_LIMIT = 50_000

Method = Literal["exact", "asymptotic"]


@dataclass(frozen=True)
class MannWhitney:
    """Two-sided Mann-Whitney U test of ``a`` against ``b`` with effect sizes.

    ``cliffs_delta`` = P(a > b) - P(a < b) over all pairs (the rank-biserial correlation), in
    [-1, 1]; positive when ``a`` tends to be larger. ``hl_shift`` is the Hodges-Lehmann estimate
    of the shift ``a - b`` (median of all pairwise differences). NaN when a side has no values.
    """

    n_a: int
    n_b: int
    u: float
    p_value: float
    cliffs_delta: float
    hl_shift: float
    method: Method = "asymptotic"

    @property
    def magnitude(self) -> str:
        """negligible, small, medium or large (by |delta|); ``n/a`` when undefined."""
        if math.isnan(self.cliffs_delta):
            return "n/a"
        size = abs(self.cliffs_delta)
        for limit, name in _DELTA_LEVELS:
            if size < limit:
                return name
        return "large"

    def as_dict(self) -> dict[str, float | int | str]:
        return {**asdict(self), "magnitude": self.magnitude}


def _clean(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    data = np.asarray(values, dtype="float64")
    return data[~np.isnan(data)]


def is_exact(n_a: int, n_b: int) -> bool:
    """Whether :func:`mann_whitney` enumerates every relabelling for these sample sizes."""
    return n_a > 0 and n_b > 0 and math.comb(n_a + n_b, n_a) <= EXACT_LIMIT


@lru_cache(maxsize=64)
def _subsets(total: int, size: int) -> npt.NDArray[np.intp]:
    """Every ``size``-subset of ``range(total)``, one per row."""
    flat = np.fromiter((i for combo in combinations(range(total), size) for i in combo), dtype=np.intp)
    return flat.reshape(-1, size)


def exact_p_value(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Two-sided exact permutation p of the rank-sum of ``a`` (mid-ranks; ties handled exactly)."""
    x = _clean(a)
    y = _clean(b)
    ranks = _scipy_stats.rankdata(np.concatenate([x, y]))
    sums = ranks[_subsets(ranks.size, x.size)].sum(axis=1)
    center = x.size * (ranks.size + 1) / 2.0
    observed = abs(float(ranks[: x.size].sum()) - center)
    return float(np.mean(np.abs(sums - center) >= observed - 1e-9))


def smallest_p_value(n_a: int, n_b: int) -> float:
    """The smallest two-sided p the test can return at these sizes (complete separation, no ties)."""
    if n_a == 0 or n_b == 0:
        return math.nan
    if is_exact(n_a, n_b):
        return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))
    mean = n_a * n_b / 2.0
    sd = math.sqrt(n_a * n_b * (n_a + n_b + 1) / 12.0)
    return float(2.0 * _scipy_stats.norm.sf((mean - 0.5) / sd))


def mann_whitney(a: npt.ArrayLike, b: npt.ArrayLike) -> MannWhitney:
    """Mann-Whitney U, two-sided: exact permutation p while :func:`is_exact`, else normal approximation."""
    x = _clean(a)
    y = _clean(b)
    if x.size == 0 or y.size == 0:
        return MannWhitney(int(x.size), int(y.size), math.nan, math.nan, math.nan, math.nan)
    method: Method = "exact" if is_exact(x.size, y.size) else "asymptotic"
    u = float(np.sum(np.greater.outer(x, y)) + 0.5 * np.sum(np.equal.outer(x, y)))
    delta = 2.0 * u / (x.size * y.size) - 1.0
    shift = float(np.median(np.subtract.outer(x, y)))
    if method == "exact":
        p_value = exact_p_value(x, y)
    else:
        p_value = float(_scipy_stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic").pvalue)
    if np.all(x == x[0]) and np.all(y == y[0]) and x[0] == y[0]:
        p_value = 1.0  # identical constants: scipy returns NaN; there is no difference to find
    return MannWhitney(int(x.size), int(y.size), u, p_value, float(delta), shift, method)


#: Power at which :func:`detectable_shift_sd` defines the minimum detectable change.
MDC_POWER = 0.8
_MDC_DRAWS = 4000


#: Beyond this many pairs (n_a * n_b) the power is not simulated but taken from the normal approximation.
_SIMULATED_PAIRS = 2_500


def smallest_shift_with_power(power_at: Callable[[float], float], power: float, steps: int,
                              largest: float = 1e6) -> float:
    """The smallest shift at which ``power_at`` (increasing in the shift) reaches ``power``: doubling from 1, then
    ``steps`` bisections; ``inf`` when not even ``largest`` does."""
    low, high = 0.0, 1.0
    while power_at(high) < power:
        high *= 2.0
        if high > largest:
            return math.inf
    for _ in range(steps):
        middle = (low + high) / 2.0
        if power_at(middle) >= power:
            high = middle
        else:
            low = middle
    return high


def _critical_u_distance(n_a: int, n_b: int, level: float) -> float:
    """Smallest ``|U - n_a n_b / 2|`` that the test (without ties) rejects at ``level``."""
    if is_exact(n_a, n_b):
        total = n_a + n_b
        sums = (np.arange(1, total + 1, dtype=np.float64)[_subsets(total, n_a)]).sum(axis=1)
        distance = np.abs(sums - n_a * (total + 1) / 2.0)  # rank sum and U differ by a constant
        candidates = np.unique(distance)
        tails = np.array([np.mean(distance >= d - 1e-9) for d in candidates])
        return float(candidates[tails <= level].min())
    sd = math.sqrt(n_a * n_b * (n_a + n_b + 1) / 12.0)
    return float(_scipy_stats.norm.ppf(1.0 - level / 2.0)) * sd + 0.5  # scipy's continuity correction


@lru_cache(maxsize=256)
def detectable_shift_sd(n_a: int, n_b: int, level: float, power: float = MDC_POWER) -> float:
    """Smallest shift, in standard deviations, that the two-sided test at ``level`` finds with ``power``.

    The model: both samples normal with one standard deviation, ``b`` shifted. The rejection region is
    the test's own (the exact null distribution of the rank sum while :func:`is_exact`, else the normal
    approximation with continuity correction) and the power is simulated: seeded, 4000 draws, common
    random numbers, bisection on the shift. Beyond 2,500 pairs the normal approximation
    ``(z(1 - level/2) + z(power)) * sqrt(1/n_a + 1/n_b) * sqrt(pi/3)`` stands in (the test's efficiency
    against a t test is 3/pi under normality). ``inf`` when even complete separation cannot reach
    ``level`` at these sizes, NaN when a side is empty.
    """
    if n_a == 0 or n_b == 0:
        return math.nan
    if smallest_p_value(n_a, n_b) > level:
        return math.inf
    if n_a * n_b > _SIMULATED_PAIRS:
        z = float(_scipy_stats.norm.ppf(1.0 - level / 2.0) + _scipy_stats.norm.ppf(power))
        return z * math.sqrt(1.0 / n_a + 1.0 / n_b) * math.sqrt(math.pi / 3.0)
    critical = _critical_u_distance(n_a, n_b, level)
    rng = np.random.default_rng(20240601 + 1000 * n_a + n_b)
    x = rng.standard_normal((_MDC_DRAWS, n_a))
    noise_y = rng.standard_normal((_MDC_DRAWS, n_b))
    center = n_a * n_b / 2.0

    def simulated_power(shift: float) -> float:
        u = np.sum(x[:, :, None] > (noise_y + shift)[:, None, :], axis=(1, 2))
        return float(np.mean(np.abs(u - center) >= critical - 1e-9))

    return smallest_shift_with_power(simulated_power, power, steps=30)


def minimum_detectable_change_pct(a: npt.ArrayLike, b: npt.ArrayLike, level: float,
                                  power: float = MDC_POWER) -> float:
    """The smallest change of ``b`` against ``a``, in % of ``a``'s median, the test finds with ``power``.

    :func:`detectable_shift_sd` times the pooled within-sample standard deviation of the two samples,
    over ``|median(a)|``. 0 when both samples are constant (and the sizes can reach ``level``); ``inf``
    when the sizes cannot reach ``level``; NaN when undefined (an empty side, a zero median).
    """
    x = _clean(a)
    y = _clean(b)
    shift_sd = detectable_shift_sd(int(x.size), int(y.size), level, power)
    if math.isnan(shift_sd):
        return math.nan
    if math.isinf(shift_sd):
        return math.inf
    center = float(np.median(x))
    if center == 0:
        return math.nan
    dof = (x.size - 1) + (y.size - 1)
    if dof <= 0:
        return math.inf
    pooled = math.sqrt((float(np.sum((x - x.mean()) ** 2)) + float(np.sum((y - y.mean()) ** 2))) / dof)
    return 100.0 * shift_sd * pooled / abs(center)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error), same order as given; NaN stays NaN."""
    indexed = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    indexed.sort()
    m = len(indexed)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), same order as given; NaN stays NaN."""
    indexed = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    indexed.sort(reverse=True)
    m = len(indexed)
    adjusted = [math.nan] * len(p_values)
    running = 1.0
    for position, (p, i) in enumerate(indexed):
        rank = m - position
        running = min(running, p * m / rank)
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class RunLevelTest:
    """Student's t test of per-run summaries (one value per run: the run is the unit).

    ``shift`` = mean(b) - mean(a) on the summaries' scale, ``spread`` the pooled standard deviation of
    the summaries within each side (the between-run spread, the within-run sampling error of each
    run's summary included), ``dof`` = runs - 2. NaN where undefined (fewer than 3 runs, an empty side).
    """

    runs_a: int
    runs_b: int
    shift: float
    spread: float
    dof: int
    p_value: float


def run_level_t(a: npt.ArrayLike, b: npt.ArrayLike) -> RunLevelTest:
    """Two-sided pooled-variance t test of run summaries ``a`` against ``b`` (at least 3 runs in all).

    With zero spread the p-value is 1 when the means agree and 0 when they differ (no noise at all
    between runs: any difference is real at this resolution).
    """
    x = _clean(a)
    y = _clean(b)
    dof = int(x.size + y.size - 2)
    if x.size == 0 or y.size == 0 or dof < 1:
        return RunLevelTest(int(x.size), int(y.size), math.nan, math.nan, max(dof, 0), math.nan)
    shift = float(y.mean() - x.mean())
    spread = math.sqrt((float(np.sum((x - x.mean()) ** 2)) + float(np.sum((y - y.mean()) ** 2))) / dof)
    if spread == 0.0:
        p_value = 1.0 if shift == 0.0 else 0.0
    else:
        t = shift / (spread * math.sqrt(1.0 / x.size + 1.0 / y.size))
        p_value = float(2.0 * _scipy_stats.t.sf(abs(t), dof))
    return RunLevelTest(int(x.size), int(y.size), shift, spread, dof, p_value)


@lru_cache(maxsize=256)
def run_level_detectable_shift_sd(runs_a: int, runs_b: int, level: float, power: float = MDC_POWER) -> float:
    """Smallest shift, in between-run standard deviations, that :func:`run_level_t` finds with ``power``.

    Exact under the model (run summaries normal with one standard deviation): the power of the
    two-sided t test is that of the noncentral t distribution with ``runs - 2`` degrees of freedom
    and noncentrality ``shift / sqrt(1/runs_a + 1/runs_b)``; solved by bisection. NaN below 3 runs.
    """
    dof = runs_a + runs_b - 2
    if runs_a < 1 or runs_b < 1 or dof < 1:
        return math.nan
    critical = float(_scipy_stats.t.ppf(1.0 - level / 2.0, dof))
    scale = math.sqrt(1.0 / runs_a + 1.0 / runs_b)

    def achieved(shift: float) -> float:
        nc = shift / scale
        return float(_scipy_stats.nct.sf(critical, dof, nc) + _scipy_stats.nct.cdf(-critical, dof, nc))

    return smallest_shift_with_power(achieved, power, steps=60)
