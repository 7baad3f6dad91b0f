"""Regimes ``l2sp`` and ``ewc``: fine-tuning with a penalty toward the pretrained backbone.

EWC needs a source likelihood ``p(y|x)``. A supervised source stage keeps its own head
(``pretrain.objective: supervised``); a self-supervised one has none, so the source task is the
linear probe forgetting is measured with (``probing.fitted_probe`` on the source's train split,
the pretrained backbone's penalty): the penalty then protects the source skill the report scores.
The Fisher depends only on the pretraining, the source and ``ewc.fisher_samples``, so it is
computed once per train seed and cached like the pretraining itself.
"""

from __future__ import annotations

from typing import Any

import torch

from benchmarks import keys
from benchmarks.inputs import RunContext
from benchmarks.pretraining import CacheUse, Pretrained
from benchmarks.pretraining import pretrained_backbone as pretrained
from benchmarks.probing import fitted_probe, forgetting
from benchmarks.results import Outcome, outcome_of, train_and_evaluate
from common.cache import cached, stable_hash
from lightning_modules.penalties import AnchorPenalty, Head, diagonal_fisher
from lightning_modules.probe import normalize_features
from lightning_modules.streaming import take


def _likelihood(pre: Pretrained) -> str:
    """Whose ``p(y|x)`` EWC's Fisher is: the supervised stage's head, or the source probe."""
    return "source_head" if pre.source_head is not None else "source_probe"


def _source_head(ctx: RunContext, pre: Pretrained) -> Head:
    """The map from backbone features to the source classifier's logits, its weights detached.

    The supervised stage's head reads raw features; the source probe reads normalised ones
    (``LinearProbe.logits``, here in float32).
    """
    if pre.source_head is not None:
        linear = pre.source_head.head
        weight, bias = linear.weight.detach().T, linear.bias.detach()
        return lambda features: features @ weight + bias
    probe = fitted_probe(ctx, pre.backbone, ctx.source, pre.probe_l2)
    weight, bias = probe.weight.float(), probe.bias.float()
    return lambda features: normalize_features(features) @ weight + bias


def _fisher_images(ctx: RunContext) -> torch.Tensor:
    """The source train images the Fisher averages over: ``ewc.fisher_samples`` of them, seeded."""
    x, n = ctx.source.x_train, ctx.cfg.ewc.fisher_samples
    if n is None or n >= len(x):
        return take(x, torch.arange(len(x)))
    gen = torch.Generator().manual_seed(5000 + ctx.cfg.train_seed)
    return take(x, torch.randperm(len(x), generator=gen)[:n].sort().values)


def source_fisher(ctx: RunContext, pre: Pretrained) -> tuple[dict[str, torch.Tensor], CacheUse]:
    """The source task's diagonal Fisher at the pretrained weights, built once per key."""
    key = keys.fisher(ctx, stable_hash(pre.cache.key), _likelihood(pre))

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        x = _fisher_images(ctx).to(ctx.device)
        fisher = diagonal_fisher(pre.backbone, _source_head(ctx, pre), x)
        return {k: v.cpu() for k, v in fisher.items()}, {"samples": len(x)}

    with ctx.phase("fisher"):
        fisher, meta, hit = cached(ctx.cfg.paths.cache_dir, "fisher", key, build)
    return fisher, CacheUse.of(key, meta, hit)


def _penalised(
    ctx: RunContext, pre: Pretrained, pen: AnchorPenalty, info: dict, compute: dict
) -> Outcome:
    trained, sc = train_and_evaluate(ctx, pre.backbone, pen, pre=pre)
    info = pre.info() | info | trained.info()
    compute = pre.compute() | compute | trained.compute()
    return outcome_of(sc, info, compute, forgetting(ctx, pre, pre.backbone))


def l2sp(ctx: RunContext) -> Outcome:
    """Fine-tuning with L2-SP (Li et al. 2018): ``(l2sp.strength/2)*||theta - theta_pre||^2``.

    The penalty pulls the backbone toward its pretrained weights instead of toward zero; the
    rest is the ``finetune`` recipe (``train`` node), so strength 0 is ``finetune`` exactly.
    """
    pre = pretrained(ctx)
    return _penalised(ctx, pre, AnchorPenalty(pre.backbone, ctx.cfg.l2sp.strength), {}, {})


def ewc(ctx: RunContext) -> Outcome:
    """Fine-tuning with EWC (Kirkpatrick et al. 2017): the L2-SP distance weighted by the Fisher.

    The diagonal Fisher of the source task at the pretrained weights (:func:`source_fisher`)
    weights each parameter's squared move, times ``ewc.strength / 2``.
    """
    pre = pretrained(ctx)
    fisher, use = source_fisher(ctx, pre)
    pen = AnchorPenalty(pre.backbone, ctx.cfg.ewc.strength, fisher)
    info = use.info("fisher") | {"fisher_likelihood": _likelihood(pre)}
    return _penalised(ctx, pre, pen, info, use.compute("fisher"))
