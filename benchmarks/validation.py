"""Checks of a composed config that its types alone cannot make, before anything is written.

The schema (:mod:`benchmarks.schema`) says which keys exist and their types; here each value a
run cannot use is refused with one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
from omegaconf import DictConfig, OmegaConf

from benchmarks.baseline_config import problem
from lightning_modules import shifts
from lightning_modules.budgets import BudgetError, parse_per_class
from lightning_modules.domains import DATASETS
from lightning_modules.pretrain import OBJECTIVES, SCHEDULES


class ConfigError(ValueError):
    """A config value that cannot run; the message names the key, the value and what is allowed."""


HEAD_INITS = ("random", "probe")
# Regimes whose name says how the head starts: a config that contradicts the name is refused.
HEAD_INIT_OF = {"finetune": "random", "lp_ft": "probe", "wise_ft": "probe"}
GRADIENT_NODES = ("pretrain", "continued_pretrain", "train")  # steps, batch_size, warmup
PENALISED = ("l2sp", "ewc")  # regimes whose loss the built-in ClassifierModule adds a penalty to
MITIGATIONS = ("wise_ft", *PENALISED)  # each reads the config node of its own name


# Continued pretraining on the target is only "incremental" when the target differs from the
# source; on the same images it is just longer pretraining, and its comparison is meaningless.
NEEDS_DISTINCT_SOURCE = ("incremental_pretrain",)
EVALUATE_ON = ("test", "validation")


def _same_images(dom: DictConfig) -> tuple[Any, ...]:
    """What decides a domain's images and labels (its name does not; its folder does)."""
    classes = tuple(dom.classes) if dom.classes is not None else None
    folders = tuple(
        str(Path(dom[k]).expanduser().resolve())
        if not OmegaConf.is_missing(dom, k) and dom[k]
        else None
        for k in ("root", "test_root")
    )
    split = (dom.test_fraction, dom.split_seed, dom.evaluate_on, dom.validation_fraction)
    return (dom.dataset, classes, dom.transform, *split, folders)


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid; allowed: {allowed}")


def _check_domain(prefix: str, dom: DictConfig) -> None:
    _check(dom.dataset in DATASETS, f"{prefix}.dataset", dom.dataset, ", ".join(DATASETS))
    if dom.dataset not in ("digits", "fractaldb"):
        _check(
            not OmegaConf.is_missing(dom, "root") and dom.root is not None,
            f"{prefix}.root",
            "unset",
            f"the folder that holds the {dom.dataset} files ({prefix}.root=/path)",
        )
    _check(
        dom.in_memory or dom.dataset == "imagefolder",
        f"{prefix}.in_memory",
        False,
        f"true for {dom.dataset} (streaming from files is built for imagefolder trees)",
    )
    _check(dom.workers >= 0, f"{prefix}.workers", dom.workers, "an int >= 0")
    try:
        shifts.parse(OmegaConf.to_container(dom, resolve=True)["transform"])
    except shifts.ShiftError as err:
        raise ConfigError(str(err).replace("data.", f"{prefix}.", 1)) from None
    if dom.dataset == "fractaldb":
        _check(dom.fractal is not None, f"{prefix}.fractal", None, "generation settings")
        f = dom.fractal
        _check(1 <= f.instances <= 100, f"{prefix}.fractal.instances", f.instances, "1..100")
        _check(0 < f.threshold < 1, f"{prefix}.fractal.threshold", f.threshold, "0 < t < 1")
    _check(0 < dom.test_fraction < 1, f"{prefix}.test_fraction", dom.test_fraction, "0 < f < 1")
    allowed = ", ".join(EVALUATE_ON)
    _check(dom.evaluate_on in EVALUATE_ON, f"{prefix}.evaluate_on", dom.evaluate_on, allowed)
    _check(
        0 < dom.validation_fraction < 1,
        f"{prefix}.validation_fraction",
        dom.validation_fraction,
        "0 < f < 1",
    )


