"""Schemas and checks of the classical baselines' nodes: svm, knn, label_spreading, tfidf.

Like ``train``, each is a top-level node filled by its regime's YAML (``conf/regime/<name>.yaml``)
and read only by that regime, so changing a k-NN grid re-runs nothing else. Defaults live in the
YAML; the algorithms are in ``lightning_modules/baselines.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING, DictConfig

KERNELS = ("knn", "rbf")
WEIGHTS = ("uniform", "distance")


@dataclass
class SvmConfig:
    """RBF-SVM: grids cross-validated inside the budget, defaults where a class has one example."""

    c_grid: list[float] = MISSING
    gamma_grid: list[float] = MISSING  # multiples of scikit-learn's gamma="scale"
    default_c: float = MISSING
    default_gamma: float = MISSING


@dataclass
class KnnConfig:
    """k-nearest neighbours: k (capped at the examples per class) and the vote weighting."""

    k_grid: list[int] = MISSING
    weights_grid: list[str] = MISSING
    default_k: int = MISSING
    default_weights: str = MISSING


@dataclass
class LabelSpreadingConfig:
    """Label spreading over the labelled budget and the unlabelled target images."""

    kernel: str = MISSING
    n_neighbors_grid: list[int] = MISSING
    gamma_grid: list[float] = MISSING
    default_n_neighbors: int = MISSING
    default_gamma: float = MISSING
    alpha: float = MISSING
    max_iter: int = MISSING


@dataclass
class TfidfConfig:
    """Text's floor: TF-IDF of character n-grams, then the suite's logistic-regression probe."""

    ngram_max: int = MISSING  # character n-grams of 1..ngram_max characters
    max_features: int = MISSING  # the most frequent n-grams kept


Problem = tuple[str, object, str]  # (key, value, what is allowed)


def _positive(name: str, node: DictConfig, keys: tuple[str, ...]) -> Problem | None:
    """The first of ``keys`` (a number, or a grid of them) that is not > 0."""
    for key in keys:
        if key.endswith("_grid"):
            grid = list(node[key])
            if not grid or not all(v > 0 for v in grid):
                return f"{name}.{key}", grid, "a non-empty list of numbers > 0"
        elif not node[key] > 0:
            return f"{name}.{key}", node[key], "a number > 0"
    return None


def problem(name: str, node: DictConfig) -> Problem | None:
    """The first value of a baseline node that cannot run, or None."""
    if name == "tfidf":
        return _positive(name, node, ("ngram_max", "max_features"))
    if name == "svm":
        return _positive(name, node, ("c_grid", "gamma_grid", "default_c", "default_gamma"))
    if name == "knn":
        grid = list(node.weights_grid)
        if not grid or any(v not in WEIGHTS for v in grid):
            return "knn.weights_grid", grid, f"a list of {', '.join(WEIGHTS)}"
        if node.default_weights not in WEIGHTS:
            return "knn.default_weights", node.default_weights, ", ".join(WEIGHTS)
        return _positive(name, node, ("k_grid", "default_k"))
    if node.kernel not in KERNELS:
        return "label_spreading.kernel", node.kernel, ", ".join(KERNELS)
    if not 0 < node.alpha < 1:
        return "label_spreading.alpha", node.alpha, "0 < alpha < 1"
    keys = ("n_neighbors_grid", "gamma_grid", "default_n_neighbors", "default_gamma", "max_iter")
    return _positive(name, node, keys)
