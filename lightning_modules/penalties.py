"""Penalties that hold a fine-tuned backbone near its pretrained weights: L2-SP and EWC.

Both are ``(strength / 2) * sum_i w_i * (theta_i - theta*_i)^2`` over the backbone's
parameters, with ``theta*`` the pretrained weights:

- L2-SP (Li, Grandvalet & Davoine 2018, arXiv 1802.01483): ``w_i = 1``, the distance to the
  starting point instead of to zero.
- EWC (Kirkpatrick et al. 2017, PNAS; METRICS.md section 3): ``w_i = F_i``, the diagonal Fisher of
  the source task at ``theta*``, ``F_i = E_x E_{y ~ p(y|x)} (d log p(y|x) / d theta_i)^2`` with
  ``y`` drawn from the model (the "true" Fisher, not the empirical one with the labels), computed
  exactly over ``y`` (a sum over the classes, weighted by ``p(y|x)``) rather than sampled.

The new head is not penalised (it has no pretrained value). AdamW's decoupled weight decay toward
zero still applies to every weight (Li et al. replace it on the backbone by the pull toward
``theta*``; at the default decay, 0.05 at a peak rate of 1e-3 over 150 steps, it shrinks a weight
by under 1%), so at ``strength: 0`` the fit is plain fine-tuning, step for step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from lightning_modules.normalization import normalize, stats_of
from lightning_modules.streaming import Images, chunks

Head = Callable[[torch.Tensor], torch.Tensor]  # backbone features -> source-class logits
# Floats of per-example gradients held at once while the Fisher is computed (800 MB).
GRADIENT_FLOATS = 200_000_000


class AnchorPenalty:
    """``(strength / 2) * sum_i w_i (theta_i - theta*_i)^2`` toward the weights it was made from.

    Args:
        backbone: the pretrained backbone; its parameters now are ``theta*`` (copied).
        strength: the penalty's multiplier (lambda of EWC, alpha of L2-SP).
        importance: per-parameter weights ``w`` by parameter name (EWC's Fisher); None = 1.
    """

    def __init__(
        self,
        backbone: nn.Module,
        strength: float,
        importance: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.strength = float(strength)
        self.anchor = {n: p.detach().clone() for n, p in backbone.named_parameters()}
        self.importance = None
        if importance is not None:
            missing = self.anchor.keys() - importance.keys()
            if missing:
                raise ValueError(f"importance lacks parameters: {sorted(missing)[:3]}")
            self.importance = {n: importance[n].detach().to(self.anchor[n]) for n in self.anchor}

    def _to(self, device: torch.device) -> None:
        """Follow the module: a strategy may move it after the penalty was made (DDP ranks)."""
        self.anchor = {n: a.to(device) for n, a in self.anchor.items()}
        if self.importance is not None:
            self.importance = {n: w.to(device) for n, w in self.importance.items()}

    def __call__(self, backbone: nn.Module) -> torch.Tensor:
        """The penalty of ``backbone``'s current parameters (differentiable)."""
        params = dict(backbone.named_parameters())
        device = next(iter(params.values())).device
        if next(iter(self.anchor.values())).device != device:
            self._to(device)
        total = torch.zeros((), device=device)
        for name, param in params.items():
            diff = (param - self.anchor[name]).pow(2)
            if self.importance is not None:
                diff = diff * self.importance[name]
            total = total + diff.sum()
        return 0.5 * self.strength * total


def diagonal_fisher(
    backbone: nn.Module, head: Head, images: Images, batch_size: int | None = None
) -> dict[str, torch.Tensor]:
    """The source task's diagonal Fisher at the backbone's current weights, per parameter name.

    ``F_i = (1/N) sum_x sum_y p(y|x) (d log p(y|x) / d theta_i)^2``, with ``p`` the softmax of
    ``head(backbone(x))`` in eval mode (BatchNorm's running statistics: the network as it
    predicts). Per-example gradients come from ``torch.func`` (a Jacobian of the log-probabilities
    per example, vectorised over a chunk), so the expectation over ``y`` is exact. A Jacobian
    holds (examples x classes x parameters) floats: ``batch_size`` None sizes the chunk to
    :data:`GRADIENT_FLOATS` (64 examples of the default model; one for a ResNet-18 with ten
    classes). One class at a time with ``grad`` would hold less but ran 1.6x slower here. The
    head is held fixed: only the backbone's parameters get a Fisher.
    """
    stats = stats_of(backbone)
    was_training = backbone.training
    backbone.eval()
    params = {n: p.detach() for n, p in backbone.named_parameters()}
    buffers = {n: b.detach() for n, b in backbone.named_buffers()}

    def log_probs(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        features = functional_call(backbone, (p, buffers), (x.unsqueeze(0),))
        return torch.log_softmax(head(features), dim=-1).squeeze(0)

    per_example = vmap(jacrev(log_probs), in_dims=(None, 0))  # {name: (B, K, *shape)}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    try:
        for chunk in chunks(images, batch_size or _chunk(backbone, head, images, params)):
            x = normalize(chunk, stats)
            with torch.no_grad():
                prob = torch.softmax(head(backbone(x)), dim=-1)  # (B, K): eval mode, per example
            for name, j in per_example(params, x).items():
                weight = prob.reshape(*prob.shape, *([1] * (j.dim() - 2)))
                fisher[name] += (weight * j.pow(2)).sum(dim=(0, 1)).detach()
            count += x.shape[0]
    finally:
        backbone.train(was_training)
    return {n: f / max(count, 1) for n, f in fisher.items()}


def _chunk(backbone: nn.Module, head: Head, images: Images, params: dict[str, torch.Tensor]) -> int:
    """Examples per chunk: as many as fit :data:`GRADIENT_FLOATS` (at most 64)."""
    first = next(iter(chunks(images, 1)))
    with torch.no_grad():
        classes = head(backbone(normalize(first, stats_of(backbone)))).shape[-1]
    size = sum(p.numel() for p in params.values())
    return max(1, min(64, GRADIENT_FLOATS // (size * classes)))
