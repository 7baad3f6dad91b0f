"""The scikit-learn baselines: CV inside the budget only, declared 1-shot defaults, checks."""

import dataclasses

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from benchmarks.config import ConfigError
from benchmarks.regimes import REGIMES
from benchmarks.run import execute, run_context
from lightning_modules import baselines

BASELINES = ("svm", "knn", "label_spreading")


def _grid_values(cfg, name: str, param: str) -> list:
    node = OmegaConf.to_container(cfg[name], resolve=True)
    return list(node[baselines._params(name, node)[param][0]])


def _with_labels_scrambled(ctx):
    """The same run with the test labels and every non-budget train label permuted."""
    gen = torch.Generator().manual_seed(123)
    y_test = ctx.target.y_test[torch.randperm(len(ctx.target.y_test), generator=gen)]
    y_train = ctx.target.y_train.clone()
    rest = torch.ones(len(y_train), dtype=torch.bool)
    rest[ctx.labelled] = False
    y_train[rest] = y_train[rest][torch.randperm(int(rest.sum()), generator=gen)]
    target = dataclasses.replace(ctx.target, y_train=y_train, y_test=y_test)
    return dataclasses.replace(ctx, target=target, seconds={})


@pytest.mark.parametrize("name", BASELINES)
def test_cv_chooses_in_the_grid_from_the_labelled_examples_only(name, compose_cfg):
    cfg = compose_cfg(f"regime={name}", "budget.per_class=5")
    ctx = run_context(cfg)
    outcome = REGIMES[name](ctx)
    scrambled = REGIMES[name](_with_labels_scrambled(ctx))
    assert outcome.info["baseline_selected_by"] == "cv"
    assert outcome.info["baseline_params"] == scrambled.info["baseline_params"]
    assert outcome.info["baseline_cv_acc"] == scrambled.info["baseline_cv_acc"]
    assert outcome.metrics["test/acc"] != scrambled.metrics["test/acc"]  # the plant took effect
    for param, value in outcome.info["baseline_params"].items():
        assert value in _grid_values(cfg, name, param)


@pytest.mark.parametrize(
    ("name", "override", "expected"),
    [
        ("svm", "svm.default_c=7.0", {"C": 7.0, "gamma": 1.0}),
        ("knn", "knn.default_weights=distance", {"n_neighbors": 1, "weights": "distance"}),
        ("label_spreading", "label_spreading.default_n_neighbors=4", {"n_neighbors": 4}),
    ],
)
def test_one_shot_uses_the_declared_default(name, override, expected, compose_cfg, tmp_path):
    record = execute(compose_cfg(f"regime={name}", "budget.per_class=1", override), tmp_path)
    assert record.status == "ok", record.error
    assert record.info["baseline_selected_by"] == "default"
    assert record.info["baseline_params"] == expected
    assert set(record.metrics) == {"test/acc", "test/f1_macro", "test/ece"}


def test_knn_never_asks_for_more_neighbours_than_examples_per_class():
    cfg = {"k_grid": [1, 3, 5, 10], "weights_grid": ["uniform"]}
    assert [c["n_neighbors"] for c in baselines.candidates("knn", cfg, max_k=4)] == [3, 1]
    x = np.random.default_rng(0).normal(size=(12, 4))
    y = np.repeat(np.arange(3), 4)  # 4 per class, 4 folds: 3 per class in each training part
    assert baselines.select("knn", cfg, x, y).params["n_neighbors"] <= 3


def test_a_knn_trial_whose_k_the_budget_caps_records_the_k_it_ran(compose_cfg, tmp_path):
    """At 2 per class a k = 10 trial runs k = 2: the record and the hp/ column say 2, not 10."""
    from reports.collect import selection_columns

    grid = "+tuning.grids.knn={knn.k_grid:[1,10],knn.weights_grid:[uniform]}"
    trials = ["tuning.trials=2", grid, "budget.per_class=2"]
    capped = execute(compose_cfg("regime=knn", *trials, "tuning.trial=1"), tmp_path / "k10")
    assert capped.selection["hparams"] == {"knn.k_grid": 10, "knn.weights_grid": "uniform"}
    assert capped.info["baseline_params"]["n_neighbors"] == 2
    assert capped.selection["used"] == {"knn.k_grid": 2}
    assert selection_columns(capped.selection)["hp/knn.k_grid"] == 2
    uncapped = execute(compose_cfg("regime=knn", *trials, "tuning.trial=0"), tmp_path / "k1")
    assert "used" not in uncapped.selection


def test_svm_scores_argmax_is_its_prediction():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 5)), np.repeat(np.arange(3), 20)
    x[:, 0] += y
    model = baselines.fit("svm", {}, {"C": 1.0, "gamma": 1.0}, x, y)
    test = rng.normal(size=(40, 5))
    assert (baselines.scores(model, test).argmax(1) == model.predict(test)).all()


@pytest.mark.parametrize(
    ("name", "override", "match"),
    [
        ("svm", "svm.c_grid=[]", r"svm.c_grid=\[\] is invalid; allowed: a non-empty list"),
        ("svm", "svm.default_gamma=0", "svm.default_gamma=0.0 is invalid; allowed: a number > 0"),
        ("knn", "knn.weights_grid=[uniform,far]", "knn.weights_grid=.* allowed: a list of"),
        ("knn", "knn.k_grid=[0,3]", r"knn.k_grid=\[0, 3\] is invalid"),
        ("label_spreading", "label_spreading.kernel=poly", "allowed: knn, rbf"),
        ("label_spreading", "label_spreading.alpha=1.5", "allowed: 0 < alpha < 1"),
    ],
)
def test_nonsense_baseline_values_are_one_line_errors(name, override, match, compose_cfg, tmp_path):
    with pytest.raises(ConfigError, match=match):
        execute(compose_cfg(f"regime={name}", override), tmp_path / "job")
    assert not (tmp_path / "job").exists()
