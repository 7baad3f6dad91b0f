"""The README's "Bring your own" example: a backbone factory and a LightningModule of a user's.

tests/test_bring_your_own.py runs both through the real ``regimebench`` entry point by
``_target_``; nothing here imports the suite, as a user's module would not need to.
"""

from __future__ import annotations

import lightning as L  # noqa: N812
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class SmallCNN(nn.Module):
    """Two convolutions pooled to a 4x4 grid: features of width ``num_features`` = 16 * width."""

    def __init__(self, in_chans: int, width: int = 16) -> None:
        super().__init__()
        self.num_features = 16 * width  # the contract: the feature width, an int
        self.body = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) normalised images -> (N, 16 * width) features."""
        return self.body(x)


def small_cnn(in_chans: int, width: int = 16) -> nn.Module:
    """``model.factory``: called with ``in_chans`` and the node's other keys (``width``)."""
    return SmallCNN(in_chans, width)


class UserClassifier(L.LightningModule):
    """A user's target module: backbone + linear head, Adam, label-smoothed cross-entropy.

    It takes the arguments it uses by name and ignores the rest (``**unused``).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        lr: float,
        steps: int,
        head_init: tuple[torch.Tensor, torch.Tensor] | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        **unused: object,
    ) -> None:
        super().__init__()
        self.backbone = backbone  # trained in place: forgetting probes this object afterwards
        self.head = nn.Linear(backbone.num_features, num_classes)
        if head_init is not None:  # lp_ft: the probe's (weight (D, K), bias (K,))
            with torch.no_grad():
                self.head.weight.copy_(head_init[0].T)
                self.head.bias.copy_(head_init[1])
        self.lr, self.steps, self.betas = lr, steps, tuple(betas)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for images in [0, 1] (centred here: the module owns its preprocessing)."""
        return self.head(self.backbone(x - 0.5))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        """Cross-entropy; logs it as ``train/loss`` and the mean logit margin of the true class."""
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=0.1)
        margin = logits.gather(1, y[:, None]).mean() - logits.mean()
        self.log_dict({"train/loss": loss, "train/margin": margin})
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam at ``train.lr``, no schedule."""
        return torch.optim.Adam(self.parameters(), lr=self.lr, betas=self.betas)

    @torch.no_grad()
    def predict_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Test-split logits in eval mode, in batches."""
        self.eval()
        return torch.cat([self(chunk) for chunk in x.split(512)])


class NoPredict(L.LightningModule):
    """Breaks the contract: no ``predict_logits``."""

    def __init__(self, backbone: nn.Module, num_classes: int, **unused: object) -> None:
        super().__init__()
        self.backbone = backbone

    def training_step(self, batch, batch_idx):
        """Never reached: the run is refused first."""
        return self.backbone(batch[0]).sum()

    def configure_optimizers(self):
        """Never reached: the run is refused first."""
        return torch.optim.SGD(self.parameters(), lr=0.1)


def no_width(in_chans: int) -> nn.Module:
    """Breaks the contract: a module without ``num_features``."""
    return nn.Conv2d(in_chans, 4, 3)
