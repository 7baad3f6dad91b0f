"""Classical baselines on raw pixels (scikit-learn): RBF-SVM, k-NN and label spreading.

They answer "does a deep regime beat a well-tuned classical method on the same labels?", so
each one's hyperparameters are chosen by stratified k-fold cross-validation INSIDE the
labelled budget (k = min(5, smallest class count)); no test image or unlabelled label is ever
looked at. A budget with a single example of some class leaves nothing to validate on, and the
declared defaults of the config are used instead. Ties in CV accuracy go to the candidate listed
first, and candidates are listed smoothest first (small C and gamma, large k), as the linear
probe breaks ties towards the stronger penalty.

Pure functions of numpy arrays: :func:`select` picks the hyperparameters, :func:`fit` fits
with them and :func:`scores` returns per-class scores whose softmax the metrics read.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.semi_supervised import LabelSpreading
from sklearn.svm import SVC

BASELINES = ("svm", "knn", "label_spreading")
MAX_FOLDS = 5
# Per baseline (label spreading: per kernel), each hyperparameter's grid and 1-shot default key.
PARAMS = {
    "svm": {"C": ("c_grid", "default_c"), "gamma": ("gamma_grid", "default_gamma")},
    "knn": {"n_neighbors": ("k_grid", "default_k"), "weights": ("weights_grid", "default_weights")},
    "label_spreading/knn": {"n_neighbors": ("n_neighbors_grid", "default_n_neighbors")},
    "label_spreading/rbf": {"gamma": ("gamma_grid", "default_gamma")},
}
DESCENDING = {"n_neighbors"}  # smoothest first: more neighbours; smaller C and gamma


@dataclass
class Selection:
    """The chosen hyperparameters and how they were chosen (recorded in ``info``)."""

    params: dict[str, Any]
    selected_by: str  # "cv" (inside the budget), "default" (a class has one example) or
    # "given" (every grid has one value, e.g. a tuning trial's: nothing to choose)
    cv_acc: float | None = None
    at_edge: list[str] = field(default_factory=list)  # chosen at an end of a grid of >= 2


def gamma_scale(x: np.ndarray) -> float:
    """scikit-learn's ``gamma="scale"``, 1 / (features x pixel variance), of the labelled set.

    The gamma grids are multiples of it, so one grid means the same at any image size.
    """
    return 1.0 / (x.shape[1] * max(float(x.var()), 1e-12))


def _params(name: str, cfg: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    return PARAMS[f"{name}/{cfg['kernel']}" if name == "label_spreading" else name]


def candidates(name: str, cfg: Mapping[str, Any], max_k: int) -> list[dict[str, Any]]:
    """Every grid combination, smoothest first; for k-NN, k above ``max_k`` is dropped."""
    axes = []
    for param, (grid, _) in _params(name, cfg).items():
        values = list(cfg[grid])
        if all(isinstance(v, int | float) for v in values):
            values = sorted(values, reverse=param in DESCENDING)
        if name == "knn" and param == "n_neighbors":
            values = [k for k in values if k <= max_k] or [min(max_k, *values)]
        axes.append([(param, v) for v in values])
    return [dict(combo) for combo in itertools.product(*axes)]


def defaults(name: str, cfg: Mapping[str, Any], max_k: int) -> dict[str, Any]:
    """The declared hyperparameters for a budget with nothing to validate on."""
    params = {param: cfg[key] for param, (_, key) in _params(name, cfg).items()}
    if name == "knn":
        params["n_neighbors"] = min(int(params["n_neighbors"]), max_k)
    return params


def select(
    name: str,
    cfg: Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    x_unlabelled: np.ndarray | None = None,
    seed: int = 0,
) -> Selection:
    """Stratified k-fold CV over the grid on the labelled ``(x, y)`` only.

    Label spreading's folds also see ``x_unlabelled`` (and the held-out fold) without labels, as
    its final fit does; accuracy is counted on the held-out labelled examples.
    """
    smallest = int(np.bincount(y)[np.unique(y)].min())
    if all(len(cfg[grid]) == 1 for grid, _ in _params(name, cfg).values()):
        # One candidate (a tuning trial fixed every value): nothing to choose, no CV fits.
        given = {param: cfg[grid][0] for param, (grid, _) in _params(name, cfg).items()}
        if name == "knn":
            given["n_neighbors"] = min(int(given["n_neighbors"]), smallest)
        return Selection(given, "given")
    if smallest < 2:
        return Selection(defaults(name, cfg, smallest), "default")
    splitter = StratifiedKFold(min(MAX_FOLDS, smallest), shuffle=True, random_state=seed)
    folds = list(splitter.split(x, y))
    max_k = min(int(np.bincount(y[train])[np.unique(y)].min()) for train, _ in folds)
    best, best_acc = {}, -1.0
    for params in candidates(name, cfg, max_k):
        correct = 0
        for train, val in folds:
            extra = x[val] if x_unlabelled is None else np.concatenate([x[val], x_unlabelled])
            model = fit(name, cfg, params, x[train], y[train], extra)
            correct += int((scores(model, x[val]).argmax(1) == y[val]).sum())
        if correct / len(y) > best_acc:  # strictly better: ties keep the smoother candidate
            best, best_acc = params, correct / len(y)
    return Selection(best, "cv", best_acc, _at_edge(name, cfg, best))


def fit(
    name: str,
    cfg: Mapping[str, Any],
    params: Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    x_unlabelled: np.ndarray | None = None,
) -> Any:
    """Fit one baseline; ``x_unlabelled`` is used by label spreading only (labels -1)."""
    if name == "svm":  # break_ties: predict() is exactly the argmax of scores()
        model = SVC(C=params["C"], gamma=params["gamma"] * gamma_scale(x), break_ties=True)
        return model.fit(x, y)
    if name == "knn":
        return KNeighborsClassifier(params["n_neighbors"], weights=params["weights"]).fit(x, y)
    gamma = params.get("gamma", 1.0) * gamma_scale(x)
    model = LabelSpreading(
        kernel=cfg["kernel"],
        gamma=gamma,
        n_neighbors=params.get("n_neighbors", 7),
        alpha=cfg["alpha"],
        max_iter=cfg["max_iter"],
    )
    if x_unlabelled is None or len(x_unlabelled) == 0:
        return model.fit(x, y)
    x_all = np.concatenate([x, x_unlabelled])
    return model.fit(x_all, np.concatenate([y, np.full(len(x_unlabelled), -1)]))


def scores(model: Any, x: np.ndarray) -> np.ndarray:
    """Per-class scores (N, K) whose argmax is the prediction and whose softmax is a "probability".

    k-NN and label spreading: the log of ``predict_proba`` (vote shares, propagated label mass),
    so the softmax gives those back. SVM: the one-vs-rest decision values (one-vs-one votes plus
    a confidence in (-1/3, 1/3)); their softmax is a monotone score, not a calibrated
    probability (Platt scaling would need its own cross-validation, which 1- to 5-shot budgets
    cannot give), so an SVM's ECE is reported for completeness and must not rank it.
    """
    if isinstance(model, SVC):
        d = model.decision_function(x)
        return np.stack([-d, d], axis=1) if d.ndim == 1 else d
    if isinstance(model, LabelSpreading):
        with np.errstate(invalid="ignore", divide="ignore"):
            proba = model.predict_proba(x)
        # A point whose graph neighbours carry no label mass (a component the labels never
        # reached) gets 0/0: it is given the uniform distribution, i.e. "no information".
        proba[~np.isfinite(proba).all(axis=1)] = 1.0 / proba.shape[1]
    else:
        proba = model.predict_proba(x)
    return np.log(np.clip(proba, 1e-12, 1.0))


def _at_edge(name: str, cfg: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
    """The numeric hyperparameters chosen at the smallest or largest value of their grid."""
    out = []
    for param, (key, _) in _params(name, cfg).items():
        grid = list(cfg[key])
        numeric = all(isinstance(v, int | float) for v in grid)
        if numeric and len(set(grid)) > 1 and params[param] in (min(grid), max(grid)):
            out.append(param)
    return out
