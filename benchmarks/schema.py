"""Typed schemas of the config: the dataclasses ``conf/config.yaml`` composes onto.

The YAML files under ``conf/`` fill these dataclasses; struct mode stays on, so a misspelt key
fails at composition with Hydra's "Key ... is not in struct" instead of being silently ignored.
Defaults live in the YAML files; the schema says which keys exist and their types (``MISSING``
where a YAML must set the value). :mod:`benchmarks.config` registers :class:`RunConfig` with
Hydra; :func:`benchmarks.validation.validate` checks what types alone cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from benchmarks.baseline_config import KnnConfig, LabelSpreadingConfig, SvmConfig, TfidfConfig
from benchmarks.mitigation_config import EwcConfig, L2spConfig, WiseFtConfig


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
class NormalizeConfig:
    """A domain's pixel mean and std per channel ([0, 1] pixels; one value for every channel).

    Both null: computed from the domain's train images (lightning_modules/normalization.py).
    """

    mean: list[float] | None = None
    std: list[float] | None = None


@dataclass
class HubTextConfig:
    """``hf_text``: what ``datasets.load_dataset`` reads, and which columns are text and label."""

    path: str = MISSING  # a hub name (ag_news; needs a network once) or a builder: csv, json, text
    name: str | None = None  # the dataset's configuration
    revision: str | None = None  # a hub commit or tag, so the corpus does not move under a run
    data_files: Any = None  # local files for a builder: one path, or {split: path or [paths]}
    text_column: str = "text"
    label_column: str = "label"
    train_split: str = "train"
    test_split: str | None = "test"  # null: train is split by test_fraction
    unlabeled_split: str | None = None  # texts for DAPT (IMDB's unsupervised); labels unused


@dataclass
class TextDataConfig:
    """How a text corpus is cut into passages (``lightning_modules/corpora.py``)."""

    passage_bytes: int = MISSING  # bytes per passage (one token each); <= model.text.max_length
    min_examples: int = MISSING  # a class with fewer passages is left out
    packages: list[str] | None = None  # python_code: the standard-library packages (classes)
    unlabeled_passages: int = 0  # python_code: passages of other modules' code, for DAPT
    hub: HubTextConfig | None = None  # hf_text: the dataset and its columns


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
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    # test: evaluate on the test split. validation: a stratified validation_fraction of the train
    # split stands in for it (lightning_modules/datasets.held_out): the view recipes are chosen on.
    evaluate_on: str = "test"
    validation_fraction: float = 0.2
    text: TextDataConfig | None = None  # a text dataset's passages (null for images)


@dataclass
class TextModelConfig:
    """A language model (``lightning_modules/language_models.py``): over bytes, or a checkpoint.

    ``hub`` (model=hf_lm) takes everything from ``model.name``'s config and tokenizer, so the
    sizes stay null there; a built architecture sets them all.
    """

    architecture: str = MISSING  # gpt2 (causal LM) | bert (masked LM) | hub (model.name's)
    width: int | None = None  # hidden size
    layers: int | None = None
    heads: int | None = None
    max_length: int | None = None  # positions: the longest passage it takes
    activation: str | None = None  # the MLP's nonlinearity, a transformers ACT2FN name
    dropout: float | None = None  # embedding, attention and residual dropout in training
    bpe_vocab: int | None = None  # null: bytes; N: a byte-level BPE of N tokens on the source


@dataclass
class ModelConfig:
    """A timm backbone and the image side length every domain is resized to, or a text LM."""

    name: str = MISSING
    image_size: int | None = MISSING  # null for a text model
    in_chans: int | None = None  # channels every domain is converted to; None = the target's
    drop_rate: float | None = None
    checkpoint: str | None = None  # pretrain=timm: a local weights file (.pt/.pth/.safetensors)
    factory: Any = None  # a _target_ node building the backbone (benchmarks/user_code.py)
    text: TextModelConfig | None = None  # a language model instead of a timm image backbone


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
    mask_share: float | None = None  # objective=mlm: the share of each passage's bytes masked


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
    module: Any = None  # a _target_ LightningModule class (benchmarks/user_code.py)
    track_every: int | None = MISSING  # score target and source every N steps (tracking.py)


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
class SelectionConfig:
    """How a run's hyperparameters are chosen (``conf/selection/``), stamped on its record.

    fixed: the declared defaults. holdout: ``per_class`` extra labelled examples per class,
    disjoint from every budget. cv: ``folds``-fold cross-validation inside the budget. oracle:
    the test split (an upper bound only).
    """

    protocol: str = MISSING
    per_class: int | None = None  # holdout: V validation examples per class
    folds: int | None = None  # cv: k


@dataclass
class TuningConfig:
    """Hyperparameter trials: ``grids.<regime>`` maps dotted config keys to lists of values.

    Trial i is the i-th point of the Cartesian product (sorted keys, row-major); every grid has
    ``trials`` points, the equal tuning budget. ``trial: null``: the regime's declared values.
    """

    trial: int | None = None
    trials: int | None = None
    grids: dict[str, Any] = field(default_factory=dict)


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
    # unrelated_pretrain's corpus: its continued stage runs here instead of on the target
    control: DomainConfig | None = None
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    svm: SvmConfig = field(default_factory=SvmConfig)
    tfidf: TfidfConfig = field(default_factory=TfidfConfig)
    knn: KnnConfig = field(default_factory=KnnConfig)
    label_spreading: LabelSpreadingConfig = field(default_factory=LabelSpreadingConfig)
    wise_ft: WiseFtConfig = field(default_factory=WiseFtConfig)
    l2sp: L2spConfig = field(default_factory=L2spConfig)
    ewc: EwcConfig = field(default_factory=EwcConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    comparisons: ComparisonsConfig = field(default_factory=ComparisonsConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
