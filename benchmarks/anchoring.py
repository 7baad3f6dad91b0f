"""The penalties of ``l2sp`` and ``ewc``: anchored at the pretrained backbone, EWC's Fisher cached.

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
from benchmarks.probing import fitted_probe
from common.cache import cached, stable_hash
from lightning_modules.penalties import AnchorPenalty, Head, diagonal_fisher
from lightning_modules.probe import LinearProbe, normalize_features


def _source_head(ctx: RunContext, pre: Pretrained) -> tuple[str, Head]:
    """Which source classifier EWC's likelihood is, and the map from features to its logits."""
    if pre.source_head is not None:
        return "source_head", pre.source_head.head
    probe: LinearProbe = fitted_probe(ctx, pre.backbone, ctx.source, pre.probe_l2)
    weight, bias = probe.weight.float(), probe.bias.float()

    def head(features: torch.Tensor) -> torch.Tensor:  # LinearProbe.logits, in float32
        return normalize_features(features) @ weight + bias

    return "source_probe", head


def _fisher_images(ctx: RunContext) -> torch.Tensor:
    """The source train images the Fisher averages over: ``ewc.fisher_samples`` of them, seeded."""
    x, n = ctx.source.x_train, ctx.cfg.ewc.fisher_samples
    if n is None or n >= len(x):
        return x
    gen = torch.Generator().manual_seed(5000 + ctx.cfg.train_seed)
    return x[torch.randperm(len(x), generator=gen)[:n].sort().values]


def source_fisher(
    ctx: RunContext, pre: Pretrained
) -> tuple[dict[str, torch.Tensor], CacheUse, str]:
    """The source task's diagonal Fisher at the pretrained weights, built once per key.

    Returns the Fisher by parameter name, the cache's bookkeeping and whose likelihood it is.
    """
    kind, head = _source_head(ctx, pre)
    key = keys.fisher(ctx, stable_hash(pre.cache.key), kind)

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        x = _fisher_images(ctx).to(ctx.device)
        fisher = diagonal_fisher(pre.backbone, head, x)
        return {k: v.cpu() for k, v in fisher.items()}, {"samples": len(x), "likelihood": kind}

    with ctx.phase("fisher"):
        fisher, meta, hit = cached(ctx.cfg.paths.cache_dir, "fisher", key, build)
    return fisher, CacheUse.of(key, meta, hit), kind


def penalty(ctx: RunContext, pre: Pretrained) -> tuple[AnchorPenalty, dict, dict]:
    """The run's penalty toward ``pre``'s weights, and its record ``info`` and ``compute``."""
    if ctx.cfg.regime.name == "l2sp":
        return AnchorPenalty(pre.backbone, ctx.cfg.l2sp.strength), {}, {}
    fisher, use, likelihood = source_fisher(ctx, pre)
    info = use.info("fisher") | {"fisher_likelihood": likelihood}
    return AnchorPenalty(pre.backbone, ctx.cfg.ewc.strength, fisher), info, use.compute("fisher")
