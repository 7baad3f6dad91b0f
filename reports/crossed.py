"""The standard error of a mean over runs whose seeds are shared (a crossed seed design).

With ``seed`` as shorthand every run has its own subset seed and its own train seed, so runs are
independent and the Student-t interval over them is right. A sweep of ``subset_seed=range(I)
train_seed=range(J)`` is different: each subset seed meets every train seed, so two runs that
share a subset seed share its draw of labelled examples. Treating its I*J runs as independent
understates the variance of their mean, which is (two-way random effects, Searle, Casella &
McCulloch 1992, ch. 4)

    var(mean) = sigma2_subset / I + sigma2_train / J + sigma2_resid / (I J).

The components come from the mean squares by the method of moments (negative ones clipped to 0);
the degrees of freedom of the resulting t are Satterthwaite's (1946). numpy/scipy only, like the
rest of the statistics, so independent code can recompute it. A sweep that shares seeds without
being a balanced crossed design has no such closed form here: it is reported as not testable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INDEPENDENT, CROSSED, SHARED = "independent", "crossed", "shared"

CROSSED_METHOD = (
    "when subset_seed and train_seed are crossed (every subset seed with every train seed), runs "
    "that share a seed are not independent: the interval and the t-test then use the two-way "
    "random-effects variance of the mean, sigma2_subset / I + sigma2_train / J + sigma2_resid / "
    "(I J) (method of moments, negative components clipped to 0), with Satterthwaite's degrees "
    "of freedom, and no Wilcoxon test (the runs are not exchangeable); seeds shared without a "
    "balanced crossed design: not tested"
)


@dataclass(frozen=True)
class CrossedMean:
    """Mean over the cells of a crossed design, its standard error and degrees of freedom."""

    mean: float
    se: float
    df: float
    n_subset: int
    n_train: int


def design(subset: np.ndarray, train: np.ndarray) -> str:
    """How the runs' seeds relate: independent, a balanced crossed design, or shared otherwise.

    >>> design(np.array([0, 1, 2]), np.array([0, 1, 2]))
    'independent'
    >>> design(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    'crossed'
    >>> design(np.array([0, 0, 1]), np.array([0, 1, 0]))
    'shared'
    """
    s, t = np.asarray(subset), np.asarray(train)
    if len(np.unique(s)) == len(s) and len(np.unique(t)) == len(t):
        return INDEPENDENT
    counts = _counts(s, t)
    if min(counts.shape) >= 2 and counts.min() > 0 and np.ptp(counts) == 0:
        return CROSSED
    return SHARED


def _counts(s: np.ndarray, t: np.ndarray) -> np.ndarray:
    si, ti = np.unique(s, return_inverse=True)[1], np.unique(t, return_inverse=True)[1]
    counts = np.zeros((si.max(initial=-1) + 1, ti.max(initial=-1) + 1))
    np.add.at(counts, (si, ti), 1)
    return counts


@dataclass(frozen=True)
class MeanSquares:
    """The two-way ANOVA of a balanced crossed design's cell means."""

    grand: float
    subset: float
    train: float
    resid: float
    n_subset: int
    n_train: int


def mean_squares(values: np.ndarray, subset: np.ndarray, train: np.ndarray) -> MeanSquares:
    """Mean squares of subset seeds, train seeds and residual (design already checked crossed).

    Replicates of one (subset, train) pair are averaged into their cell first, so they count
    once, in the residual (interaction and noise are not separable with one run per pair).
    """
    y, s, t = np.asarray(values, float), np.asarray(subset), np.asarray(train)
    si, ti = np.unique(s, return_inverse=True)[1], np.unique(t, return_inverse=True)[1]
    counts = _counts(s, t)
    sums = np.zeros(counts.shape)
    np.add.at(sums, (si, ti), y)
    cell = sums / counts
    i, j = cell.shape
    grand = float(cell.mean())
    ms_s = j * ((cell.mean(axis=1) - grand) ** 2).sum() / (i - 1)
    ms_t = i * ((cell.mean(axis=0) - grand) ** 2).sum() / (j - 1)
    resid = cell - cell.mean(axis=1, keepdims=True) - cell.mean(axis=0, keepdims=True) + grand
    ms_e = (resid**2).sum() / ((i - 1) * (j - 1))
    return MeanSquares(grand, float(ms_s), float(ms_t), float(ms_e), int(i), int(j))


def crossed_mean(values: np.ndarray, subset: np.ndarray, train: np.ndarray) -> CrossedMean:
    """The grand mean of a balanced crossed design and its random-effects standard error."""
    m = mean_squares(values, subset, train)
    grand, ms_s, ms_t, ms_e, i, j = m.grand, m.subset, m.train, m.resid, m.n_subset, m.n_train
    df_e = (i - 1) * (j - 1)
    # var(mean) as a combination of the mean squares: sigma2_subset / I = (MS_s - MS_e) / (I J)
    # where positive, likewise for train; sigma2_resid / (I J) = MS_e / (I J).
    use_s, use_t = float(ms_s > ms_e), float(ms_t > ms_e)
    coef = np.array([use_s, use_t, 1.0 - use_s - use_t]) / (i * j)
    ms = np.array([ms_s, ms_t, ms_e])
    var = float(coef @ ms)
    if var <= 0:
        return CrossedMean(grand, 0.0, math.nan, i, j)
    terms = (coef * ms) ** 2 / np.array([i - 1, j - 1, df_e])
    return CrossedMean(grand, math.sqrt(var), var**2 / float(terms.sum()), i, j)


VARIANCE_METHOD = (
    "two-way crossed random-effects ANOVA (subset_seed x train_seed, balanced, method of moments): "
    "sigma2_subset = (MS_subset - MS_resid) / n_train, sigma2_train = (MS_train - MS_resid) / "
    "n_subset, sigma2_resid = MS_resid (interaction + noise; with one run per pair the two are "
    "not separable); negative estimates are clipped to 0 (flagged); shares are of their sum"
)


@dataclass(frozen=True)
class VarianceSplit:
    """Variance components of one cell over crossed subset and train seeds (shares sum to 1)."""

    subset_share: float
    train_share: float
    residual_share: float
    n_subset: int
    n_train: int
    clipped: bool


def variance_split(
    values: np.ndarray, subset: np.ndarray, train: np.ndarray
) -> VarianceSplit | None:
    """Method-of-moments variance components on a balanced crossed design; None if not crossed.

    Why this estimator: it is the classical two-way random-effects ANOVA (Searle, Casella &
    McCulloch 1992, ch. 4), exact in expectation for balanced data, and it needs only the mean
    squares, so it can be checked by hand. Needs >= 2 levels of each and every (subset, train)
    pair present equally often (replicates, if any, are averaged into the residual's cell means).
    """
    y, s, t = np.asarray(values, float), np.asarray(subset), np.asarray(train)
    keep = ~np.isnan(y)
    y, s, t = y[keep], s[keep], t[keep]
    if design(s, t) != CROSSED:
        return None
    m = mean_squares(y, s, t)
    raw = np.array([(m.subset - m.resid) / m.n_train, (m.train - m.resid) / m.n_subset, m.resid])
    parts = np.clip(raw, 0.0, None)
    total = parts.sum()
    shares = parts / total if total > 0 else np.full(3, math.nan)
    return VarianceSplit(*map(float, shares), m.n_subset, m.n_train, bool((raw < 0).any()))