def _check_stream(cfg: DictConfig) -> None:
    """A stream has domains, and its last one is the run's target."""
    _check(len(cfg.stream) >= 1, "stream", "{}", "one or more domains (data@stream.<key>=<data>)")
    for key, dom in cfg.stream.items():
        _check_domain(f"stream.{key}", dom)
    last = list(cfg.stream.values())[-1]
    _check(
        _same_images(cfg.data) == _same_images(last),
        "data",
        cfg.data.name,
        f"the stream's last domain ({last.name}) for {cfg.regime.name}",
    )


def _check_comparisons(comp: DictConfig, reads: dict[str, tuple[str, ...]]) -> None:
    """Every regime named by the declared comparisons exists; a pair has two of them."""
    allowed = ", ".join(sorted(reads))
    for key in ("references", "pretrained"):
        for name in comp[key]:
            _check(name in reads, f"comparisons.{key}", name, allowed)
    for pair in comp.pairs:
        _check(len(pair) == 2, "comparisons.pairs", list(pair), "pairs [a, b] of regime names")
        for name in pair:
            _check(name in reads, "comparisons.pairs", name, allowed)


def _check_tracking(cfg: DictConfig) -> None:
    """``train.track_every`` scores the fit in this process, through the built-in module."""
    every = cfg.train.track_every
    if every is None:
        return
    _check(every >= 1, "train.track_every", every, "null or an int >= 1")
    strategy = str(cfg.trainer.strategy)
    _check(
        "ddp" not in strategy,
        "trainer.strategy",
        strategy,
        "a single-process strategy with train.track_every (its callback scores in this process)",
    )
    _check(
        cfg.train.module is None,
        "train.module",
        cfg.train.module,
        "null with train.track_every (it scores the built-in module's backbone)",
    )


def _check_wise_ft(cfg: DictConfig) -> None:
    """``wise_ft``'s curve, its BatchNorm handling, and an alpha the protocol can choose."""
    n = cfg.wise_ft
    alphas = list(n.alphas)
    _check(
        bool(alphas) and all(0 <= a <= 1 for a in alphas),
        "wise_ft.alphas",
        alphas,
        "a non-empty list of numbers in [0, 1]",
    )
    allowed = ("interpolate", "recompute")
    _check(n.batchnorm in allowed, "wise_ft.batchnorm", n.batchnorm, ", ".join(allowed))
    protocol = cfg.selection.protocol
    _check(
        protocol != "cv",
        "selection.protocol",
        protocol,
        "fixed, holdout or oracle for wise_ft (a cv choice of alpha would need a curve per "
        "fold, which is not built)",
    )
    if n.alpha is None:
        _check(
            protocol in ("holdout", "oracle"),
            "wise_ft.alpha",
            None,
            "a number in [0, 1] under selection=fixed (null chooses on a holdout or oracle)",
        )
    else:
        _check(0 <= n.alpha <= 1, "wise_ft.alpha", n.alpha, "null or a number in [0, 1]")


def _check_mitigation(cfg: DictConfig, node: str) -> None:
    """The node of ``wise_ft``, ``l2sp`` or ``ewc`` (benchmarks/interpolating.py, anchoring.py)."""
    _check(
        cfg.train.module is None,
        "train.module",
        cfg.train.module,
        f"null for {node} (it reads the built-in ClassifierModule: its backbone and its loss)",
    )
    if node == "wise_ft":
        _check_wise_ft(cfg)
        return
    n = cfg[node]
    _check(n.strength >= 0, f"{node}.strength", n.strength, "a number >= 0")
    if node == "ewc":
        samples = n.fisher_samples
        _check(
            samples is None or samples >= 1, "ewc.fisher_samples", samples, "null or an int >= 1"
        )


