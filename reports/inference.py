"""Inference across seeds as pure functions: t intervals, paired tests, Holm, variance shares.

Why not the percentile bootstrap everywhere: with n seeds it can never reach beyond the sample's
range, and with 3 seeds it is exactly [min, max], which covers the mean about 75% of the time.
The Student-t interval (mean +- t_{n-1} s / sqrt n) is the standard small-sample interval of a mean
(exact under normality, robust enough for accuracies that are not at 0 or 1). The bootstrap is
kept beside it only from :data:`MIN_BOOT` seeds on, as BCa (Efron 1987), through
``scipy.stats.bootstrap``. numpy/scipy only, so independent code can recompute every number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from reports.crossed import CROSSED, CROSSED_METHOD, INDEPENDENT, crossed_mean, design

LEVEL = 0.95
MIN_BOOT = 10  # seeds from which the BCa bootstrap is reported beside the t interval
BOOT_RESAMPLES = 9_999
ROUND = 12  # decimals: differences of accuracies that are equal must tie exactly
ACC_BOUNDS = (0.0, 1.0)
DIFF_BOUNDS = (-1.0, 1.0)

T_METHOD = (
    "mean over seeds and Student-t 95% interval (mean +- t_{0.975, n-1} s / sqrt(n)), clipped to "
    "the metric's range ([0, 1] for accuracies and ECE, [-1, 1] for differences and forgetting; "
    "'clipped' flags a cell where that happened); n = runs (pairing units) in the cell; "
    + CROSSED_METHOD
)
BOOT_METHOD = (
    f"BCa bootstrap 95% interval (scipy.stats.bootstrap, {BOOT_RESAMPLES:,} resamples, seeded), "
    f"reported beside the t interval only for cells with n >= {MIN_BOOT}"
)
PAIRED_METHOD = (
    "paired by pairing unit (subset_seed, train_seed): mean of the per-unit differences A - B "
    "with its Student-t 95% interval (clipped to [-1, 1]), paired t-test (scipy.stats.ttest_rel), "
    "Wilcoxon signed-rank beside it (scipy.stats.wilcoxon, method 'auto': the exact null "
    "distribution up to 50 pairs without ties or zeros, an exact permutation distribution up to "
    "13 pairs with them, the normal approximation beyond; zeros dropped; with n <= 5 pairs its "
    "two-sided p cannot go below 2 / 2^n, 0.0625 at 5); differences rounded to 1e-12 so equal "
    "accuracies tie; when every difference is 0 both p-values are 1 (scipy's t gives NaN there); "
    + CROSSED_METHOD
)
HOLM_METHOD = (
    "Holm step-down correction (Holm 1979) of the paired-t p-values over the family a claim "
    "belongs to; a difference is claimed only when its Holm-adjusted p < 0.05 AND its t interval "
    "excludes 0 (the intervals are marginal 95% intervals, not adjusted for the family, so an "
    "interval can exclude 0 while its adjusted p does not reach 0.05: then it is not resolved); "
    "Wilcoxon p-values are shown unadjusted"
)


@dataclass(frozen=True)
class Interval:
    """Mean, standard deviation (ddof 1) and t interval of one cell; ``clipped`` if bounded."""

    mean: float
    std: float
    low: float
    high: float
    n: int
    clipped: bool


Units = tuple[np.ndarray, np.ndarray]  # (subset_seed, train_seed) of each value


def _kept(units: Units | None, keep: np.ndarray) -> Units | None:
    """The units of the values ``keep`` selects (NaN values are dropped with their units)."""
    return None if units is None else (np.asarray(units[0])[keep], np.asarray(units[1])[keep])


def _finite(values: np.ndarray, units: Units | None) -> tuple[np.ndarray, Units | None]:
    """The non-NaN values and their units, aligned."""
    x = np.asarray(values, dtype=float)
    keep = ~np.isnan(x)
    return x[keep], _kept(units, keep)


def _crossed_interval(
    x: np.ndarray, units: Units, kind: str, bounds: tuple[float, float], level: float
) -> tuple[Interval, float]:
    """The interval of a mean over a seed design that is not independent runs, and its t's p."""
    nan = math.nan
    std = float(x.std(ddof=1))
    if kind != CROSSED:  # seeds shared, but not a balanced crossed design
        return Interval(float(x.mean()), std, nan, nan, len(x), False), nan
    c = crossed_mean(x, *units)
    if c.se == 0:
        return Interval(c.mean, std, c.mean, c.mean, len(x), False), nan
    half = float(stats.t.ppf((1 + level) / 2, c.df)) * c.se
    low, high = c.mean - half, c.mean + half
    clipped = low < bounds[0] or high > bounds[1]
    p = float(2 * stats.t.sf(abs(c.mean) / c.se, c.df))
    return Interval(c.mean, std, max(low, bounds[0]), min(high, bounds[1]), len(x), clipped), p


def t_interval(
    values: np.ndarray,
    bounds: tuple[float, float] = ACC_BOUNDS,
    level: float = LEVEL,
    units: Units | None = None,
) -> Interval:
    """Student-t interval of the mean, clipped to ``bounds``; NaN bounds with fewer than 2 values.

    Why clip: an accuracy's mean cannot leave [0, 1], so the part of the interval outside is
    impossible; clipping keeps coverage and is flagged so a reader knows.

    >>> r = t_interval(np.array([0.5, 0.6, 0.7]))
    >>> round(r.mean, 3), round(r.low, 3), round(r.high, 3), r.n
    (0.6, 0.352, 0.848, 3)
    >>> t_interval(np.array([0.97, 0.99, 1.0])).clipped
    True
    """
    x, units = _finite(values, units)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0, False)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, math.nan, 1, False)
    kind = INDEPENDENT if units is None else design(*units)
    if kind != INDEPENDENT:
        return _crossed_interval(x, units, kind, bounds, level)[0]
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    clipped = low < bounds[0] or high > bounds[1]
    return Interval(mean, std, max(low, bounds[0]), min(high, bounds[1]), n, clipped)


