"""Target training on the labelled budget, and the target test metrics of any predictor."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import lightning as L  # noqa: N812
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from benchmarks import tracking
from benchmarks.compute import text_step_flops, train_step_flops
from benchmarks.config import drop_text_nulls
from benchmarks.fitting import fit, stage_checkpoints
from benchmarks.inputs import RunContext
from benchmarks.probing import LabelledProbe, fit_labelled_probe
from benchmarks.tracking import Track
from benchmarks.user_code import build_module
from lightning_modules.backbones import clone_state
from lightning_modules.classifier import ClassifierModule
from lightning_modules.datamodules import RandomBatches
from lightning_modules.metrics import classification_metrics, confusion_matrix
from lightning_modules.normalization import stats_of
from lightning_modules.penalties import AnchorPenalty
from lightning_modules.probe import extract_features
from lightning_modules.streaming import take


@dataclass(frozen=True)
class Trained:
    """A target fit: the trained module, how its head started, and what the fit cost."""

    module: L.LightningModule  # ClassifierModule or a user's: both have predict_logits
    head_init: str  # "random", or "probe" (LP-FT: the head starts from ``probe``)
    probe: LabelledProbe | None
    samples: int
    flops: float
    input_stats: dict[str, Any]  # the normalisation the backbone reads (normalization.py)
    start: dict[str, torch.Tensor] | None = None  # the module's weights before the fit (keep_start)
    track_file: str | None = None  # train.track_every: the rows' file, relative to the job folder

    def info(self) -> dict[str, Any]:
        """The record's ``info`` entries of the target fit (the LP-FT probe's among them)."""
        probe = self.probe.info() if self.probe is not None else {}
        track = {"track_file": self.track_file} if self.track_file is not None else {}
        return probe | track | {"head_init": self.head_init, "input_stats": self.input_stats}

    def compute(self) -> dict[str, float]:
        """The record's ``compute`` entries of the target fit."""
        return {"train_samples": self.samples, "train_flops": self.flops}


@dataclass(frozen=True)
class Evaluated:
    """Target test metrics and the confusion matrix they came from."""

    metrics: dict[str, float]
    confusion: list[list[int]]


def classifier_and_batches(
    ctx: RunContext,
    backbone: nn.Module,
    head_init: tuple[torch.Tensor, torch.Tensor] | None = None,
    labelled: torch.Tensor | None = None,
    penalty: AnchorPenalty | None = None,
) -> tuple[L.LightningModule, RandomBatches]:
    """The module and the batches of one target fit, seeded from ``train_seed``.

    The module is ``ClassifierModule``, or the user's ``train.module`` (benchmarks/user_code.py;
    validation refuses one with a ``penalty``, which only the built-in module adds to its loss).
    ``labelled``: the train indices it fits (a CV fold's share); None = the run's budget.
    """
    cfg, t = ctx.cfg, ctx.cfg.train
    torch.manual_seed(4000 + cfg.train_seed)
    if t.module is not None:  # a user's LightningModule: the same arguments, by name
        module = build_module(
            t.module,
            backbone=backbone,
            num_classes=ctx.target.num_classes,
            lr=t.lr,
            head_lr=t.head_lr,
            weight_decay=t.weight_decay,
            steps=t.steps,
            warmup_fraction=t.warmup_fraction,
            augment=t.augment,
            seed=cfg.train_seed,
            head_init=head_init,
        )
    else:
        module = ClassifierModule(
            backbone,
            ctx.target.num_classes,
            t.lr,
            t.head_lr,
            t.weight_decay,
            t.steps,
            t.warmup_fraction,
            t.augment,
            cfg.train_seed,
            head_init,
            penalty,
        )
    labelled = ctx.labelled if labelled is None else labelled
    x = take(ctx.target.x_train, labelled).to(ctx.device)
    y = ctx.target.y_train[labelled].to(ctx.device)
    return module, RandomBatches(x, y, t.batch_size, t.steps, cfg.train_seed)


def train_classifier(
    ctx: RunContext,
    backbone: nn.Module,
    labelled: torch.Tensor | None = None,
    fold: int | None = None,
    penalty: AnchorPenalty | None = None,
    keep_start: bool = False,
    track: Track | None = None,
) -> Trained:
    """Train backbone + head on the labelled budget for ``train.steps`` steps.

    With ``head_init: probe`` the head starts from a linear probe fitted on the backbone's frozen
    features of the labelled examples (LP-FT); with ``random`` from timm/torch's default init.
    ``labelled``/``fold``: a cross-validation fold's fit (its own logs, checkpoints and the
    ``select`` phase's time); None = the run's own fit on its whole budget. ``penalty``: added to
    the loss (L2-SP, EWC). ``keep_start``: the result holds the module's weights as they were
    before the fit (the head already started), which weight interpolation starts from.
    ``track``: scores the fit as it goes (``benchmarks/tracking.py``; the run's own fit only).
    """
    cfg, t = ctx.cfg, ctx.cfg.train
    name, phase = ("train", "train") if fold is None else (f"train_fold{fold}", "select")
    stats = stats_of(backbone).facts()
    head_init, probe = None, None
    if t.head_init == "probe":
        with ctx.phase(phase):
            features = extract_features(backbone, ctx.target.x_train.to(ctx.device))
            probe = fit_labelled_probe(ctx, features, labelled)
        head_init = (probe.probe.weight.float(), probe.probe.bias.float())
    module, batches = classifier_and_batches(ctx, backbone, head_init, labelled, penalty)
    start = clone_state(module) if keep_start else None
    run = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(run, dict)
    run.pop("paths")  # the checkpoint key: everything the fit depends on
    run.pop("tfidf")  # a node no fit reads, keyed as before it existed
    if "control" not in ctx.reads:  # only unrelated_pretrain's backbone comes from the control
        run.pop("control", None)
    drop_text_nulls(run)
    key = run if fold is None else run | {"fold": fold}
    with ctx.phase(phase), stage_checkpoints(cfg, name, key) as checkpoints:
        fit(cfg, module, batches, ctx.log_dir(name), checkpoints, (track,) if track else ())
    track_file = tracking.write(track, ctx.log_dir(name)) if track is not None else None
    if cfg.model.text is not None:
        model = {"name": cfg.model.name, "text": OmegaConf.to_container(cfg.model.text)}
        text = json.dumps(model, sort_keys=True)
        length = int(ctx.target.x_train.shape[1])
        step = text_step_flops(text, length, t.batch_size, ctx.target.num_classes)
    else:
        step = train_step_flops(
            cfg.model.name, cfg.model.image_size, t.batch_size, ctx.target.num_classes,
            factory(cfg),
        )  # fmt: skip
    samples, flops = t.steps * t.batch_size, float(step * t.steps)
    return Trained(module, t.head_init, probe, samples, flops, stats, start, track_file)


def factory(cfg: DictConfig) -> str | None:
    """``model.factory`` as sorted JSON (hashable, for the FLOP count's cache), or None."""
    if cfg.model.factory is None:
        return None
    return json.dumps(OmegaConf.to_container(cfg.model.factory, resolve=True), sort_keys=True)


def evaluate(ctx: RunContext, logits: torch.Tensor) -> Evaluated:
    """Target test metrics from the target test split's logits, with their confusion matrix."""
    confusion = confusion_matrix(logits.cpu(), ctx.target.y_test)
    return Evaluated(classification_metrics(logits.cpu(), ctx.target.y_test), confusion)
