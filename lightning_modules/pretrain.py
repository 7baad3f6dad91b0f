"""PretrainModule: trains a backbone with one objective and hands the backbone on.

Objectives: ``supervised`` (cross-entropy on the source labels, a linear head), ``simclr``
(NT-Xent on two augmented views, an MLP projection head that is discarded afterwards, as in
Chen et al. 2020), and for text backbones ``clm`` (next-byte prediction, GPT-2) and ``mlm``
(masked bytes, BERT), whose LM head is part of the backbone (``language_models.py``). The
head is kept on the module so a supervised source head can be re-attached later for
head-retained forgetting.
"""

from __future__ import annotations

import lightning as L  # noqa: N812
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lightning_modules.augment import AugmentGenerator, random_affine, ssl_view
from lightning_modules.language_models import lm_loss
from lightning_modules.normalization import normalize, stats_of
from lightning_modules.objectives import nt_xent
from lightning_modules.optim import adamw, check_finite, log_step, warmup_cosine

OBJECTIVES = ("supervised", "simclr", "clm", "mlm")
# objectives that load published weights instead of running a stage: timm's image models, and a
# Hugging Face checkpoint's (model=hf_lm)
PUBLISHED = ("timm", "hf")
LM_OBJECTIVES = {"clm": "causal", "mlm": "masked"}  # objective -> the TextBackbone kind it trains
SCHEDULES = ("rewarm", "constant")  # learning rate over a stage


class PretrainModule(AugmentGenerator, L.LightningModule):
    """One pretraining stage.

    Args:
        backbone: the timm backbone to train (injected; it may already be pretrained).
        objective: ``supervised`` or ``simclr``.
        num_classes: source label count (supervised head size; unused by simclr).
        lr: peak AdamW learning rate.
        weight_decay: AdamW decoupled weight decay.
        steps: optimiser steps (schedule length).
        warmup_fraction: share of steps in linear warm-up.
        temperature: NT-Xent temperature (simclr).
        mask_share: share of each passage's bytes masked (mlm).
        proj_dim: projection output width (simclr).
        seed: seeds the augmentation generator.
        schedule: ``rewarm`` (linear warm-up, cosine decay: the default, and a re-warm when the
            backbone is already trained) or ``constant`` (the learning rate held at ``lr``).
    """

    def __init__(
        self,
        backbone: nn.Module,
        objective: str,
        num_classes: int,
        lr: float,
        weight_decay: float,
        steps: int,
        warmup_fraction: float = 0.1,
        temperature: float = 0.5,
        proj_dim: int = 64,
        seed: int = 0,
        schedule: str = "rewarm",
        mask_share: float = 0.15,
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"pretrain.objective={objective!r}; allowed: {', '.join(OBJECTIVES)}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule={schedule!r}; allowed: {', '.join(SCHEDULES)}")
        self.save_hyperparameters(ignore=["backbone"])
        self.backbone = backbone
        width = backbone.num_features
        if objective in LM_OBJECTIVES:  # the LM head is the backbone's own
            self.head: nn.Module = nn.Identity()
        elif objective == "supervised":
            self.head = nn.Linear(width, num_classes)
        else:
            self.head = nn.Sequential(nn.Linear(width, 128), nn.ReLU(), nn.Linear(128, proj_dim))

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(normalize(x, stats_of(self.backbone))))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        """Supervised cross-entropy or NT-Xent, on freshly augmented views; logs loss and lr."""
        x, y = batch
        gen = self.generator(x.device)
        if self.hparams.objective in LM_OBJECTIVES:
            loss = lm_loss(self.backbone, x, self.hparams.mask_share, gen)
        elif self.hparams.objective == "supervised":
            loss = F.cross_entropy(self._embed(random_affine(x, gen)), y)
        else:
            z1 = self._embed(ssl_view(x, gen))
            z2 = self._embed(ssl_view(x, gen))
            loss = nt_xent(z1, z2, self.hparams.temperature)
        check_finite(loss, batch_idx)
        log_step(self, loss, ("lr",))
        return loss

    def configure_optimizers(self) -> dict:
        """AdamW over backbone and head with the stage's schedule (per step)."""
        hp = self.hparams
        opt = adamw([{"params": self.parameters(), "lr": hp.lr}], weight_decay=hp.weight_decay)
        if hp.schedule == "constant":
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
        else:
            sched = warmup_cosine(opt, hp.steps, hp.warmup_fraction)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
