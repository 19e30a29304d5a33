"""The stopping rule of docs/design.md as a pure value object.

A point repeats batches until ``n_ok >= min_samples`` and the Student-t confidence-interval
half-width of the mean is ``<= rel_half_width * |mean|`` (``converged``), or until
``n >= max_samples`` (``cap``).

Lost samples (``None``; NaN is treated the same) count towards ``n`` and so towards the cap, but
are excluded from the mean and the interval, and do not count towards ``min_samples``. A point whose
samples are all lost therefore never converges and stops at the cap. The half-width needs at least
two values, so ``min_samples`` below 2 behaves as 2 for convergence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scipy import stats as _scipy_stats

Reason = Literal["converged", "cap", "need_more"]

#: design.md defaults: response follows RFC 2544 s.26.2 (at least 20 trials); boot and memory 3.
DEFAULT_MIN_SAMPLES: dict[str, int] = {"response": 20, "boot": 3, "memory": 3}


def t_half_width(stdev: float, n: int, confidence: float) -> float:
    """Half-width of the two-sided Student-t CI of a mean of ``n`` values (NaN when ``n < 2``)."""
    if n < 2 or not math.isfinite(stdev):
        return math.nan
    quantile = float(_scipy_stats.t.ppf(0.5 + confidence / 2.0, df=n - 1))
    return quantile * stdev / math.sqrt(n)


@dataclass(frozen=True)
class Decision:
    """Outcome of :meth:`StoppingRule.decide`.

    ``n`` counts every sample (lost ones included); ``mean`` and ``half_width`` are over the
    ``n_ok`` values that arrived and are ``None`` when they are undefined (fewer than 1 resp. 2).
    """

    done: bool
    reason: Reason
    n: int
    mean: float | None
    half_width: float | None
    n_ok: int
    n_lost: int

    @property
    def rel_half_width(self) -> float | None:
        """Achieved half-width relative to ``|mean|`` (``None`` when undefined or the mean is 0)."""
        if self.mean is None or self.half_width is None or self.mean == 0:
            return None
        return self.half_width / abs(self.mean)

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["rel_half_width"] = self.rel_half_width
        return record


@dataclass(frozen=True)
class StoppingRule:
    """When to stop repeating one measurement point."""

    min_samples: int
    max_samples: int
    rel_half_width: float = 0.05
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {self.min_samples}")
        if self.max_samples < self.min_samples:
            raise ValueError(f"max_samples ({self.max_samples}) must be >= min_samples ({self.min_samples})")
        if not self.rel_half_width > 0:
            raise ValueError(f"rel_half_width must be > 0, got {self.rel_half_width}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")

    def decide(self, values: Sequence[float | None]) -> Decision:
        """Decide from every sample of the point so far (``None`` = lost)."""
        ok = [float(v) for v in values if v is not None and not math.isnan(v)]
        n = len(values)
        n_ok = len(ok)
        mean = math.fsum(ok) / n_ok if n_ok else None
        half_width: float | None = None
        if mean is not None and n_ok >= 2:
            variance = math.fsum((v - mean) ** 2 for v in ok) / (n_ok - 1)
            half_width = t_half_width(math.sqrt(variance), n_ok, self.confidence)
        converged = (
            mean is not None
            and half_width is not None
            and n_ok >= self.min_samples
            and half_width <= self.rel_half_width * abs(mean)
        )
        reason: Reason
        if converged:
            reason = "converged"
        elif n >= self.max_samples:
            reason = "cap"
        else:
            reason = "need_more"
        return Decision(
            done=reason != "need_more",
            reason=reason,
            n=n,
            mean=mean,
            half_width=half_width,
            n_ok=n_ok,
            n_lost=n - n_ok,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rule_for(metric: str, max_samples: int, rel_half_width: float = 0.05, confidence: float = 0.95) -> StoppingRule:
    """The design.md default rule for ``metric`` (``boot``, ``response`` or ``memory``)."""
    try:
        min_samples = DEFAULT_MIN_SAMPLES[metric]
    except KeyError:
        raise ValueError(f"no default min_samples for metric {metric!r}") from None
    return StoppingRule(min_samples, max_samples, rel_half_width, confidence)
