"""Data-efficiency curves: area under the curve, required data, effective data transferred.

Definitions are those of ``METRICS.md`` §2.2-2.3 (worked example §2.5 is the unit test): the x
axis is the number of labelled examples on a log scale, curves are made monotone (cumulative
max) before they are inverted, and an accuracy outside a curve's range is *censored*: reported as
a bound and flagged, never extrapolated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def aulc(n: np.ndarray, acc: np.ndarray) -> float:
    """Area under the accuracy curve over ln(n), trapezoid, divided by the ln-range: in [0, 1]."""
    x, y = np.log(np.asarray(n, float)), np.asarray(acc, float)
    if len(x) < 2:
        return math.nan
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


def monotone(acc: np.ndarray) -> np.ndarray:
    """The running maximum: more labels never count as worse when the curve is inverted."""
    return np.maximum.accumulate(np.asarray(acc, float))


@dataclass(frozen=True)
class Required:
    """Examples a curve needs to reach an accuracy; ``censored`` is "below", "above" or ""."""

    n: float
    censored: str

    def text(self) -> str:
        """The value as a reader sees it: "<n1" or ">n_max" when censored."""
        sign = {"below": "<", "above": ">", "": ""}[self.censored]
        return f"{sign}{self.n:.0f}"


def required_n(alpha: float, n: np.ndarray, acc: np.ndarray) -> Required:
    """Smallest n reaching ``alpha`` on the monotone curve, interpolated linearly in (ln n, acc).

    Below the first point the value is censored "below" (at most n_1); above the last point it is
    censored "above" (more than n_max).
    """
    n, a = np.asarray(n, float), monotone(acc)
    if alpha < a[0]:
        return Required(float(n[0]), "below")
    if alpha > a[-1]:
        return Required(float(n[-1]), "above")
    i = int(np.argmax(a >= alpha))  # first point at or above alpha
    if i == 0 or a[i] == alpha:
        return Required(float(n[i]), "")
    frac = (alpha - a[i - 1]) / (a[i] - a[i - 1])
    return Required(float(math.exp(math.log(n[i - 1]) + frac * math.log(n[i] / n[i - 1]))), "")


def data_multiplier(alpha: float, n: np.ndarray, scratch: np.ndarray, regime: np.ndarray) -> float:
    """M(alpha) = n_req(scratch) / n_req(regime); nan when either is censored."""
    s, r = required_n(alpha, n, scratch), required_n(alpha, n, regime)
    return math.nan if s.censored or r.censored else s.n / r.n


@dataclass(frozen=True)
class Transferred:
    """Effective data transferred at one budget n_F (Hernandez et al. applied to accuracy)."""

    n: float
    effective: float  # D_E: examples scratch needs to match the regime at n_F
    censored: str  # "above": D_E > n_max (a lower bound); "below": D_E <= n_1 (an upper bound)

    @property
    def transferred(self) -> float:
        """D_T = D_E - n_F; negative means negative transfer (or ossification at large n)."""
        return self.effective - self.n

    @property
    def multiplier(self) -> float:
        """D_E / n_F."""
        return self.effective / self.n

    def text(self) -> str:
        """D_T as a reader sees it, with the censoring sign."""
        sign = {"above": ">", "below": "<", "": ""}[self.censored]
        digits = 1 if abs(self.transferred) < 10 else 0
        return f"{sign}{self.transferred:.{digits}f}"


def effective_data(n: np.ndarray, scratch: np.ndarray, regime: np.ndarray) -> list[Transferred]:
    """D_E and D_T at every budget of the regime's curve (same grid as scratch's)."""
    out = []
    for n_f, acc in zip(np.asarray(n, float), np.asarray(regime, float), strict=True):
        req = required_n(float(acc), n, scratch)
        out.append(Transferred(float(n_f), req.n, req.censored))
    return out
