"""Inference against scipy on fixed arrays, METRICS.md §5.2, Holm by hand, "from X on", variance."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reports.claims import budget_sentence
from reports.crossed import variance_split
from reports.inference import (
    boot_interval,
    from_on,
    holm,
    paired_test,
    t_interval,
    wilcoxon_p,
)
from reports.variance import NOT_CROSSED, variance_table

A = np.array([0.61, 0.72, 0.68, 0.90, 0.55, 0.70, 0.66])
B = np.array([0.58, 0.70, 0.69, 0.84, 0.50, 0.64, 0.66])


def test_t_interval_matches_scipy():
    r = t_interval(A)
    ref = stats.ttest_1samp(A, 0).confidence_interval(0.95)
    assert (r.low, r.high) == pytest.approx((ref.low, ref.high))
    lo, hi = stats.t.interval(0.95, len(A) - 1, loc=A.mean(), scale=stats.sem(A))
    assert (r.low, r.high) == pytest.approx((lo, hi))
    assert r.mean == pytest.approx(A.mean()) and r.std == pytest.approx(A.std(ddof=1))
    assert r.n == 7 and not r.clipped
    # three seeds: wider than [min, max], which a percentile bootstrap would give
    three = t_interval(np.array([0.5, 0.6, 0.7]))
    assert three.low < 0.5 and three.high > 0.7
    one = t_interval(np.array([0.7, np.nan]))
    assert one.n == 1 and np.isnan(one.low) and np.isnan(one.std)


def test_t_interval_is_clipped_to_the_metric_range_and_says_so():
    r = t_interval(np.array([0.97, 0.99, 1.0]))
    assert r.high == 1.0 and r.clipped
    assert r.low == pytest.approx(stats.ttest_1samp([0.97, 0.99, 1.0], 0).confidence_interval().low)
    d = t_interval(np.array([-0.99, -0.9, -1.0]), (-1.0, 1.0))
    assert d.low == -1.0 and d.clipped


def test_bootstrap_only_from_ten_values_and_bca_matches_scipy():
    assert all(np.isnan(boot_interval(A)))  # 7 values: no bootstrap interval
    x = np.random.default_rng(3).uniform(0.6, 0.9, 12)
    lo, hi = boot_interval(x, seed=5)
    ref = stats.bootstrap(
        (x,), np.mean, n_resamples=9_999, method="BCa", rng=np.random.default_rng(5)
    ).confidence_interval
    assert (lo, hi) == pytest.approx((ref.low, ref.high))
    assert boot_interval(np.full(10, 0.5)) == (0.5, 0.5)


def test_paired_test_matches_ttest_rel_and_wilcoxon():
    r = paired_test(A, B)
    assert r.estimate == pytest.approx((A - B).mean()) and r.n == 7
    assert r.p_t == pytest.approx(stats.ttest_rel(A, B).pvalue)
    assert r.p_wilcoxon == pytest.approx(stats.wilcoxon(np.round(A - B, 12)).pvalue)
    ref = stats.ttest_rel(A, B).confidence_interval()
    assert (r.low, r.high) == pytest.approx((ref.low, ref.high))


def test_vectorised_wilcoxon_gives_scipy_s_p_with_ties_and_zeros():
    """Accuracy differences tie often (multiples of 1/n_test): the permutation path."""
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(200):
        n = int(rng.integers(3, 16))
        d = np.round(rng.normal(0.01, 0.03, size=n), 2)
        d[: int(rng.integers(0, 3))] = 0.0
        if not np.any(d):
            continue
        assert wilcoxon_p(d) == float(stats.wilcoxon(d).pvalue), d
        checked += 1
    assert checked > 150


def test_metrics_worked_example_and_the_wilcoxon_floor():
    d = np.array([0.03, -0.01, 0.06, 0.01, 0.06])  # METRICS.md §5.2
    r = paired_test(d, np.zeros(5))
    assert r.estimate == pytest.approx(0.03)
    t = stats.ttest_1samp(d, 0)
    assert t.statistic == pytest.approx(2.18, abs=5e-3) and t.df == 4
    assert r.p_t == pytest.approx(2 * stats.t.sf(t.statistic, 4))
    # five pairs all in one direction: the smallest two-sided Wilcoxon p there is, 2 / 2^5
    assert paired_test(np.arange(1, 6) / 100, np.zeros(5)).p_wilcoxon == pytest.approx(0.0625)
    assert paired_test(np.ones(4) * 0.5, np.ones(4) * 0.5).p_t == 1.0  # no difference at all
    assert np.isnan(paired_test(np.array([0.5]), np.array([0.4])).p_t)  # one pair: untestable


def test_holm_against_a_hand_computed_example():
    # sorted: .005*4 = .02, .01*3 = .03, .03*2 = .06, .04*1 = .04 -> monotone .06
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(np.array([0.5, 0.9])) == pytest.approx([1.0, 1.0])  # capped at 1
    out = holm(np.array([0.01, np.nan, 0.02]))  # NaN is not in the family and stays NaN
    assert out[0] == pytest.approx(0.02) and np.isnan(out[1]) and out[2] == pytest.approx(0.02)


def _rows(verdicts, lows):
    budgets = ["1", "2", "5", "10"][: len(verdicts)]
    return pd.DataFrame(
        {
            "comparison": "finetune - scratch", "budget": budgets, "a": "finetune",
            "estimate": [lo + 0.01 for lo in lows], "ci_low": lows,
            "ci_high": [lo + 0.02 for lo in lows], "verdict": verdicts, "n_seeds": 10,
            "group": "", "family": "secondary (Holm over 4 tests)", "p_adjusted": 0.01,
        }
    )  # fmt: skip


def test_from_x_on_only_when_every_larger_budget_holds():
    assert from_on([False, True, True, True]) == 1
    assert from_on([True, False, True, True]) == 2
    assert from_on([True, True, False]) is None
    up = "higher"
    s = budget_sentence(_rows(["not resolved", up, up, up], [-0.01, 0.01, 0.02, 0.03]))
    assert "finetune is higher from 2 per class on" in s
    assert "not resolved with 10 seeds at 1 per class (the interval is [-0.010, +0.010]," in s
    s = budget_sentence(_rows([up, up, "not resolved", up], [0.01, 0.01, -0.01, 0.02]))
    assert "from" not in s and "finetune is higher at: 1 per class" in s
    s = budget_sentence(_rows(["not resolved", up], [-0.01, 0.01]))
    assert "from" not in s  # only the largest budget: "at", never "from X on"


def _crossed(sa, sb, se, n_subset, n_train, rng):
    a, b = rng.normal(0, sa, n_subset), rng.normal(0, sb, n_train)
    s, t = np.meshgrid(np.arange(n_subset), np.arange(n_train), indexing="ij")
    y = 0.7 + a[s] + b[t] + rng.normal(0, se, s.shape)
    return y.ravel(), s.ravel(), t.ravel()


def test_variance_split_recovers_a_known_split():
    rng = np.random.default_rng(0)
    a, b = np.array([0.0, 0.1, 0.2]), np.array([0.0, 0.05])  # no residual: exact
    s, t = np.meshgrid(np.arange(3), np.arange(2), indexing="ij")
    split = variance_split((a[s] + b[t]).ravel(), s.ravel(), t.ravel())
    va, vb = a.var(ddof=1), b.var(ddof=1)
    assert split.subset_share == pytest.approx(va / (va + vb))
    assert split.train_share == pytest.approx(vb / (va + vb))
    assert split.residual_share == pytest.approx(0, abs=1e-12) and not split.clipped
    # 4 : 1 : 1 in expectation, estimated on a large crossed design
    big = variance_split(*_crossed(0.02, 0.01, 0.01, 80, 80, rng))
    assert big.subset_share == pytest.approx(4 / 6, abs=0.08)
    assert big.train_share == pytest.approx(1 / 6, abs=0.05)
    assert big.residual_share == pytest.approx(1 / 6, abs=0.03)


def test_variance_split_clips_negative_estimates_and_refuses_an_uncrossed_design():
    y = np.array([0.0, 1.0, 1.0, 0.0])  # row and column means equal: both MS below residual
    split = variance_split(y, np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    assert split.clipped and split.subset_share == 0 and split.residual_share == 1
    seeds = np.arange(4)
    assert variance_split(np.array([0.1, 0.2, 0.3, 0.4]), seeds, seeds) is None  # diagonal
    assert variance_split(y[:3], np.array([0, 0, 1]), np.array([0, 1, 0])) is None  # unbalanced


def test_variance_table_on_runs_with_a_known_split():
    y, s, t = _crossed(0.02, 0.0, 0.0, 4, 3, np.random.default_rng(1))
    runs = pd.DataFrame(
        {"regime": "scratch", "per_class": "5", "seed": s, "subset_seed": s, "train_seed": t}
        | {"status": "ok", "test/acc": y}
    )
    table = variance_table(runs)
    assert table.loc[0, "subset share"] == pytest.approx(1.0)
    assert table.loc[0, "design"] == "4 subsets x 3 train seeds"
    old = runs.drop(columns=["subset_seed", "train_seed"])  # one seed set both
    assert variance_table(old).empty and "not crossed" in NOT_CROSSED


def test_the_t_interval_covers_95_percent_with_three_seeds():
    """The reason for the change: [min, max] of 3 seeds covers ~75%; the t interval ~95%."""
    rng = np.random.default_rng(0)
    draws = rng.normal(0.8, 0.03, (4000, 3))
    covered = [(r.low <= 0.8 <= r.high) for r in map(t_interval, draws)]
    assert np.mean(covered) == pytest.approx(0.95, abs=0.015)
    assert np.mean((draws.min(1) <= 0.8) & (draws.max(1) >= 0.8)) == pytest.approx(0.75, abs=0.02)


def test_holm_matches_statsmodels_when_installed():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(2).uniform(0, 0.2, 12)
    ref = multitest.multipletests(p, method="holm")[1]
    assert holm(p) == pytest.approx(ref)
