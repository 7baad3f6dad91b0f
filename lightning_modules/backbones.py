"""Backbones: a thin wrapper around ``timm.create_model``, the suite's only model factory."""

from __future__ import annotations

import timm
import torch
from torch import nn


class ModelError(ValueError):
    """A model name timm does not know, or a checkpoint that does not fit it."""


def create_backbone(name: str, in_chans: int = 1, **kwargs: object) -> nn.Module:
    """A timm model without its classifier; ``num_features`` is its feature width.

    Keyword arguments that are None are dropped, so None means "timm's default" (as in timm's
    own factories) and configs need not repeat model defaults.
    """
    if not timm.is_model(name):
        raise ModelError(
            f"model.name={name!r} is not a timm model; see timm.list_models(), e.g. test_resnet"
        )
    extra = {k: v for k, v in kwargs.items() if v is not None}
    return timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans, **extra)


def clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of a module's state, safe to keep while the module trains on."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
