"""Distribution-free comparison of two samples: Mann-Whitney U, Cliff's delta, Hodges-Lehmann shift, Holm.

Used to compare platforms within a run and one platform across runs: response times are skewed
and boot times of a few repetitions are not normal, so no test here assumes normality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as _scipy_stats

#: Conventional thresholds of |Cliff's delta| (Romano et al. 2006): negligible/small/medium/large.
_DELTA_LEVELS: tuple[tuple[float, str], ...] = ((0.147, "negligible"), (0.33, "small"), (0.474, "medium"))


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


def mann_whitney(a: npt.ArrayLike, b: npt.ArrayLike) -> MannWhitney:
    """Mann-Whitney U (two-sided; exact for small samples without ties, else normal approximation)."""
    x = _clean(a)
    y = _clean(b)
    if x.size == 0 or y.size == 0:
        return MannWhitney(int(x.size), int(y.size), math.nan, math.nan, math.nan, math.nan)
    result = _scipy_stats.mannwhitneyu(x, y, alternative="two-sided", method="auto")
    u = float(result.statistic)
    delta = 2.0 * u / (x.size * y.size) - 1.0
    shift = float(np.median(np.subtract.outer(x, y)))
    p_value = float(result.pvalue)
    if np.all(x == x[0]) and np.all(y == y[0]) and x[0] == y[0]:
        p_value = 1.0  # identical constants: scipy returns NaN; there is no difference to find
    return MannWhitney(int(x.size), int(y.size), u, p_value, float(delta), shift)


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
