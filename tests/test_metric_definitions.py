"""METRICS.md worked examples as unit tests: §1.4 (accuracy matrix), §2.5 (curves), §5.1."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reports.compare import iqm, iqm_ci, paired_differences, probability_of_improvement
from reports.curves import aulc, data_multiplier, effective_data, required_n
from reports.transfer import stream_metrics

R = [[0.80, 0.10, 0.12], [0.85, 0.90, 0.20], [0.60, 0.70, 0.92]]
B = [0.10, 0.10, 0.10]
N = [10, 30, 100, 300, 1000]
SCRATCH = [0.20, 0.35, 0.55, 0.70, 0.80]
PRETRAINED = [0.45, 0.62, 0.75, 0.82, 0.86]
X = np.array([[0.91, 0.62], [0.89, 0.60], [0.93, 0.65], [0.90, 0.55], [0.92, 0.61]])
Y = np.array([[0.88, 0.63], [0.90, 0.58], [0.87, 0.57], [0.89, 0.59], [0.86, 0.60]])


def test_accuracy_matrix_metrics_match_the_worked_example():
    m = stream_metrics(np.array(R), np.array(B))
    assert m["average_accuracy"] == pytest.approx(0.74)
    assert m["backward_transfer"] == pytest.approx(-0.20)
    assert m["forward_transfer"] == pytest.approx(0.05)
    assert m["forgetting_max"] == pytest.approx(0.225)  # Chaudhry: task 1 peaked after task 2
    assert m["forgetting_first"] == pytest.approx(0.20)  # Avalanche = -BWT
    assert m["target_gain"] == pytest.approx(0.92 - 0.12)


def test_accuracy_matrix_must_be_square_with_two_stages():
    with pytest.raises(ValueError, match="square"):
        stream_metrics(np.array([[0.5]]), np.array([0.1]))


def test_curves_match_the_worked_example():
    assert aulc(N, SCRATCH) == pytest.approx(0.528, abs=5e-4)
    assert aulc(N, PRETRAINED) == pytest.approx(0.714, abs=5e-4)
    assert required_n(0.70, N, SCRATCH).n == pytest.approx(300)
    assert required_n(0.70, N, PRETRAINED).n == pytest.approx(62.9, abs=0.05)
    assert data_multiplier(0.70, N, SCRATCH, PRETRAINED) == pytest.approx(4.77, abs=5e-3)
    transfer = effective_data(N, SCRATCH, PRETRAINED)
    at100 = transfer[2]
    assert at100.effective == pytest.approx(math.sqrt(300 * 1000))
    assert at100.transferred == pytest.approx(447.7, abs=0.05)
    assert at100.multiplier == pytest.approx(5.48, abs=5e-3)
    assert [t.censored for t in transfer] == ["", "", "", "above", "above"]  # n >= 300
    assert transfer[3].text() == ">700"  # a lower bound, never extrapolated
    assert transfer[0].text() == "45"  # D_E(10) = 54.8: ln-interpolated on scratch


def test_a_curve_that_never_reaches_the_target_is_censored_not_extrapolated():
    assert required_n(0.95, N, SCRATCH).censored == "above"
    assert required_n(0.10, N, SCRATCH).censored == "below"
    assert math.isnan(data_multiplier(0.95, N, SCRATCH, PRETRAINED))
    dip = [0.2, 0.5, 0.4, 0.6, 0.7]  # not monotone: the envelope is inverted, not the dip
    assert required_n(0.45, N, dip).n < 30


def test_rliable_worked_example():
    assert iqm(X) == pytest.approx(0.7633, abs=5e-5)
    assert iqm(Y) == pytest.approx(0.7383, abs=5e-5)
    per_task = [probability_of_improvement(X[:, k], Y[:, k]) for k in range(2)]
    assert per_task == pytest.approx([0.92, 0.66])
    assert np.mean(per_task) == pytest.approx(0.79)
    lo, hi = iqm_ci(X, reps=5_000, seed=0)
    assert lo == pytest.approx(0.747, abs=0.004) and hi == pytest.approx(0.778, abs=0.004)
    assert probability_of_improvement(X[:, 0], X[:, 0]) == 0.5


def test_paired_differences_pair_by_seed_and_skip_failed_runs():
    rows = []
    for seed, (s, f) in enumerate([(0.5, 0.6), (0.7, 0.75), (0.6, 0.7)]):
        rows += [
            {"regime": "scratch", "per_class": "2", "seed": seed, "status": "ok", "test/acc": s},
            {"regime": "finetune", "per_class": "2", "seed": seed, "status": "ok", "test/acc": f},
        ]
    rows.append(
        {"regime": "finetune", "per_class": "2", "seed": 3, "status": "failed", "test/acc": 0.0}
    )
    out = paired_differences(pd.DataFrame(rows)).iloc[0]
    assert out["n_pairs"] == 3
    assert out["diff_vs_scratch_mean"] == pytest.approx((0.1 + 0.05 + 0.1) / 3)
    ref = stats.ttest_rel([0.6, 0.75, 0.7], [0.5, 0.7, 0.6]).confidence_interval()  # Student t
    assert out["diff_vs_scratch_ci_low"] == pytest.approx(ref.low)
    assert out["diff_vs_scratch_ci_high"] == pytest.approx(ref.high)
    assert out["p_improvement_vs_scratch"] == pytest.approx(7 / 9)


def _runs(cells):
    rows = []
    for (regime, per_class, n), accs in cells.items():
        for seed, acc in enumerate(accs):
            rows.append(
                {
                    "regime": regime,
                    "per_class": per_class,
                    "labelled_per_class": n,
                    "seed": seed,
                    "status": "ok",
                    "test/acc": acc,
                }
            )
    return pd.DataFrame(rows)


def test_data_efficiency_uses_the_common_grid_and_counts_seeds():
    from reports.efficiency import data_efficiency

    runs = _runs(
        {
            (
                "scratch",
                "1",
                1,
            ): [0.2, 0.3],
            ("scratch", "10", 10): [0.5, 0.6],
            ("scratch", "100", 100): [0.8, 0.9],
            ("finetune", "1", 1): [0.5, 0.5],
            ("finetune", "100", 100): [0.9, 0.9],  # budget 10 missing for finetune
        }
    )
    eff = data_efficiency(runs).set_index("regime")
    assert eff.loc["finetune", "budgets"] == "1,100"  # the grid every regime has
    assert eff.loc["scratch", "aulc"] == pytest.approx((0.25 + 0.85) / 2)
    assert eff.loc["finetune", "aulc_seeds"] == 2
    one_seed = data_efficiency(runs[runs["seed"] == 0]).set_index("regime")
    assert np.isnan(one_seed.loc["scratch", "aulc_ci_low"])  # one seed: no interval
    assert one_seed.loc["finetune", "dt_100_censored"] == "above"  # beyond scratch's best
    # scratch never reaches 90%: its n is a lower bound and the multiplier is not defined
    assert eff.loc["scratch", "n_req_0.9"] == ">100" and np.isnan(
        eff.loc["finetune", "multiplier_0.9"]
    )
