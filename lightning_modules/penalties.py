"""Penalties that hold a fine-tuned backbone near its pretrained weights: L2-SP and EWC.

Both are ``(strength / 2) * sum_i w_i * (theta_i - theta*_i)^2`` over the backbone's
parameters, with ``theta*`` the pretrained weights:

- L2-SP (Li, Grandvalet & Davoine 2018, arXiv 1802.01483): ``w_i = 1``, the distance to the
  starting point instead of to zero.
- EWC (Kirkpatrick et al. 2017, PNAS; METRICS.md section 3): ``w_i = F_i``, the diagonal Fisher of
  the source task at ``theta*``, ``F_i = E_x E_{y ~ p(y|x)} (d log p(y|x) / d theta_i)^2`` with
  ``y`` drawn from the model (the "true" Fisher, not the empirical one with the labels), computed
  exactly over ``y`` (a sum over the classes, weighted by ``p(y|x)``) rather than sampled.

The new head is not penalised (it has no pretrained value); AdamW's decoupled weight decay still
applies to every weight, so at ``strength: 0`` the fit is plain fine-tuning, step for step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from lightning_modules.normalization import normalize, stats_of
from lightning_modules.streaming import Images, chunks

Head = Callable[[torch.Tensor], torch.Tensor]  # backbone features -> source-class logits


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
            self.importance = {n: importance[n].to(self.anchor[n]) for n in self.anchor}

    def __call__(self, backbone: nn.Module) -> torch.Tensor:
        """The penalty of ``backbone``'s current parameters (differentiable)."""
        total = torch.zeros((), device=next(iter(self.anchor.values())).device)
        for name, param in backbone.named_parameters():
            diff = (param - self.anchor[name]).pow(2)
            if self.importance is not None:
                diff = diff * self.importance[name]
            total = total + diff.sum()
        return 0.5 * self.strength * total


def diagonal_fisher(
    backbone: nn.Module, head: Head, images: Images, batch_size: int = 64
) -> dict[str, torch.Tensor]:
    """The source task's diagonal Fisher at the backbone's current weights, per parameter name.

    ``F_i = (1/N) sum_x sum_y p(y|x) (d log p(y|x) / d theta_i)^2``, with ``p`` the softmax of
    ``head(backbone(x))`` in eval mode (BatchNorm's running statistics: the network as it
    predicts). Per-example gradients come from ``torch.func`` (a Jacobian of the log-probabilities
    per example, vectorised over a batch), so the expectation over ``y`` is exact. The head is
    held fixed: only the backbone's parameters get a Fisher.
    """
    stats = stats_of(backbone)
    was_training = backbone.training
    backbone.eval()
    params = {n: p.detach() for n, p in backbone.named_parameters()}
    buffers = dict(backbone.named_buffers())

    def log_probs(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        features = functional_call(backbone, (p, buffers), (x.unsqueeze(0),))
        return torch.log_softmax(head(features), dim=-1).squeeze(0)

    per_example = vmap(jacrev(log_probs), in_dims=(None, 0))  # {name: (B, K, *shape)}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    try:
        for chunk in chunks(images, batch_size):
            x = normalize(chunk, stats)
            with torch.no_grad():
                prob = torch.softmax(head(backbone(x)), dim=-1)  # (B, K): eval mode, per example
            jac = per_example(params, x)
            for name, j in jac.items():
                weight = prob.reshape(*prob.shape, *([1] * (j.dim() - 2)))
                fisher[name] += (weight * j.pow(2)).sum(dim=(0, 1))
            count += x.shape[0]
    finally:
        backbone.train(was_training)
    return {n: f / max(count, 1) for n, f in fisher.items()}
