"""A run's shared inputs: its config, device, domains and labelled subset, and fresh backbones.

Every random consumer is seeded explicitly from ``train_seed`` (backbone init, head init, batch
sampling, augmentation, pretraining, probe CV folds); ``subset_seed`` only picks the labelled
examples (``benchmarks/run.py``), so the two sources of variance can be varied apart. Seeding
every consumer means a run's result does not depend on which runs came before it in the same
process: an in-process sweep and a lone run give the same record.

The stages (``pretraining``, ``probing``, ``training``) take this context for what every stage
reads and return typed results; nothing is handed between them through the context.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from benchmarks.user_code import build_backbone
from lightning_modules.backbones import create_backbone, load_checkpoint, pretrained_timm
from lightning_modules.bpe import bpe_tokenizer
from lightning_modules.datasets import DataError
from lightning_modules.datasets import load as load_raw
from lightning_modules.domains import Domain, DomainError, build_domain
from lightning_modules.language_models import text_backbone
from lightning_modules.normalization import TOKEN_IDS, timm_stats, with_stats
from lightning_modules.streaming import Images, concat
from lightning_modules.tokens import decode


@dataclass
class RunContext:
    """What one run reads everywhere, built once by the entry point and handed to its regime.

    ``seconds`` is the only thing that grows during a run: the wall time of each phase.
    """

    cfg: DictConfig
    device: torch.device
    source: Domain
    target: Domain
    labelled: torch.Tensor
    seconds: dict[str, float] = field(default_factory=dict)
    job_dir: Path | None = None  # fits log into <job_dir>/<fit>/; None: no loggers
    holdout: torch.Tensor | None = None  # selection=holdout: its train indices (preflight.py)
    # The probe node as declared, before a trial set probe.*: the source probe (forgetting's
    # before and after) and the pretrained entry's key use it, so the trials of a probe grid
    # share one pretraining and one forgetting probe. None: the run's own cfg.probe.
    declared_probe: DictConfig | None = None
    reads: tuple[str, ...] = ()  # the stage nodes the regime reads (benchmarks/regimes.py READS)

    @property
    def source_probe(self) -> DictConfig:
        """The probe settings every source-domain probe uses."""
        return self.declared_probe if self.declared_probe is not None else self.cfg.probe

    def log_dir(self, fit_name: str) -> Path | None:
        """The loggers' folder of one fit of this run (a cached stage logs where it is built)."""
        return self.job_dir / fit_name if self.job_dir is not None else None

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the wall time of the enclosed block to ``seconds[name]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def training_device(trainer: DictConfig) -> torch.device:
    """Where this process keeps data and models between fits.

    With a DDP strategy the processes Lightning starts own the devices: this one stays on the CPU,
    hands each fit its CPU tensors, and gets the trained weights back after the fit.
    """
    if str(trainer.strategy).startswith("ddp"):
        return torch.device("cpu")
    gpu = trainer.accelerator in ("gpu", "cuda") or (
        trainer.accelerator == "auto" and torch.cuda.is_available()
    )
    return torch.device("cuda" if gpu else "cpu")


def _spec(dom: DictConfig) -> str:
    spec = OmegaConf.to_container(dom, resolve=True)
    return json.dumps(spec, sort_keys=True)


def in_chans(cfg: DictConfig) -> int:
    """The model's input channels: ``model.in_chans``, or by default the target domain's."""
    if cfg.model.in_chans is not None:
        return int(cfg.model.in_chans)
    try:
        raw = load_raw(_spec(cfg.data), cfg.model.image_size, str(cfg.paths.cache_dir))
    except DataError as err:
        raise DomainError(err.at("data")) from None
    return int(raw.x_train.shape[1])


def domain(dom: DictConfig, cfg: DictConfig) -> Domain:
    """The in-memory domain for a ``data``/``source``/``stream`` node (decoded once per process).

    A domain that cannot be built names the key the user set (``source.root``, not
    ``data.root``): the loaders are shared by every node, so only the node knows its key.
    """
    cache_dir = str(cfg.paths.cache_dir)
    try:
        if cfg.model.text is not None:  # passages of byte ids: no size or channels to convert
            return build_domain(str(dom.name), _spec(dom), 0, 0, cache_dir)
        image_size = cfg.model.image_size
        return build_domain(str(dom.name), _spec(dom), image_size, in_chans(cfg), cache_dir)
    except DomainError as err:
        raise DomainError(err.at(dom._get_full_key(None))) from None  # noqa: SLF001


def new_backbone(cfg: DictConfig, seed: int, pretrained: bool = False) -> nn.Module:
    """A randomly initialised backbone whose weights depend only on ``seed``.

    ``model.factory`` (a user's ``_target_``) builds it instead of timm wherever one is built.
    It reads the target's input statistics; ``pretrained`` (a pretraining stage and every
    backbone it hands on) the source's, or timm's for published weights (normalization.py).
    """
    if cfg.model.text is not None:
        net = text_backbone(str(cfg.model.name), cfg.model.text, seed, tokenizer=bpe(cfg))
        return with_stats(net, TOKEN_IDS)
    torch.manual_seed(seed)
    if cfg.model.factory is not None:
        net = build_backbone(cfg.model.factory, in_chans(cfg))
    else:
        net = create_backbone(cfg.model.name, in_chans=in_chans(cfg), drop_rate=cfg.model.drop_rate)
    weights = pretrained and cfg.pretrain.objective == "timm" and cfg.model.factory is None
    node = cfg.source if pretrained else cfg.data
    return with_stats(net, timm_stats(net, cfg.model.name) if weights else domain(node, cfg).stats)


def bpe(cfg: DictConfig) -> Any:
    """A built LM's byte-level BPE (``model.text.bpe_vocab``) on the source's train passages.

    Trained (or read from the cache) once per process and source: every stage builds a backbone.
    """
    vocab = cfg.model.text.bpe_vocab
    if vocab is None:
        return None
    key = (_spec(cfg.source), int(vocab), str(cfg.paths.cache_dir))
    if key not in _BPE:
        texts = decode(domain(cfg.source, cfg).x_train)
        _BPE[key] = bpe_tokenizer(texts, int(vocab), str(cfg.paths.cache_dir))
    return _BPE[key]


_BPE: dict[tuple[str, int, str], Any] = {}


def weights_backbone(cfg: DictConfig) -> nn.Module:
    """Published weights: a checkpoint's (``pretrain=hf``), timm's, or ``model.checkpoint``'s."""
    m = cfg.model
    if m.text is not None:
        return with_stats(text_backbone(str(m.name), m.text, 0, weights=True), TOKEN_IDS)
    if m.checkpoint is None:
        net = pretrained_timm(m.name, in_chans(cfg), m.drop_rate)
        return with_stats(net, timm_stats(net, m.name))
    backbone = new_backbone(cfg, 0, pretrained=True)
    load_checkpoint(backbone, m.checkpoint)
    return backbone


def ssl_images(dom: Domain) -> Images:
    """Every image a self-supervised stage may use: train split plus unlabelled extras."""
    if dom.x_unlabeled is None:
        return dom.x_train
    return concat([dom.x_train, dom.x_unlabeled])
