"""Linear probes on frozen features: probe accuracy, the labelled-budget probe, forgetting.

A probe measures a backbone without changing it: on the source domain it is the forgetting
measure (the same probe, same l2, before and after target training), on the target's labelled
budget it is the ``linear_probe`` regime and the LP-FT head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from benchmarks import keys
from benchmarks.inputs import RunContext
from common.cache import cached, stable_hash
from lightning_modules.domains import Domain
from lightning_modules.language_models import bits_per_byte, features_and_bits
from lightning_modules.probe import (
    LinearProbe,
    cross_validated,
    extract_features,
    fit_probe,
    l2_at_edge,
)
from lightning_modules.streaming import take

if TYPE_CHECKING:
    from benchmarks.pretraining import Pretrained


def fitted_probe(
    ctx: RunContext,
    backbone: nn.Module,
    dom: Domain,
    l2: float | None = None,
    labelled: torch.Tensor | None = None,
) -> LinearProbe:
    """A linear probe fitted on ``dom``'s train split (frozen features of ``backbone``).

    ``labelled`` (indices into the train split) restricts the fit to a label budget; None = all.
    A probe on the source domain uses ``ctx.source_probe`` (the declared settings, whatever a
    trial set), any other the run's ``cfg.probe``. With ``l2`` None the penalty is
    cross-validated (``probe.l2_grid``); otherwise it is fixed.
    """
    x_train, labels = dom.x_train, dom.y_train
    if labelled is not None:
        x_train, labels = take(x_train, labelled), labels[labelled]
    ftr = extract_features(backbone, x_train.to(ctx.device))
    p = ctx.source_probe if dom is ctx.source else ctx.cfg.probe
    grid, default = (p.l2_grid, p.default_l2) if l2 is None else ((), l2)
    labels = labels.to(ctx.device)
    return fit_probe(
        ftr, labels, dom.num_classes, grid, default, seed=ctx.cfg.train_seed, max_iter=p.max_iter
    )


def probe_accuracy(
    ctx: RunContext,
    backbone: nn.Module,
    dom: Domain,
    l2: float | None = None,
    labelled: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Test accuracy of :func:`fitted_probe` on ``dom``'s test split; returns (accuracy, l2).

    Forgetting probes reuse the l2 chosen for the pretrained backbone, so "before" and "after"
    are the same probe applied to two backbones.
    """
    probe = fitted_probe(ctx, backbone, dom, l2, labelled)
    fte = extract_features(backbone, dom.x_test.to(ctx.device))
    return _accuracy(probe, fte, dom), probe.l2


def _accuracy(probe: LinearProbe, test_features: torch.Tensor, dom: Domain) -> float:
    return float((probe.logits(test_features).argmax(1).cpu() == dom.y_test).float().mean())


def source_scores(
    ctx: RunContext, backbone: nn.Module, l2: float | None = None
) -> tuple[float, float, dict[str, float]]:
    """The source probe's (accuracy, l2) and, for a language model, ``{"source_bpb": ...}``.

    The probe is :func:`probe_accuracy`'s on the source. A causal LM's source test passages go
    through the model once for the probe's test features and the bits per byte together
    (:func:`features_and_bits`: the same numbers as two passes); images get ``{}``.
    """
    dom = ctx.source
    if not dom.is_text:
        return *probe_accuracy(ctx, backbone, dom, l2), {}
    probe = fitted_probe(ctx, backbone, dom, l2)
    x_test = dom.x_test.to(ctx.device)
    if getattr(backbone, "kind", None) == "causal":
        fte, bits = features_and_bits(backbone, x_test)
    else:
        fte, bits = extract_features(backbone, x_test), lm_bits(ctx, backbone, dom)
    return _accuracy(probe, fte, dom), probe.l2, {"source_bpb": bits}


def mask_share(ctx: RunContext) -> float:
    """The share of bytes a language model's objective masks: 0 for a causal LM (and images)."""
    return float(ctx.cfg.pretrain.mask_share or 0.0)


def lm_bits(ctx: RunContext, backbone: nn.Module, dom: Domain) -> float:
    """A language model's bits per byte on ``dom``'s test passages, masked as it was pretrained."""
    return bits_per_byte(backbone, dom.x_test.to(ctx.device), mask_share(ctx))


