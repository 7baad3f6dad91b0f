"""Selection of tuning trials in the report, on hand-made tuned records in the record contract.

The records are what the run side writes (``record.selection``, ``val/acc``, ``val/loss``), built
by hand so every chosen trial, oracle trial and expected maximum is known from the construction.
"""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from helpers import synthetic_record, write_dict

from reports import selection
from reports.build import build_report
from reports.collect import DuplicateRunsError, collect

LRS = [0.001, 0.003, 0.01, 0.03]  # the grid of every regime: train.lr, default 0.003 (trial 1)
DEFAULT = 1
OFFSET = {"scratch": 0.0, "finetune": 0.2}
SEEDS = (0, 1, 2)
# budget 5 (validation scored): trial 3 has the best test accuracy and the worst validation score
VAL = {0: [0.5, 0.8, 0.7, 0.2], 1: [0.5, 0.8, 0.7, 0.2], 2: [0.5, 0.8, 0.9, 0.2]}
TEST = {"5": [0.40, 0.50, 0.45, 0.60], "1": [0.20, 0.30, 0.25, 0.35]}


def _test_acc(regime: str, k: str, seed: int, trial: int) -> float:
    return OFFSET[regime] + TEST[k][trial] + 0.01 * seed


def _selection(trial, defaulted, protocol="cv"):
    return {
        "protocol": protocol,
        "trial": trial,
        "trials": None if trial is None else len(LRS),
        "hparams": {} if trial is None else {"train.lr": LRS[trial]},
        "extra_labels": 0,
        "per_class": None,
        "folds": 3,
        "defaulted": defaulted,
        "is_default": trial is None or trial == DEFAULT,
    }


def tuned_record(regime: str, k: str, seed: int, trial: int) -> dict:
    """One trial's record: at budget 1 cv has a class with one example, so no validation score."""
    rec = synthetic_record(regime, int(k), seed, _test_acc(regime, k, seed, trial))
    if k == "5":
        rec["metrics"] |= {"val/acc": VAL[seed][trial], "val/loss": 1 - VAL[seed][trial]}
    rec["config"] |= {
        "train": {"lr": LRS[trial], "steps": 150},
        # only the run's own regime's grid: the grids never split the regimes into groups
        "tuning": {"trial": trial, "trials": len(LRS), "grids": {regime: {"train.lr": LRS}}},
        "selection": {"protocol": "cv", "folds": 3},
    }
    rec["subset_seed"] = rec["train_seed"] = seed
    rec["config_hash"] += f"t{trial}"
    rec["job"] = {
        "overrides": [f"regime={regime}", f"budget.per_class={k}", f"tuning.trial={trial}"]
    }
    rec["selection"] = _selection(trial, defaulted=k == "1")
    return rec


@pytest.fixture
def tuned_sweep(tmp_path):
    """2 regimes x 2 budgets x 3 seeds x 4 trials."""
    for regime, k, seed, trial in itertools.product(OFFSET, TEST, SEEDS, range(len(LRS))):
        write_dict(
            tmp_path / "s" / f"{regime}-{k}-{seed}-{trial}" / "record.json",
            tuned_record(regime, k, seed, trial),
        )
    return tmp_path / "s"


def _chosen(runs: pd.DataFrame, index: pd.Index) -> dict:
    rows = runs.loc[index]
    return {(r.regime, r.per_class, r.subset_seed): r.trial for r in rows.itertuples()}


def test_selection_takes_the_validation_argmax_and_never_reads_test(tuned_sweep):
    runs, _, _ = collect([tuned_sweep])
    assert set(runs["arm"]) == set(OFFSET)  # the trials of one regime are one arm
    chosen = _chosen(runs, selection.choose(runs))
    for regime, seed in itertools.product(OFFSET, SEEDS):
        assert chosen[(regime, "5", seed)] == int(np.argmax(VAL[seed]))  # never the planted 3
        assert chosen[(regime, "1", seed)] == DEFAULT  # defaulted: the declared default
    oracle = _chosen(runs, selection.choose_oracle(runs))
    assert set(oracle.values()) == {3}  # the planted trial is the oracle's everywhere
    # test accuracies reversed within every unit, or gone: the validation choice does not move
    reversed_test = runs.assign(**{"test/acc": runs["test/acc"].to_numpy()[::-1]})
    no_test = runs.drop(columns=[c for c in runs if c.startswith("test/")])
    assert _chosen(runs, selection.choose(reversed_test)) == chosen
    assert _chosen(runs, selection.choose(no_test)) == chosen


def test_trials_are_samples_of_one_cell_only_once_each(tuned_sweep):
    copy = tuned_sweep / "copy" / "record.json"
    write_dict(copy, tuned_record("finetune", "5", 2, 3))  # trial 3 of that unit read twice
    with pytest.raises(DuplicateRunsError, match=r"train_seed=2, trial=3: "):
        collect([tuned_sweep])


