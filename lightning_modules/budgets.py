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


def _orders(y: np.ndarray, seed: int) -> list[np.ndarray]:
    """Each class's train indices in the order the seed shuffles them (budgets take a prefix)."""
    out = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        out.append(idx[np.random.default_rng([seed, int(c)]).permutation(len(idx))])
    return out


def budget_indices(
    labels: torch.Tensor, per_class: int | None, seed: int, reserve: int = 0
) -> torch.Tensor:
    """Indices into ``labels`` of the labelled subset, sorted.

    Args:
        labels: training labels 0..K-1.
        per_class: examples per class, or None for all of them.
        seed: the run's ``subset_seed``; the subset depends on nothing else.
        reserve: examples per class kept out of the pool (the ``holdout`` protocol's validation
            examples, :func:`holdout_indices`): the last ``reserve`` of each class's shuffled
            order. A budget is a prefix of the same order, so reserving changes no budget that
            fits beside it: every protocol labels the same examples.

    Raises:
        BudgetError: when a class has fewer than ``per_class + reserve`` examples.
    """
    y = labels.numpy()
    orders = _orders(y, seed)
    smallest = min(len(o) for o in orders)
    if per_class is not None and per_class + reserve > smallest:
        if reserve and per_class <= smallest:  # the budget alone fits: the holdout is too big
            raise BudgetError(
                f"selection.per_class={reserve} is too large: the smallest class has {smallest} "
                f"training examples and budget.per_class={per_class} takes {per_class}; "
                f"allowed: 1..{max(smallest - per_class, 0)}"
            )
        raise BudgetError(
            f"budget.per_class={per_class} is larger than the smallest class "
            f"({smallest} training examples); allowed: 1..{smallest} or 'all'"
        )
    if reserve >= smallest:  # budget 'all': at least one labelled example per class is left
        raise BudgetError(
            f"selection.per_class={reserve} is too large: the smallest class has {smallest} "
            f"training examples; allowed: 1..{smallest - 1}"
        )
    chosen = [o[: len(o) - reserve][:per_class] for o in orders]
    return torch.from_numpy(np.sort(np.concatenate(chosen)))


def holdout_indices(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """The ``holdout`` protocol's validation examples (train indices, sorted).

    The last ``per_class`` of each class's shuffled order, so disjoint from every budget drawn
    with ``reserve=per_class``.

    Like the budgets they depend only on ``subset_seed`` (never the regime or the trial).
    """
    orders = _orders(labels.numpy(), seed)
    return torch.from_numpy(np.sort(np.concatenate([o[len(o) - per_class :] for o in orders])))
