import pytest
import torch
from helpers import digits_domain

from lightning_modules.budgets import BudgetError, budget_indices, parse_per_class


@pytest.fixture(scope="module")
def labels() -> torch.Tensor:
    return digits_domain("digits_5to9", (5, 6, 7, 8, 9), "none", 8).y_train


def test_stratified_exact_count_per_class(labels):
    for k in (1, 2, 5, 20):
        idx = budget_indices(labels, k, seed=3)
        assert torch.bincount(labels[idx]).tolist() == [k] * 5


def test_nested_across_budgets(labels):
    grid = [budget_indices(labels, k, seed=7) for k in (1, 2, 5, 10, 20, 50)]
    grid.append(budget_indices(labels, None, seed=7))
    for small, large in zip(grid, grid[1:], strict=False):
        assert set(small.tolist()) < set(large.tolist())


def test_depends_only_on_seed_and_budget(labels):
    assert torch.equal(budget_indices(labels, 5, 0), budget_indices(labels, 5, 0))
    assert not torch.equal(budget_indices(labels, 5, 0), budget_indices(labels, 5, 1))


def test_all_is_the_whole_split(labels):
    assert budget_indices(labels, None, 0).tolist() == list(range(len(labels)))


def test_budget_larger_than_smallest_class_names_the_limit(labels):
    smallest = int(torch.bincount(labels).min())
    with pytest.raises(BudgetError, match=f"smallest class .{smallest} training examples"):
        budget_indices(labels, smallest + 1, 0)


@pytest.mark.parametrize("bad", [0, -3, "zero", 2.5, True])
def test_parse_rejects_nonsense(bad):
    with pytest.raises(BudgetError, match="budget.per_class"):
        parse_per_class(bad)


def test_parse_accepts_all_and_ints():
    assert parse_per_class("all") is None
    assert parse_per_class(5) == 5
    assert parse_per_class("10") == 10


def test_a_budget_too_large_for_the_pool_blames_the_budget_not_the_holdout():
    labels = torch.arange(3).repeat_interleave(10)  # 10 per class
    with pytest.raises(BudgetError, match=r"budget\.per_class=12 is larger"):
        budget_indices(labels, 12, seed=0, reserve=2)
    with pytest.raises(BudgetError, match=r"selection\.per_class=4 is too large.*allowed: 1\.\.2"):
        budget_indices(labels, 8, seed=0, reserve=4)
