"""Pretraining and continued pretraining, each built once per cache key and restored on a hit.

Each stage returns a frozen result that says what it made (the backbone, its source probe
accuracy) and how it was come by (:class:`CacheUse`); the regime turns those into the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from benchmarks import keys
from benchmarks.fitting import fit, stage_checkpoints
from benchmarks.inputs import RunContext, domain, new_backbone, ssl_images, weights_backbone
from benchmarks.probing import head_accuracy, mask_share, source_scores
from common.cache import cached, stable_hash
from lightning_modules.backbones import clone_state
from lightning_modules.datamodules import RandomBatches, ReplayBatches
from lightning_modules.domains import Domain
from lightning_modules.language_models import lm_kind
from lightning_modules.normalization import stats_of
from lightning_modules.pretrain import LM_OBJECTIVES, PUBLISHED, PretrainModule
from lightning_modules.probe import l2_at_edge
from lightning_modules.streaming import concat

HEAD = "source_head."  # cache-entry prefix of the supervised source head's tensors


@dataclass(frozen=True)
class CacheUse:
    """One cached stage's bookkeeping: hit or built, its key, its full cost and what a hit saved.

    ``seconds_full`` is what building the entry took, recorded on later hits too, so a record
    shows the cost of the stage it used whether or not this run paid it.
    """

    hit: bool
    key: dict[str, Any]
    seconds_full: float
    seconds_saved: float
    samples: float

    @staticmethod
    def of(key: dict[str, Any], meta: dict[str, Any], hit: bool) -> CacheUse:
        """The bookkeeping of one :func:`common.cache.cached` call."""
        seconds = 0.0 + meta["build_seconds"]
        return CacheUse(hit, key, seconds, seconds if hit else 0.0, 0.0 + meta["samples"])

    @staticmethod
    def total(uses: Sequence[CacheUse]) -> CacheUse:
        """Several stages of one kind (a stream): a hit if all were, costs added, the last key.

        The last key chains all before it, so its hash names the whole chain.
        """
        return CacheUse(
            all(u.hit for u in uses),
            uses[-1].key,
            sum((u.seconds_full for u in uses), 0.0),
            sum((u.seconds_saved for u in uses), 0.0),
            sum((u.samples for u in uses), 0.0),
        )

    def info(self, stage: str) -> dict[str, Any]:
        """The record's ``info`` entries: whether it was a hit and the entry's hash."""
        return {f"{stage}_cached": self.hit, f"{stage}_hash": stable_hash(self.key)}

    def compute(self, stage: str) -> dict[str, float]:
        """The record's ``compute`` entries: the stage's full cost, what was saved, its samples."""
        return {
            f"{stage}_seconds_full": self.seconds_full,
            f"{stage}_seconds_saved": self.seconds_saved,
            f"{stage}_samples": self.samples,
        }


@dataclass(frozen=True)
class SourceHead:
    """The supervised source stage's classifier and its source test accuracy when pretrained."""

    head: nn.Module
    acc: float


@dataclass(frozen=True)
class Pretrained:
    """The source-pretrained backbone and what later stages and the record need of it."""

    backbone: nn.Module
    source_acc: float  # source probe accuracy: forgetting's "before"
    probe_l2: float  # that probe's penalty, reused by every later source probe
    probe_l2_at_edge: bool
    source_head: SourceHead | None  # pretrain.objective=supervised only
    cache: CacheUse
    source_bpb: float | None = None  # a language model's source test bits per byte

    def info(self) -> dict[str, Any]:
        """The record's ``info`` entries of the pretraining stage."""
        out = self.cache.info("pretrain") | {
            "input_stats": stats_of(self.backbone).facts(),  # what every later fit reads
            "source_probe_l2": self.probe_l2,
            "source_probe_l2_at_edge": self.probe_l2_at_edge,
        }
        if self.source_head is not None:
            out["source_head_acc_before"] = self.source_head.acc
        return out

    def compute(self) -> dict[str, float]:
        """The record's ``compute`` entries of the pretraining stage."""
        return self.cache.compute("pretrain")


@dataclass(frozen=True)
class Continued:
    """A backbone after one continued-pretraining stage, its source probe accuracy, its cache."""

    backbone: nn.Module
    source_acc: float
    cache: CacheUse
    source_bpb: float | None = None  # a language model's source test bits per byte after it


def continued_objective(cfg: DictConfig) -> str:
    """A continued stage's objective: SimCLR on images (labels unused), the LM's own on text."""
    if cfg.model.text is None:
        return "simclr"
    kind = lm_kind(str(cfg.model.name), cfg.model.text.architecture)
    return next(name for name, of in LM_OBJECTIVES.items() if of == kind)


def continued_facts(stages: Sequence[Continued]) -> tuple[dict[str, Any], dict[str, float]]:
    """The record's ``info`` and ``compute`` entries of one or more continued stages."""
    use = CacheUse.total([s.cache for s in stages])
    return use.info("continued_pretrain"), use.compute("continued_pretrain")


def restored(ctx: RunContext, state: dict[str, torch.Tensor]) -> nn.Module:
    """A fresh backbone holding ``state``: what a stage hands on, whether built or cache-loaded.

    A stage that was just built leaves its trained module changed in ways its saved state does
    not carry: ``fit`` turned its weights channels-last (``trainer.channels_last``), it is in
    train mode with gradients attached, and a precision plugin may have cast it. Evaluating
    channels-last weights takes other oneDNN kernels than contiguous ones, so the features and
    the LP-FT probe differed in the last digits and a run that built its continued backbone
    recorded another ``test/ece`` than one that loaded it. Handing on a new module with the
    state loaded into it makes a miss give exactly what a later hit gives.
    """
    backbone = new_backbone(ctx.cfg, 0, pretrained=True)
    backbone.load_state_dict(state)
    return backbone.to(ctx.device)


