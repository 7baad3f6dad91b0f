"""Typed schemas of the config, registered in Hydra's ConfigStore.

The YAML files under ``conf/`` fill these dataclasses; struct mode stays on, so a misspelt key
fails at composition with Hydra's "Key ... is not in struct" instead of being silently ignored.
Defaults live in the YAML files; the schema says which keys exist and their types (``MISSING``
where a YAML must set the value). :func:`validate` checks what types alone cannot.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from benchmarks.baseline_config import KnnConfig, LabelSpreadingConfig, SvmConfig, problem
from lightning_modules import shifts
from lightning_modules.budgets import BudgetError, parse_per_class
from lightning_modules.domains import DATASETS
from lightning_modules.pretrain import OBJECTIVES, SCHEDULES

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"  # the YAML this schema types


@functools.lru_cache(maxsize=1)
def conf_fingerprint() -> str:
    """SHA-256 of every config file and the schema: what composition reads besides overrides."""
    digest = hashlib.sha256()
    for path in sorted([*CONF_DIR.rglob("*.yaml"), Path(__file__)]):
        digest.update(str(path.relative_to(CONF_DIR.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class ConfigError(ValueError):
    """A config value that cannot run; the message names the key, the value and what is allowed."""


@dataclass
class FractalConfig:
    """FractalDB generation (``dataset: fractaldb``); see ``lightning_modules/fractaldb.py``."""

    categories: int = MISSING
    instances: int = MISSING  # per category, up to 100 (25 weightings x 4 flips)
    size: int = MISSING  # render side length, pixels
    points: int = MISSING  # chaos-game points per image
    threshold: float = MISSING  # filling-rate filter: minimum share of covered pixels
    seed: int = MISSING


@dataclass
class DomainConfig:
    """A domain: which dataset (and where its files are), which classes, which shifts."""

    name: str = MISSING
    dataset: str = MISSING
    classes: list[int] | None = None
    transform: Any = MISSING  # a shift name or a list of them (lightning_modules/shifts.py)
    test_fraction: float = MISSING
    split_seed: int = MISSING
    root: str | None = None  # folder of the files (torchvision sets, imagefolder)
    download: bool = False  # torchvision: fetch into root where a network exists
    test_root: str | None = None  # imagefolder: a separate test tree (else a seeded split)
    unlabeled: bool = False  # stl10: add the unlabeled split for self-supervised stages
    in_memory: bool = True  # imagefolder: false = decode files in DataLoader workers on demand
    workers: int = 2  # DataLoader worker processes for in_memory=false
    fractal: FractalConfig | None = None
    # test: evaluate on the test split. validation: a stratified validation_fraction of the train
    # split stands in for it (lightning_modules/datasets.held_out): the view recipes are chosen on.
    evaluate_on: str = "test"
    validation_fraction: float = 0.2


@dataclass
class ModelConfig:
    """A timm backbone and the image side length every domain is resized to."""

    name: str = MISSING
    image_size: int = MISSING
    in_chans: int | None = None  # channels every domain is converted to; None = the target's
    drop_rate: float | None = None
    checkpoint: str | None = None  # pretrain=timm: a local weights file (.pt/.pth/.safetensors)


@dataclass
class PretrainConfig:
    """The pretraining stage on the source domain; cached by hash of it, source, model, seed."""

    objective: str = MISSING
    steps: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    warmup_fraction: float = MISSING
    temperature: float | None = None


@dataclass
class ContinuedPretrainConfig:
    """Further self-supervised pretraining on the target domain's unlabelled train split."""

    steps: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    warmup_fraction: float = MISSING
    replay: float = MISSING  # share of each batch drawn from the domains of earlier stages
    schedule: str = MISSING  # rewarm (warm-up, cosine decay) | constant


@dataclass
class TrainConfig:
    """Gradient training of backbone + head on the labelled budget (set in optimiser steps)."""

    steps: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    head_lr: float = MISSING
    weight_decay: float = MISSING
    warmup_fraction: float = MISSING
    augment: bool = MISSING
    head_init: str = MISSING


HEAD_INITS = ("random", "probe")
# Regimes whose name says how the head starts: a config that contradicts the name is refused.
HEAD_INIT_OF = {"finetune": "random", "lp_ft": "probe"}
GRADIENT_NODES = ("pretrain", "continued_pretrain", "train")  # steps, batch_size, warmup


@dataclass
class RegimeConfig:
    """Which regime function runs; the stage settings it reads are top-level nodes.

    ``train``, ``pretrain`` and ``continued_pretrain`` sit beside ``regime`` rather than inside
    it, so one override (``train.steps=50``) applies across a sweep of regimes; each regime's
    YAML fills the nodes it reads and :data:`benchmarks.regimes.READS` says which those are.
    """

    name: str = MISSING


@dataclass
class BudgetConfig:
    """Labelled target examples per class: a positive int or the string ``all``."""

    per_class: Any = MISSING


@dataclass
class ProbeConfig:
    """Linear probe (L-BFGS logistic regression): l2 grid for cross-validation and its fallback."""

    l2_grid: list[float] = field(default_factory=list)
    default_l2: float = MISSING
    max_iter: int = MISSING


