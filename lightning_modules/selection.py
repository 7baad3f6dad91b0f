"""Validation splits for model selection: cross-validation folds inside a budget, and scores.

The ``holdout`` protocol's examples come from :func:`lightning_modules.budgets.holdout_indices`
(beside the budgets, which they must stay disjoint from); ``cv`` folds are drawn here, inside
the labelled budget only, so a true few-shot run never sees a label it was not given (Perez et
al. 2021). Pure functions of tensors: the regimes decide what is fitted on each fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from sklearn.model_selection import StratifiedKFold


@dataclass(frozen=True)
class Folds:
    """Stratified folds of a budget: positions into the labelled subset, not train indices."""

    k: int  # the folds used: the requested k, capped at the smallest class count
    splits: list[tuple[torch.Tensor, torch.Tensor]]  # (fit positions, held-out positions)


def cv_folds(labels: torch.Tensor, k: int, seed: int) -> Folds | None:
    """``k`` stratified folds of ``labels`` (the budget's labels), shuffled by ``seed``.

    A class with fewer than ``k`` examples caps k at its count (every fold must hold each class
    once); a class with fewer than 2 leaves nothing to validate on: None.
    """
    y = labels.cpu().numpy()
    smallest = int(np.bincount(y)[np.unique(y)].min())
    if smallest < 2:
        return None
    used = min(k, smallest)
    splitter = StratifiedKFold(used, shuffle=True, random_state=seed)
    splits = [
        (torch.from_numpy(fit), torch.from_numpy(held))
        for fit, held in splitter.split(np.zeros(len(y)), y)
    ]
    return Folds(used, splits)


def scores(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean cross-entropy in nats) of ``logits`` against ``labels``.

    The cross-entropy is that of the logits' softmax, the same probabilities the test metrics'
    calibration error reads (an SVM's decision values included: a monotone score there).
    """
    logits, labels = logits.detach().cpu().double(), labels.cpu()
    acc = float((logits.argmax(1) == labels).double().mean())
    return acc, float(F.cross_entropy(logits, labels))