def _unit(val, loss, test, defaulted=False, default=None):
    n = len(val)
    return pd.DataFrame(
        {
            "arm": "a", "per_class": "5", "subset_seed": 0, "train_seed": 0, "status": "ok",
            "trial": range(n), "val/acc": val, "val/loss": loss, "test/acc": test,
            "defaulted": defaulted, "is_default": [i == default for i in range(n)],
        }
    )  # fmt: skip


def test_ties_go_to_lower_validation_loss_then_lower_trial_and_failures_are_never_chosen():
    unit = _unit([0.7, 0.9, 0.9, 0.9], [0.3, 0.2, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4])
    assert unit.loc[selection.choose(unit), "trial"].tolist() == [2]  # loss, then index
    unit.loc[2, "status"] = "failed"
    assert unit.loc[selection.choose(unit), "trial"].tolist() == [3]
    assert set(selection.selected(unit).index) == {2, 3}  # the failure stays visible
    untuned = unit.assign(trial=math.nan)
    assert selection.selected(untuned).equals(untuned)  # untuned runs pass through


def test_a_unit_without_validation_scores_takes_its_default_trial():
    unit = _unit([math.nan] * 3, [math.nan] * 3, [0.9, 0.1, 0.5], default=1)
    assert unit.loc[selection.choose(unit), "trial"].tolist() == [1]
    flagged = _unit([0.9, 0.1, 0.5], [0.1, 0.1, 0.1], [0.9, 0.1, 0.5], defaulted=True, default=2)
    assert flagged.loc[selection.choose(flagged), "trial"].tolist() == [2]
    curve = selection.unit_curves(flagged)
    assert curve["expected"].tolist() == [0.5, 0.5, 0.5]  # always the default: flat


def _brute_force(val, loss, test, n, replace):
    """Mean over every draw of n trials of the test accuracy of its validation-best trial."""
    draws = (
        itertools.product(range(len(val)), repeat=n)
        if replace
        else itertools.combinations(range(len(val)), n)
    )
    picked = [test[min(d, key=lambda i: (-val[i], loss[i], i))] for d in draws]
    return float(np.mean(picked))


@pytest.mark.parametrize("replace", [False, True])
def test_expected_maximum_equals_brute_force_enumeration_with_ties(replace):
    val = [0.5, 0.7, 0.7, 0.2, 0.7, 0.5]  # ties of three and of two
    loss = [1.0, 0.5, 0.5, 2.0, 0.4, 1.0]  # trials 1 and 2 tie on loss too: index decides
    test = [0.61, 0.52, 0.73, 0.95, 0.44, 0.58]
    curve = selection.unit_curves(_unit(val, loss, test), replace=replace)["expected"]
    expected = [_brute_force(val, loss, test, n, replace) for n in range(1, len(val) + 1)]
    assert curve.to_numpy() == pytest.approx(expected, abs=1e-12)
    assert curve.iloc[0] == pytest.approx(np.mean(test))  # one draw: any trial
    if not replace:  # all N drawn: exactly the validation choice (trial 4)
        assert curve.iloc[-1] == pytest.approx(test[4])


