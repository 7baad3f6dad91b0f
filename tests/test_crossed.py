"""Runs that share seeds (subset_seed x train_seed crossed) are not independent pairs."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reports.claims import claim_rows
from reports.crossed import CROSSED, INDEPENDENT, SHARED, crossed_mean, design
from reports.family import Comparison, with_keys
from reports.inference import boot_interval, paired_test, t_interval


def _grid(i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    s, t = np.meshgrid(np.arange(i), np.arange(j), indexing="ij")
    return s.ravel(), t.ravel()


def test_design_tells_independent_crossed_and_shared_seeds_apart():
    assert design(np.arange(5), np.arange(5)) == INDEPENDENT
    assert design(*_grid(3, 2)) == CROSSED
    s, t = _grid(3, 2)
    assert design(s[:-1], t[:-1]) == SHARED  # one cell missing: unbalanced
    assert design(np.array([0, 0, 1, 1]), np.array([0, 1, 2, 3])) == SHARED  # nested


def test_crossed_mean_by_hand_on_a_two_by_two_table():
    # cells [[1, 2], [3, 5]]: MS_subset 6.25, MS_train 2.25, MS_resid 0.25 (worked by hand)
    c = crossed_mean(np.array([1.0, 2.0, 3.0, 5.0]), *_grid(2, 2))
    var = (6.25 + 2.25 - 0.25) / 4
    df = var**2 / ((6.25 / 4) ** 2 + (2.25 / 4) ** 2 + (0.25 / 4) ** 2)
    assert (c.mean, c.se, c.df) == pytest.approx((2.75, var**0.5, df))


def test_the_crossed_interval_covers_95_percent_where_the_naive_one_does_not():
    """5 x 5 crossed runs, both seeds matter: the naive t over 25 runs is far too narrow."""
    rng = np.random.default_rng(0)
    s, t = _grid(5, 5)
    hits = {"crossed": 0, "naive": 0}
    reps = 2000
    for _ in range(reps):
        y = rng.normal(0, 1, 5)[s] + rng.normal(0, 1, 5)[t] + rng.normal(0, 0.5, 25)
        crossed, naive = t_interval(y, (-9, 9), units=(s, t)), t_interval(y, (-9, 9))
        hits["crossed"] += crossed.low <= 0 <= crossed.high
        hits["naive"] += naive.low <= 0 <= naive.high
    assert 0.93 <= hits["crossed"] / reps <= 0.99
    assert hits["naive"] / reps < 0.75


def test_a_paired_test_on_crossed_units_uses_the_crossed_variance_and_no_wilcoxon():
    rng = np.random.default_rng(1)
    s, t = _grid(4, 3)
    a = 0.7 + rng.normal(0, 0.05, 4)[s] + rng.normal(0, 0.02, 3)[t] + rng.normal(0, 0.01, 12)
    b = a - 0.03 + rng.normal(0, 0.01, 12)
    r = paired_test(a, b, units=(s, t))
    c = crossed_mean(a - b, s, t)
    assert r.estimate == pytest.approx(c.mean)
    assert r.p_t == pytest.approx(2 * stats.t.sf(abs(c.mean) / c.se, c.df))
    assert np.isnan(r.p_wilcoxon) and np.isnan(boot_interval(a, units=(s, t))[0])
    # independent units: the ordinary paired t-test, unchanged
    ind = paired_test(a, b, units=(np.arange(12), np.arange(12)))
    assert ind.p_t == pytest.approx(stats.ttest_rel(a, b).pvalue)
    # seeds shared without a balanced design: not tested
    shared = paired_test(a[:-1], b[:-1], units=(s[:-1], t[:-1]))
    assert np.isnan(shared.p_t) and np.isnan(shared.low)


def test_claims_on_a_crossed_sweep_are_tested_with_the_crossed_variance():
    s, t = _grid(3, 3)
    rng = np.random.default_rng(2)
    subset_effect = rng.normal(0, 0.05, 3)[s]
    rows = []
    for arm, shift in (("finetune", 0.05), ("scratch", 0.0)):
        for per_class, base in (("1", 0.5), ("5", 0.8)):
            acc = base + shift + subset_effect + rng.normal(0, 0.01, 9)
            rows += [
                {"arm": arm, "regime": arm, "per_class": per_class, "labelled_per_class": float(
                    per_class), "subset_seed": i, "train_seed": j, "seed": 3 * i + j, "test/acc": y,
                 "status": "ok", "group": "", "variant": ""}
                for i, j, y in zip(s, t, acc, strict=True)
            ]  # fmt: skip
    ok = with_keys(pd.DataFrame(rows))
    found = claim_rows(ok, [Comparison("finetune", "scratch", "")], ["finetune"])
    at_5 = found[found["budget"] == "5"].iloc[0]
    five = ok[ok["per_class"] == "5"]
    cell = five.pivot_table(index=["subset_seed", "train_seed"], columns="arm", values="test/acc")
    d = (cell["finetune"] - cell["scratch"]).to_numpy()
    c = crossed_mean(d, s, t)
    assert at_5["p_raw"] == pytest.approx(2 * stats.t.sf(abs(c.mean) / c.se, c.df))
    assert np.isnan(at_5["p_wilcoxon"]) and at_5["n_seeds"] == 9