def validate(cfg: DictConfig, reads: dict[str, tuple[str, ...]]) -> None:
    """Reject values the schema's types allow but a run cannot use, before anything is written.

    ``reads`` maps each regime name to the stage nodes it uses (``pretrain``, ``train``,
    ``continued_pretrain``); those must be complete, the others are not looked at.
    """
    _check(cfg.regime.name in reads, "regime.name", cfg.regime.name, ", ".join(sorted(reads)))
    _check(cfg.threads >= 1, "threads", cfg.threads, "an int >= 1")
    for key in ("seed", "subset_seed", "train_seed"):  # numpy rejects negative seeds
        _check(cfg[key] >= 0, key, cfg[key], "an int >= 0")
    _check(cfg.model.image_size >= 8, "model.image_size", cfg.model.image_size, "an int >= 8")
    _check(
        cfg.model.factory is not None or timm.is_model(cfg.model.name),  # a factory: a label
        "model.name",
        cfg.model.name,
        "a timm model name (timm.list_models()), e.g. test_resnet, resnet18",
    )
    trained = set(reads[cfg.regime.name]) - {"stream"}
    if cfg.pretrain.objective == "timm":  # published weights: no pretraining stage to check
        trained.discard("pretrain")
    for node in sorted(trained):
        missing = [k for k in cfg[node] if OmegaConf.is_missing(cfg[node], k)]
        if missing:
            raise ConfigError(
                f"{node}.{missing[0]} is not set; regime {cfg.regime.name} reads it "
                f"(set it in conf/regime/{cfg.regime.name}.yaml or as an override)"
            )
        if node in MITIGATIONS:
            _check_mitigation(cfg, node)
            continue
        if node not in GRADIENT_NODES:  # a baseline's node: svm, knn, label_spreading
            if (bad := problem(node, cfg[node])) is not None:
                _check(False, *bad)
            continue
        for key in ("steps", "batch_size"):
            _check(cfg[node][key] >= 1, f"{node}.{key}", cfg[node][key], "an int >= 1")
        warmup = cfg[node].warmup_fraction
        _check(0 <= warmup < 1, f"{node}.warmup_fraction", warmup, "0 <= fraction < 1")
    if "train" in reads[cfg.regime.name]:
        _check_tracking(cfg)
        name = cfg.regime.name
        allowed = HEAD_INIT_OF.get(name)
        _check(
            cfg.train.head_init in ((allowed,) if allowed else HEAD_INITS),
            "train.head_init",
            cfg.train.head_init,
            f"{allowed} for {name}" if allowed else ", ".join(HEAD_INITS),
        )
    if "continued_pretrain" in reads[cfg.regime.name]:
        c = cfg.continued_pretrain
        _check(0 <= c.replay < 1, "continued_pretrain.replay", c.replay, "0 <= fraction < 1")
        _check(
            c.schedule in SCHEDULES, "continued_pretrain.schedule", c.schedule, ", ".join(SCHEDULES)
        )
    if "stream" in reads[cfg.regime.name]:
        _check_stream(cfg)
    if "pretrain" in reads[cfg.regime.name]:
        p = cfg.pretrain
        objectives = (*OBJECTIVES, "timm")
        _check(p.objective in objectives, "pretrain.objective", p.objective, ", ".join(objectives))
        if p.objective == "simclr":
            _check(
                p.temperature is not None and p.temperature > 0,
                "pretrain.temperature",
                p.temperature,
                "a float > 0",
            )
    _check_comparisons(cfg.comparisons, reads)
    p = cfg.probe
    _check(p.max_iter >= 1, "probe.max_iter", p.max_iter, "an int >= 1")
    _check(p.default_l2 > 0, "probe.default_l2", p.default_l2, "a float > 0")
    _check(all(v > 0 for v in p.l2_grid), "probe.l2_grid", list(p.l2_grid), "floats > 0")
    _check_domain("data", cfg.data)  # first: own_images reads its root from data.root
    _check_domain("source", cfg.source)
    if cfg.regime.name in NEEDS_DISTINCT_SOURCE:
        _check(
            _same_images(cfg.source) != _same_images(cfg.data),
            "data",
            cfg.data.name,
            f"a target domain other than the source ({cfg.source.name}) for {cfg.regime.name}",
        )
    try:
        parse_per_class(cfg.budget.per_class)
    except BudgetError as err:
        raise ConfigError(str(err)) from None