def boot_interval(
    values: np.ndarray,
    level: float = LEVEL,
    seed: int = 0,
    min_n: int = MIN_BOOT,
    units: Units | None = None,
) -> tuple[float, float]:
    """BCa bootstrap interval of the mean, only from ``min_n`` values on (NaN below).

    Why the threshold: below about 10 values the bootstrap distribution is too coarse for its
    tails to mean 95% (Efron & Tibshirani 1993, ch. 14). Constant data: the point itself. Runs
    that share seeds (``units`` not independent) are not an i.i.d. sample to resample: NaN.
    """
    x, units = _finite(values, units)
    if units is not None and design(*units) != INDEPENDENT:
        return math.nan, math.nan
    if len(x) < min_n:
        return math.nan, math.nan
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    res = stats.bootstrap(
        (x,),
        np.mean,
        confidence_level=level,
        n_resamples=BOOT_RESAMPLES,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison A - B: mean difference, its t interval, paired t and Wilcoxon p."""

    estimate: float
    low: float
    high: float
    n: int
    p_t: float
    p_wilcoxon: float
    clipped: bool


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    bounds: tuple[float, float] = DIFF_BOUNDS,
    units: Units | None = None,
) -> PairedTest:
    """Paired t (``ttest_rel``) and Wilcoxon signed-rank of a - b, pairs already aligned.

    Why both: the t-test carries the claim (its interval is the one reported); Wilcoxon is the
    distribution-free check beside it. No spread at all: p = 1 when every difference is 0,
    NaN (untestable) when they are all equal and non-zero.

    >>> r = paired_test(np.array([.03, -.01, .06, .01, .06]), np.zeros(5))  # METRICS.md 5.2
    >>> round(r.estimate, 3), round(r.p_t, 4), round(r.p_wilcoxon, 4)
    (0.03, 0.0951, 0.1875)
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b, units = a[keep], b[keep], _kept(units, keep)
    kind = INDEPENDENT if units is None or len(a) < 2 else design(*units)
    if kind != INDEPENDENT:
        ci, p = _crossed_interval(a - b, units, kind, bounds, LEVEL)
        return PairedTest(ci.mean, ci.low, ci.high, ci.n, p, math.nan, ci.clipped)
    ci = t_interval(a - b, bounds)
    d = np.round(a - b, ROUND)  # only for ties and zeros: the estimate is of the raw differences
    nan = math.nan
    if ci.n < 2:
        return PairedTest(ci.mean, nan, nan, ci.n, nan, nan, False)
    if np.ptp(d) == 0:
        p = 1.0 if d[0] == 0 else nan
        return PairedTest(ci.mean, ci.low, ci.high, ci.n, p, p, ci.clipped)
    p_t = float(stats.ttest_rel(a, b).pvalue)
    p_w = wilcoxon_p(d)
    return PairedTest(ci.mean, ci.low, ci.high, ci.n, p_t, p_w, ci.clipped)


PERMUTATION_MAX_N = 13  # scipy's 'auto': up to 2^13 sign flips, an exact permutation test


def wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of ``d`` as ``scipy.stats.wilcoxon(d)`` (method 'auto').

    With ties or zeros and at most 13 pairs scipy runs an exact permutation test over all 2^n
    sign flips, calling its statistic once per flip (about 0.3 s per test on the 2-core CPU; the
    default study's report makes a few hundred). Here the same ``scipy.stats.permutation_test``
    gets a vectorised statistic: the signed-rank sum r+ with zeros dropped (scipy's 'wilcox'
    zero method), so the null distribution and the p-value are scipy's own. Elsewhere scipy
    is called as is.

    >>> d = np.array([0.02, 0.02, -0.01, 0.0, 0.03, 0.02])
    >>> bool(wilcoxon_p(d) == stats.wilcoxon(d).pvalue)
    True
    """
    d = np.asarray(d, dtype=float)
    nonzero = d[d != 0]
    ties = len(np.unique(np.abs(nonzero))) < len(nonzero)
    if len(d) > PERMUTATION_MAX_N or not (ties or len(nonzero) < len(d)):
        return float(stats.wilcoxon(d).pvalue)
    ranks = np.zeros_like(d)
    ranks[d != 0] = stats.rankdata(np.abs(nonzero))  # a sign flip never changes |d|

    def r_plus(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return ((x > 0) * ranks).sum(axis=axis)

    res = stats.permutation_test(
        (d,), r_plus, permutation_type="samples", vectorized=True, n_resamples=np.inf
    )
    return float(res.pvalue)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values: p_(i) * (m - i + 1), made monotone, capped at 1; NaN stays NaN.

    The family size m counts the finite p-values (an untestable comparison cannot be rejected,
    so leaving it out does not raise the family-wise error rate).

    >>> holm(np.array([0.01, 0.04, 0.03])).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, math.nan)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


def from_on(holds: list[bool]) -> int | None:
    """Index of the first budget from which every larger budget also holds; None if the last fails.

    >>> from_on([False, True, False, True, True]), from_on([True, False])
    (3, None)
    """
    start = None
    for i, ok in enumerate(holds):
        if not ok:
            start = None
        elif start is None:
            start = i
    return start
