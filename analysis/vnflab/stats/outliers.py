"""Outliers are kept and flagged, never dropped: Tukey's fences on the values of one point."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: Tukey's k: a value outside [Q1 - k IQR, Q3 + k IQR] is flagged.
TUKEY_K = 1.5


def tukey_fences(values: npt.ArrayLike, k: float = TUKEY_K) -> tuple[float, float]:
    """(low, high) fences of the non-NaN ``values``; NaN fences when there are none."""
    data = np.asarray(values, dtype="float64")
    data = data[~np.isnan(data)]
    if data.size == 0:
        return (float("nan"), float("nan"))
    q1, q3 = np.quantile(data, [0.25, 0.75])
    iqr = q3 - q1
    return (float(q1 - k * iqr), float(q3 + k * iqr))


def outlier_mask(values: npt.ArrayLike, k: float = TUKEY_K) -> npt.NDArray[np.bool_]:
    """True where a value lies outside the fences (NaN, i.e. lost, is never an outlier)."""
    data = np.asarray(values, dtype="float64")
    low, high = tukey_fences(data, k)
    with np.errstate(invalid="ignore"):
        return (data < low) | (data > high)
