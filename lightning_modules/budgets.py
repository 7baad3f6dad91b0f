"""Label budgets: stratified, nested subsets that depend only on (subset_seed, budget).

Every class's training indices are shuffled once by a generator seeded with (seed, class); a
budget of k examples per class takes the first k of each. So a smaller budget is always a subset
of a larger one, and every regime of the same seed sees exactly the same labelled examples.
"""

from __future__ import annotations

import numpy as np
import torch

ALL = "all"


class BudgetError(ValueError):
    """A budget that the domain cannot supply."""


def parse_per_class(value: object) -> int | None:
    """``'all'`` -> None (the whole train split); a positive int -> itself."""
    if isinstance(value, str) and value.strip().lower() == ALL:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BudgetError(
            f"budget.per_class={value!r} is invalid; allowed: a positive int or 'all'"
        )
    try:
        k = int(value)
    except ValueError:
        raise BudgetError(
            f"budget.per_class={value!r} is invalid; allowed: a positive int or 'all'"
        ) from None
    if k <= 0:
        raise BudgetError(f"budget.per_class={k} is invalid; allowed: a positive int or 'all'")
    return k


def budget_indices(labels: torch.Tensor, per_class: int | None, seed: int) -> torch.Tensor:
    """Indices into ``labels`` of the labelled subset, sorted.

    Args:
        labels: training labels 0..K-1.
        per_class: examples per class, or None for all of them.
        seed: the run's ``subset_seed``; the subset depends on nothing else.

    Raises:
        BudgetError: when a class has fewer than ``per_class`` examples.
    """
    y = labels.numpy()
    classes = np.unique(y)
    if per_class is not None:
        smallest = min(int((y == c).sum()) for c in classes)
        if per_class > smallest:
            raise BudgetError(
                f"budget.per_class={per_class} is larger than the smallest class "
                f"({smallest} training examples); allowed: 1..{smallest} or 'all'"
            )
    chosen = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        order = np.random.default_rng([seed, int(c)]).permutation(len(idx))
        chosen.append(idx[order[:per_class]] if per_class is not None else idx)
    return torch.from_numpy(np.sort(np.concatenate(chosen)))
