"""Backbones: a thin wrapper around ``timm.create_model``, the suite's only model factory."""

from __future__ import annotations

from pathlib import Path

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


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors or a torch file, loaded without running pickled code."""
    if not path.is_file():
        raise ModelError(f"model.checkpoint={path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: object = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch/safetensors raise many types for a damaged file
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelError(f"model.checkpoint={path} is not a readable checkpoint ({why})") from None
    for key in ("state_dict", "model"):  # Lightning and timm training-script wrappers
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict):
        raise ModelError(f"model.checkpoint={path} holds a {type(data).__name__}, not tensors")
    return {k.removeprefix("module.").removeprefix("backbone."): v for k, v in data.items()}


def load_checkpoint(backbone: nn.Module, path: str | Path) -> None:
    """Load a local weights file into ``backbone``, naming the first tensor that does not fit.

    The file's classifier (timm's ``default_cfg['classifier']``) is ignored: the suite's
    backbones have none. Every other tensor must be present with the model's shape.
    """
    path = Path(path).expanduser()
    state = _read_file(path)
    classifier = str(getattr(backbone, "default_cfg", {}).get("classifier", "fc"))
    own = backbone.state_dict()
    for key, tensor in own.items():
        if key not in state:
            raise ModelError(f"model.checkpoint={path} lacks tensor {key!r} of the model")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ModelError(
                f"model.checkpoint={path} does not fit the model: tensor {key!r} has shape "
                f"{tuple(state[key].shape)} in the file, {tuple(tensor.shape)} in the model"
            )
    extra = [k for k in state if k not in own and not k.startswith(f"{classifier}.")]
    if extra:
        raise ModelError(f"model.checkpoint={path} has tensor {extra[0]!r} the model does not")
    backbone.load_state_dict({k: state[k] for k in own})


def pretrained_timm(name: str, in_chans: int, drop_rate: float | None) -> nn.Module:
    """Timm's own hub weights (needs a network the first time; timm caches them)."""
    extra = {"drop_rate": drop_rate} if drop_rate is not None else {}
    try:
        return timm.create_model(name, pretrained=True, num_classes=0, in_chans=in_chans, **extra)
    except Exception as err:  # hub and network errors come in many types
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelError(
            f"timm could not load pretrained weights for model.name={name!r} ({why}); without a "
            "network set model.checkpoint=PATH to a local .safetensors/.pt file"
        ) from None