def pretrained_backbone(ctx: RunContext) -> Pretrained:
    """The source-pretrained backbone and its source probe, built once per key."""
    cfg, p = ctx.cfg, ctx.cfg.pretrain

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        if p.objective in PUBLISHED:  # published weights instead of the suite's own stage
            backbone = weights_backbone(cfg).to(ctx.device)
            acc, l2, bits = source_scores(ctx, backbone)  # a checkpoint's source bits per byte
            meta = {"source_acc": acc, "source_l2": l2, "samples": 0} | bits
            return clone_state(backbone), meta
        backbone = new_backbone(cfg, 1000 + cfg.train_seed, pretrained=True)
        torch.manual_seed(2000 + cfg.train_seed)
        module = PretrainModule(
            backbone,
            p.objective,
            ctx.source.num_classes,
            p.lr,
            p.weight_decay,
            p.steps,
            p.warmup_fraction,
            p.temperature or 0.5,
            seed=cfg.train_seed,
            mask_share=mask_share(ctx),
        )
        if p.objective != "supervised":  # labels unused: unlabelled extras join (STL-10)
            x, y = ssl_images(ctx.source).to(ctx.device), None
        else:
            x, y = ctx.source.x_train.to(ctx.device), ctx.source.y_train.to(ctx.device)
        batches = RandomBatches(x, y, p.batch_size, p.steps, cfg.train_seed)
        fit(cfg, module, batches, ctx.log_dir("pretrain"), checkpoints)
        acc, l2, bits = source_scores(ctx, backbone)
        views = 2 if p.objective == "simclr" else 1
        state, meta = clone_state(backbone), {"source_l2": l2} | bits
        if p.objective == "supervised":  # keep the source head: head-retained forgetting
            state |= {f"{HEAD}{k}": v for k, v in clone_state(module.head).items()}
            meta["source_head_acc"] = head_accuracy(ctx, backbone, module.head)
        return state, meta | {"source_acc": acc, "samples": p.steps * p.batch_size * views}

    key = keys.pretrain(ctx)
    with ctx.phase("pretrain"), stage_checkpoints(cfg, "pretrain", key) as checkpoints:
        state, meta, hit = cached(cfg.paths.cache_dir, "pretrain", key, build)
        backbone = restored(ctx, {k: v for k, v in state.items() if not k.startswith(HEAD)})
    head = {k.removeprefix(HEAD): v for k, v in state.items() if k.startswith(HEAD)}
    source_head = None
    if head:
        linear = nn.Linear(head["weight"].shape[1], head["weight"].shape[0])
        linear.load_state_dict(head)
        source_head = SourceHead(linear.to(ctx.device), float(meta["source_head_acc"]))
    return Pretrained(
        backbone,
        float(meta["source_acc"]),
        meta["source_l2"],
        l2_at_edge(meta["source_l2"], ctx.source_probe.l2_grid),
        source_head,
        CacheUse.of(key, meta, hit),
        meta.get("source_bpb"),
    )


def continued_backbone(
    ctx: RunContext,
    backbone: nn.Module,
    source_l2: float,
    base_key: dict[str, Any],
    target_cfg: DictConfig | None = None,
    earlier: tuple[Domain, ...] = (),
    stage: int = 1,
) -> Continued:
    """Continue pretraining ``backbone`` on a domain's unlabelled train split (default: target).

    SimCLR for images; a language model continues its own objective (DAPT, Gururangan et al.
    2020: the target's passages and its unlabelled corpus).

    ``earlier`` are the domains of the stages before (the source first); with
    ``continued_pretrain.replay`` > 0 that share of every batch is drawn from them. A stage is
    cached under the chain of everything before it (``base_key``: the previous stage's key).
    ``source_l2`` is the pretrained backbone's source probe penalty, so the source accuracy
    after this stage comes from the same probe as before it.
    """
    cfg, c = ctx.cfg, ctx.cfg.continued_pretrain
    target_cfg = target_cfg if target_cfg is not None else cfg.data
    target = domain(target_cfg, cfg)
    key = keys.continued(ctx, base_key, target_cfg, target, len(earlier))

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        torch.manual_seed(3000 + cfg.train_seed)
        objective = continued_objective(cfg)
        module = PretrainModule(
            backbone,
            objective,
            target.num_classes,
            c.lr,
            c.weight_decay,
            c.steps,
            c.warmup_fraction,
            cfg.pretrain.temperature or 0.5,
            seed=cfg.train_seed,
            schedule=c.schedule,
            mask_share=mask_share(ctx),
        )
        x_new = ssl_images(target).to(ctx.device)
        x_old = concat([ssl_images(d) for d in earlier]).to(ctx.device) if earlier else None
        seed = cfg.train_seed + 1000 * (stage - 1)
        batches = ReplayBatches(x_new, x_old, c.replay, c.batch_size, c.steps, seed)
        name = "continued_pretrain" if stage == 1 else f"continued_pretrain_{stage}"
        fit(cfg, module, batches, ctx.log_dir(name), checkpoints)
        views = 2 if objective == "simclr" else 1  # two SimCLR views per image
        acc, _, bits = source_scores(ctx, backbone, source_l2)
        samples = c.steps * c.batch_size * views
        return clone_state(backbone), {"source_acc": acc, "samples": samples} | bits

    with ctx.phase("continued_pretrain"), stage_checkpoints(cfg, "continued", key) as checkpoints:
        state, meta, hit = cached(cfg.paths.cache_dir, "continued", key, build)
        restored_backbone = restored(ctx, state)  # not the module the build trained: see restored()
    use = CacheUse.of(key, meta, hit)
    return Continued(restored_backbone, float(meta["source_acc"]), use, meta.get("source_bpb"))