def cached_bits(
    ctx: RunContext, backbone: nn.Module, backbone_key: dict[str, Any], node: Any, dom: Domain
) -> float:
    """:func:`lm_bits` of a cached stage's backbone (``backbone_key``: its stage's key), cached.

    Every budget of a train seed reads the same pretrained and continued backbones, so their
    target (and stream) bits per byte are scored once per seed, not once per run.
    """
    key = keys.bits(ctx, stable_hash(backbone_key), node, dom)

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {}, {"bpb": lm_bits(ctx, backbone, dom)}

    _, meta, _ = cached(ctx.cfg.paths.cache_dir, "bits", key, build)
    return float(meta["bpb"])


@torch.no_grad()
def head_accuracy(ctx: RunContext, backbone: nn.Module, head: nn.Module) -> float:
    """Source test accuracy of ``head`` on ``backbone``'s features: the functional measure."""
    logits = head(extract_features(backbone, ctx.source.x_test.to(ctx.device)))
    return float((logits.argmax(1).cpu() == ctx.source.y_test).float().mean())


@dataclass(frozen=True)
class LabelledProbe:
    """The linear probe on the target's labelled budget and how its penalty was chosen."""

    probe: LinearProbe
    selected_by: str  # "cv", or "default" where the budget is too small to cross-validate
    at_edge: bool  # cross-validated and the choice is the grid's end: the report says so

    def info(self) -> dict[str, Any]:
        """The record's ``info`` entries of this probe."""
        return {
            "probe_l2": self.probe.l2,
            "probe_l2_selected_by": self.selected_by,
            "probe_l2_at_edge": self.at_edge,
        }


def fit_labelled_probe(
    ctx: RunContext, features: torch.Tensor, labelled: torch.Tensor | None = None
) -> LabelledProbe:
    """The linear probe on the labelled rows of ``features`` (target train split).

    ``labelled``: the rows it fits (a CV fold's share); None = the run's budget.
    """
    p = ctx.cfg.probe
    idx = (ctx.labelled if labelled is None else labelled).to(ctx.device)
    labels = ctx.target.y_train.to(ctx.device)[idx]
    probe = fit_probe(
        features[idx],
        labels,
        ctx.target.num_classes,
        p.l2_grid,
        p.default_l2,
        seed=ctx.cfg.train_seed,
        max_iter=p.max_iter,
    )
    cv = cross_validated(labels, ctx.target.num_classes, p.l2_grid)
    return LabelledProbe(probe, "cv" if cv else "default", cv and l2_at_edge(probe.l2, p.l2_grid))


@dataclass(frozen=True)
class Features:
    """A frozen backbone's target train/test features, and whether the cache held them."""

    train: torch.Tensor
    test: torch.Tensor
    hit: bool
    hash: str

    def info(self) -> dict[str, Any]:
        """The record's ``info`` entries of the features' cache use."""
        return {"features_cached": self.hit, "features_hash": self.hash}


def pretrained_features(ctx: RunContext, backbone: nn.Module, backbone_hash: str) -> Features:
    """Target train/test features of the (frozen) backbone, cached per backbone hash."""
    key = keys.features(ctx, backbone_hash)

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {
            "train": extract_features(backbone, ctx.target.x_train.to(ctx.device)).cpu(),
            "test": extract_features(backbone, ctx.target.x_test.to(ctx.device)).cpu(),
        }, {}

    with ctx.phase("features"):
        tensors, _, hit = cached(ctx.cfg.paths.cache_dir, "features", key, build)
    train, test = tensors["train"].to(ctx.device), tensors["test"].to(ctx.device)
    return Features(train, test, hit, stable_hash(key))


def forgetting(ctx: RunContext, pretrained: Pretrained, backbone: nn.Module) -> dict[str, float]:
    """Source probe accuracy before and after target training; forgetting = before - after.

    The probe's l2 is the one chosen for the pretrained backbone, so both sides are one probe.
    A language model also gets its source bits per byte before and after, and their rise.
    """
    with ctx.phase("eval"):
        before = pretrained.source_acc
        after, _, lm = source_scores(ctx, backbone, pretrained.probe_l2)
        out = {
            "source/acc_before": before,
            "source/acc_after": after,
            "source/forgetting": before - after,
        }
        if pretrained.source_bpb is not None:  # a language model: its LM skill on the source
            bits = lm["source_bpb"]
            out |= {
                "lm/source_bpb_before": pretrained.source_bpb,
                "lm/source_bpb_after": bits,
                "lm/source_bpb_rise": bits - pretrained.source_bpb,
            }
        if pretrained.source_head is not None:  # a supervised source stage left its head
            head_before = pretrained.source_head.acc
            head_after = head_accuracy(ctx, backbone, pretrained.source_head.head)
            out |= {
                "source/head_acc_before": head_before,
                "source/head_acc_after": head_after,
                "source/head_forgetting": head_before - head_after,
            }
    return out