def test_tuned_report_shows_chosen_and_oracle_tuning_curves_and_hparams(
    tuned_sweep, tmp_path, monkeypatch
):
    monkeypatch.setenv("REGIMEBENCH_PDF", "matplotlib")  # the fallback pages hold the tables too
    out = build_report([tuned_sweep], tmp_path / "report").parent
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 48 and runs["selected"].sum() == runs["oracle"].sum() == 12
    summary = pd.read_csv(out / "summary.csv").set_index(["arm", "per_class"])
    assert set(summary.index.get_level_values("arm")) == set(OFFSET)
    assert (summary["n"] == 3).all()
    labels = {str(k): set(v) for k, v in summary["selection"].groupby(level="per_class")}
    assert labels["5"] == {"cv (k=3)"}
    assert labels["1"] == {"cv (no fold: a class has < 2 labels, declared defaults)"}
    chosen5 = [_test_acc("scratch", "5", s, int(np.argmax(VAL[s]))) for s in SEEDS]
    assert summary.loc[("scratch", 5), "test/acc_mean"] == pytest.approx(np.mean(chosen5))
    for name in ("findings.csv", "data_efficiency.csv"):
        table = pd.read_csv(out / name)
        assert len(table) and table["selection"].str.contains("cv (k=3)", regex=False).all()

    gap = pd.read_csv(out / "oracle_gap.csv").set_index(["arm", "per_class"])
    oracle5 = [_test_acc("scratch", "5", s, 3) for s in SEEDS]
    row = gap.loc[("scratch", 5)]
    assert row["chosen_mean"] == pytest.approx(np.mean(chosen5))
    assert row["oracle_mean"] == pytest.approx(np.mean(oracle5))
    diffs = np.subtract(oracle5, chosen5)
    assert row["gap_mean"] == pytest.approx(diffs.mean())
    half = 4.302652729911275 * diffs.std(ddof=1) / np.sqrt(3)  # t_{0.975, 2}
    assert (row["gap_ci_low"], row["gap_ci_high"]) == pytest.approx(
        (diffs.mean() - half, diffs.mean() + half)
    )
    assert gap.loc[("finetune", 1), "n_defaulted"] == 3

    curves = pd.read_csv(out / "tuning_curves.csv").set_index(["arm", "per_class", "n"])
    assert curves.loc[("scratch", 5, 4), "expected_test_acc"] == pytest.approx(np.mean(chosen5))
    all_trials = [_test_acc("scratch", "5", s, t) for s in SEEDS for t in range(4)]
    assert curves.loc[("scratch", 5, 1), "expected_test_acc"] == pytest.approx(np.mean(all_trials))
    assert (out / "figures" / "tuning_curves.png").stat().st_size > 0

    hps = pd.read_csv(out / "selected_hparams.csv", dtype={"mode": str}).set_index(
        ["arm", "per_class"]
    )
    assert hps.loc[("scratch", 5), ["key", "mode", "count", "n_units"]].tolist() == [
        "train.lr", "0.003", 2, 3,
    ]  # fmt: skip
    page = (out / "index.html").read_text()
    assert "Chosen protocol and oracle, side by side" in page
    assert "train.lr=0.003 (2/3)" in page and "train.lr=0.003 (3/3)" in page
    assert page.count('alt="tuning-budget curves"') == 1
    assert "Protocol: cv (k=3)" in page and "(12 of 48 runs)" in page
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")


def _plain_sweep(root, fixed_block: bool):
    for regime, k, seed in itertools.product(OFFSET, ("1", "5"), SEEDS):
        rec = synthetic_record(regime, int(k), seed, _test_acc(regime, k, seed, seed % 4))
        if fixed_block:  # a fixed-protocol record of the new run side: untuned, labelled so
            rec["selection"] = _selection(None, defaulted=False, protocol="fixed")
        write_dict(root / f"{regime}-{k}-{seed}" / "record.json", rec)
    return root


def test_an_untuned_sweep_reports_as_before(tmp_path):
    plain = build_report([_plain_sweep(tmp_path / "p", False)], tmp_path / "rp").parent
    fixed = build_report([_plain_sweep(tmp_path / "f", True)], tmp_path / "rf").parent
    for name in ("summary.csv", "findings.csv", "data_efficiency.csv", "runs.csv"):
        before = pd.read_csv(plain / name)
        assert not {"selection", "protocol", "trial", "selected"} & set(before.columns), name
        after = pd.read_csv(fixed / name)
        new = [c for c in after.columns if c not in before.columns]
        assert set(new) <= {"selection", "protocol", "trial", "trials", "extra_labels"} | {
            "defaulted",
            "is_default",
        }
        assert set(new) >= {"selection"}
        keep = [c for c in before.columns if c != "run_dir"]
        pd.testing.assert_frame_equal(before[keep], after[keep])  # the same numbers
        if name != "runs.csv":
            assert (after["selection"] == "fixed").all()
    page = (plain / "index.html").read_text()
    assert "Model selection" not in page and not (plain / "oracle_gap.csv").exists()


@pytest.mark.parametrize("regime", ["svm", "linear_probe", "label_spreading"])
def test_real_trials_of_a_cv_grid_regime_stay_one_arm(compose_cfg, regime):
    """A trial of a CV grid key sets the key and its 1-shot default (svm.c_grid and
    svm.default_c): built from the real digits_tuned configs, the 8 trials are one arm."""
    from omegaconf import OmegaConf

    from benchmarks import tuning
    from benchmarks.regimes import READS
    from common.records import RunRecord
    from reports.arms import arm_labels

    records = []
    for trial in range(8):
        cfg = compose_cfg("experiment=digits_tuned", f"regime={regime}", f"tuning.trial={trial}")
        applied, facts = tuning.resolve(cfg, READS)
        rec = synthetic_record(regime, 5, 0, 0.5)
        rec |= {
            "config": OmegaConf.to_container(applied, resolve=True),
            "reads": list(READS[regime]),
            "selection": facts,
        }
        records.append(RunRecord.from_dict(rec))
    labels = arm_labels(records)
    assert labels["arm"].tolist() == [regime] * 8, labels["arm"].unique()
    assert len(records[0].selection["config_keys"]) > len(records[0].selection["hparams"])
