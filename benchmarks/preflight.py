"""Checks that need the data: domains that build, budgets they can supply, weights that fit.

The schema and :func:`benchmarks.validation.validate` check what a config says; whether
``budget.per_class=500`` fits the smallest class, or whether ``source.root`` holds images, only
the loaded data can say. A single run checks it before training (``benchmarks/run.py``); a sweep
checks every job before the first one trains (``benchmarks/sweeper.py``), loading each distinct
domain once (the domain builders are cached per process).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from benchmarks.config import ConfigError
from benchmarks.inputs import domain, new_backbone
from benchmarks.regimes import READS
from benchmarks.tuning import resolve
from lightning_modules.backbones import ModelError, load_checkpoint
from lightning_modules.budgets import (
    BudgetError,
    budget_indices,
    holdout_indices,
    parse_per_class,
)
from lightning_modules.datasets import load
from lightning_modules.domains import Domain, DomainError, build_domain


def prepare(cfg: DictConfig) -> tuple[Domain, Domain, torch.Tensor, torch.Tensor | None]:
    """Source and target domains, the labelled subset and the holdout examples.

    The labelled subset indexes the target's train split; the ``holdout`` protocol's validation
    examples too (None for the other protocols).

    Also builds every ``stream`` domain of a regime that reads it, and checks the budget there
    and on the source (continual pretraining fits a budget probe on each), and the ``control``
    corpus of a regime that reads it.

    Raises:
        ConfigError: one line naming the key, the value and what is allowed.
    """
    try:
        source = domain(cfg.source, cfg)
        target = domain(cfg.data, cfg)
        per_class = parse_per_class(cfg.budget.per_class)
        holdout, reserve = None, 0
        if cfg.selection.protocol == "holdout":
            reserve = cfg.selection.per_class
            holdout = holdout_indices(target.y_train, reserve, cfg.subset_seed)
        labelled = budget_indices(target.y_train, per_class, cfg.subset_seed, reserve)
        if cfg.regime.name == "continual_pretrain":
            for dom in (source, *(domain(cfg.stream[k], cfg) for k in cfg.stream)):
                _budget_fits(dom, per_class, cfg.subset_seed)
        if "control" in READS[cfg.regime.name] and cfg.control is not None:  # not after training
            domain(cfg.control, cfg)
        if cfg.pretrain.objective == "timm" and cfg.model.checkpoint is not None:
            load_checkpoint(new_backbone(cfg, 0), cfg.model.checkpoint)  # fits, before training
    except (DomainError, BudgetError, ModelError) as err:
        raise ConfigError(str(err)) from None
    return source, target, labelled, holdout


def _budget_fits(dom: Domain, per_class: int | None, seed: int) -> None:
    try:
        budget_indices(dom.y_train, per_class, seed)
    except BudgetError as err:
        raise BudgetError(f"{err} (domain {dom.name})") from None


def release() -> None:
    """Drop the decoded domains: a sweep whose jobs run in other processes never reuses them.

    The sweeper's process would otherwise hold every domain it checked (4.9 GB for STL-10's
    unlabeled split) for the whole sweep, beside the workers' own copies.
    """
    build_domain.cache_clear()
    load.cache_clear()


def signature(cfg: DictConfig) -> str:
    """What :func:`prepare`'s verdict depends on, to check each distinct job once.

    The subset seed only picks which examples are labelled, never whether the budget fits.
    """
    nodes = ("source", "data", "stream", "control", "model", "budget", "paths", "selection")
    parts = {k: OmegaConf.to_container(cfg[k], resolve=True) if cfg[k] else None for k in nodes}
    parts["regime"], parts["objective"] = cfg.regime.name, cfg.pretrain.objective
    return json.dumps(parts, sort_keys=True, default=str)


Compose = Callable[..., DictConfig]  # a config loader's load_sweep_config
Failure = tuple[tuple[str, ...], str]  # (the job's overrides, one line)


def check_jobs(
    compose: Compose, master: DictConfig, batch: Sequence[Sequence[str]]
) -> tuple[dict[tuple[str, ...], DictConfig], Failure | None]:
    """Compose, validate and :func:`prepare` each job, in order, until the first that fails.

    Returns the composed configs by overrides and the first failure, if any. Each distinct
    :func:`signature` is prepared once. Runs in the sweep's process or, for a parallel launcher,
    on a share of the batch in each worker (``benchmarks/launcher.py``).
    """
    composed: dict[tuple[str, ...], DictConfig] = {}
    checked: set[str] = set()
    for overrides in batch:
        cfg = compose(master_config=master, sweep_overrides=list(overrides))
        try:
            applied, _ = resolve(cfg, READS)  # a trial's values are checked like any others
            sig = signature(applied)  # a JSON dump of seven resolved nodes: once per job
            if sig not in checked:
                prepare(applied)
                checked.add(sig)
        except ConfigError as err:
            return composed, (tuple(overrides), f"{err} (job: {' '.join(overrides)})")
        composed[tuple(overrides)] = cfg
    return composed, None
