"""The stopping rule of docs/design.md as a pure value object.

A point repeats batches until ``n_ok >= min_samples`` and the Student-t confidence-interval
half-width of the mean is ``<= rel_half_width * |mean|`` (``converged``), or until
``n >= max_samples`` (``cap``), or, with a ``time_budget_s``, until the next batch would end past the
point's budget (``budget``: judged from the mean batch duration so far, and only once the
``min_samples`` pilot is in, so the pilot always completes; or, with a ``budget_floor``, once that many
values are in: a budget shared by a server's points (:mod:`vnflab.measure.budget`) may cut a pilot short, never
below the two values an interval needs).

The first ``min_samples`` samples are the pilot: their variance sizes the point. Every decision
records ``needed``, the number of values the interval would need at the variance observed so far, so
a point that stopped at the cap or the budget says how far it was from converging.

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

from vnflab.limits import CONFIDENCE, REL_HALF_WIDTH

Reason = Literal["converged", "cap", "budget", "need_more"]

#: design.md defaults: response follows RFC 2544 s.26.2 (at least 20 trials); boot and memory 3.
DEFAULT_MIN_SAMPLES: dict[str, int] = {"response": 20, "boot": 3, "memory": 3}


def t_half_width(stdev: float, n: int, confidence: float) -> float:
    """Half-width of the two-sided Student-t CI of a mean of ``n`` values (NaN when ``n < 2``)."""
    if n < 2 or not math.isfinite(stdev):
        return math.nan
    quantile = float(_scipy_stats.t.ppf(0.5 + confidence / 2.0, df=n - 1))
    return quantile * stdev / math.sqrt(n)


#: :func:`samples_needed` searches no further (a point that needs more is hopeless at any budget).
MAX_NEEDED = 100_000


def samples_needed(stdev: float, mean: float, rel_half_width: float, confidence: float) -> int | None:
    """Smallest n whose Student-t half-width at this stdev is ``<= rel_half_width * |mean|``.

    ``None`` when undefined (NaN stdev, a zero mean) or beyond :data:`MAX_NEEDED`; at least 2.
    """
    if not math.isfinite(stdev) or not math.isfinite(mean) or mean == 0:
        return None
    target = rel_half_width * abs(mean)
    if stdev == 0:
        return 2
    z = float(_scipy_stats.norm.ppf(0.5 + confidence / 2.0))
    n = max(2, math.ceil((z * stdev / target) ** 2))  # the normal quantile is a lower bound on t's
    while n <= MAX_NEEDED:
        if t_half_width(stdev, n, confidence) <= target:
            return n
        n += 1 if n < 1000 else max(1, n // 100)
    return None


@dataclass(frozen=True)
class Decision:
    """Outcome of :meth:`StoppingRule.decide`.

    ``n`` counts every sample (lost ones included); ``mean`` and ``half_width`` are over the
    ``n_ok`` values that arrived and are ``None`` when they are undefined (fewer than 1 resp. 2).
    ``needed`` is how many values the interval needs at the observed variance (:func:`samples_needed`);
    ``elapsed_s`` the point's time so far when the caller gave it.
    """

    done: bool
    reason: Reason
    n: int
    mean: float | None
    half_width: float | None
    n_ok: int
    n_lost: int
    needed: int | None = None
    elapsed_s: float | None = None

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
    rel_half_width: float = REL_HALF_WIDTH
    confidence: float = CONFIDENCE
    time_budget_s: float | None = None
    #: values after which the budget may end the point (default: ``min_samples``, the whole pilot)
    budget_floor: int | None = None

    def __post_init__(self) -> None:
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {self.min_samples}")
        if self.max_samples < self.min_samples:
            raise ValueError(f"max_samples ({self.max_samples}) must be >= min_samples ({self.min_samples})")
        if not self.rel_half_width > 0:
            raise ValueError(f"rel_half_width must be > 0, got {self.rel_half_width}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(f"time_budget_s must be > 0 when set, got {self.time_budget_s}")
        if self.budget_floor is not None and not 2 <= self.budget_floor <= self.min_samples:
            raise ValueError(f"budget_floor must be in [2, min_samples ({self.min_samples})] when set, "
                             f"got {self.budget_floor}")

    def decide(self, values: Sequence[float | None], elapsed_s: float | None = None,
               batches: int | None = None) -> Decision:
        """Decide from every sample of the point so far (``None`` = lost), the point's time so far and the
        number of batches that took it (default: one per sample)."""
        ok = [float(v) for v in values if v is not None and not math.isnan(v)]
        n = len(values)
        n_ok = len(ok)
        mean = math.fsum(ok) / n_ok if n_ok else None
        half_width: float | None = None
        needed: int | None = None
        if mean is not None and n_ok >= 2:
            variance = math.fsum((v - mean) ** 2 for v in ok) / (n_ok - 1)
            half_width = t_half_width(math.sqrt(variance), n_ok, self.confidence)
            needed = samples_needed(math.sqrt(variance), mean, self.rel_half_width, self.confidence)
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
        elif self._budget_spent(batches if batches is not None else n, n_ok, elapsed_s):
            reason = "budget"
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
            needed=needed,
            elapsed_s=elapsed_s,
        )

    def _budget_spent(self, batches: int, n_ok: int, elapsed_s: float | None) -> bool:
        """Whether one more batch, as long as the mean one so far, would end past the budget (pilot, or its
        floor, done)."""
        floor = self.min_samples if self.budget_floor is None else self.budget_floor
        if self.time_budget_s is None or elapsed_s is None or batches <= 0 or n_ok < floor:
            return False
        return elapsed_s + elapsed_s / batches > self.time_budget_s

    def as_dict(self) -> dict[str, Any]:
        """The rule's fields; ``time_budget_s`` and ``budget_floor`` only when set (records of rules without
        them are unchanged)."""
        record = asdict(self)
        for optional in ("time_budget_s", "budget_floor"):
            if record[optional] is None:
                del record[optional]
        return record


def rule_for(metric: str, max_samples: int, rel_half_width: float = REL_HALF_WIDTH, confidence: float = CONFIDENCE,
             time_budget_s: float | None = None) -> StoppingRule:
    """The design.md default rule for ``metric`` (``boot``, ``response`` or ``memory``)."""
    try:
        min_samples = DEFAULT_MIN_SAMPLES[metric]
    except KeyError:
        raise ValueError(f"no default min_samples for metric {metric!r}") from None
    return StoppingRule(min_samples, max_samples, rel_half_width, confidence, time_budget_s)