@dataclass
class TrainerConfig:
    """Every fit's ``lightning.Trainer`` (``hydra.utils.instantiate``; see benchmarks/fitting.py).

    The run sets ``max_steps`` (the stage's steps), the loggers' folders and, with
    ``checkpoint_every``, the checkpoint callback; ``channels_last`` and ``checkpoint_every`` are
    the suite's own keys, the rest are Trainer arguments.
    """

    _target_: str = "lightning.Trainer"
    accelerator: str = MISSING
    devices: int = MISSING
    strategy: str = MISSING
    precision: str = MISSING
    deterministic: bool = MISSING
    channels_last: bool = MISSING  # NHWC weights: faster convolutions (GPU tensor cores, oneDNN)
    enable_progress_bar: bool = MISSING  # a tqdm bar per fit
    enable_model_summary: bool = MISSING
    enable_checkpointing: bool = MISSING  # Lightning's own end-of-fit checkpoint
    num_sanity_val_steps: int = MISSING
    log_every_n_steps: int = MISSING
    checkpoint_every: int | None = None  # optimiser steps between resumable checkpoints
    logger: dict[str, Any] = field(default_factory=dict)  # name -> logger node (_target_)
    callbacks: dict[str, Any] = field(default_factory=dict)  # name -> callback node (_target_)


# Trainer keys that change no number a fit produces: left out of config hashes and cache keys,
# so turning on TensorBoard or checkpoints neither re-runs a finished run nor rebuilds a stage.
TRAINER_DISPLAY_KEYS = (
    "_target_",
    "deterministic",  # a copy of the top-level key, which the hashes keep
    "enable_progress_bar",
    "enable_model_summary",
    "enable_checkpointing",
    "num_sanity_val_steps",
    "log_every_n_steps",
    "checkpoint_every",
    "logger",
)


def numeric_trainer(trainer: dict[str, Any]) -> dict[str, Any]:
    """The trainer node minus :data:`TRAINER_DISPLAY_KEYS`, and no callbacks when there are none."""
    out = {k: v for k, v in trainer.items() if k not in TRAINER_DISPLAY_KEYS}
    if not out.get("callbacks"):
        out.pop("callbacks", None)
    return out


@dataclass
class PathsConfig:
    """Where cached pretrained backbones and features live (shared across sweeps)."""

    cache_dir: str = MISSING


@dataclass
class ComparisonsConfig:
    """The comparisons the report's findings make, declared before any number is seen.

    Each regime in ``pretrained`` is compared with each in ``references``, plus the ``pairs``
    (first minus second); the family is Holm-corrected as a whole. Regimes absent from the
    records a report reads are left out of its family.
    """

    references: list[str] = field(default_factory=list)
    pretrained: list[str] = field(default_factory=list)
    pairs: list[list[str]] = field(default_factory=list)


@dataclass
class RunConfig:
    """One run; a sweep is many of these."""

    name: str = MISSING
    question: str = MISSING
    seed: int = MISSING  # shorthand for the two below; only they reach the code
    subset_seed: int = MISSING  # which examples are labelled
    train_seed: int = MISSING  # init, batch order, augmentation, pretraining, CV folds
    threads: int = MISSING
    deterministic: bool = MISSING
    source: DomainConfig = field(default_factory=DomainConfig)
    data: DomainConfig = field(default_factory=DomainConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    regime: RegimeConfig = field(default_factory=RegimeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    continued_pretrain: ContinuedPretrainConfig = field(default_factory=ContinuedPretrainConfig)
    # continual_pretrain's domains after the source, in order (``data@stream.<key>`` defaults)
    stream: dict[str, DomainConfig] = field(default_factory=dict)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    svm: SvmConfig = field(default_factory=SvmConfig)
    knn: KnnConfig = field(default_factory=KnnConfig)
    label_spreading: LabelSpreadingConfig = field(default_factory=LabelSpreadingConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    comparisons: ComparisonsConfig = field(default_factory=ComparisonsConfig)


MAX_DIRNAME = 200  # bytes; file systems allow 255 per path component


def job_dirname(overrides: str) -> str:
    """A sweep job's folder name: its overrides, or a prefix and a hash when they are too long.

    Overrides with paths in them (``data.root=/a/long/path``) would nest folders and easily pass
    the 255-byte limit of a file name: slashes become ``_`` and a long name keeps a prefix and a
    hash of the whole, so folders stay distinct and stable across re-runs.
    """
    overrides = overrides.replace("/", "_")  # a path value must not nest folders
    if len(overrides.encode()) <= MAX_DIRNAME:
        return overrides
    digest = hashlib.sha256(overrides.encode()).hexdigest()[:16]
    return f"{overrides.encode()[:150].decode(errors='ignore')}...{digest}"


def register() -> None:
    """Make the schema available to ``conf/config.yaml`` as ``base``, and its resolver."""
    ConfigStore.instance().store(name="base", node=RunConfig)
    OmegaConf.register_new_resolver("rb_dirname", job_dirname, replace=True)


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
        timm.is_model(cfg.model.name),
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
        if node not in GRADIENT_NODES:  # a baseline's node: svm, knn, label_spreading
            if (bad := problem(node, cfg[node])) is not None:
                _check(False, *bad)
            continue
        for key in ("steps", "batch_size"):
            _check(cfg[node][key] >= 1, f"{node}.{key}", cfg[node][key], "an int >= 1")
        warmup = cfg[node].warmup_fraction
        _check(0 <= warmup < 1, f"{node}.warmup_fraction", warmup, "0 <= fraction < 1")
    if "train" in reads[cfg.regime.name]:
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
