"""Bring your own: a backbone factory and a target-training LightningModule, by ``_target_``.

``model.factory`` and ``train.module`` are nodes Hydra instantiates; null means the built-in.

The contract (README, "Bring your own"):

- ``model.factory``: a callable; the suite seeds torch, then calls it with ``in_chans=<int>``
  (and the node's other keys). It returns an ``nn.Module`` with an int ``num_features`` whose
  forward maps normalised images ``(N, in_chans, H, W)`` to features ``(N, num_features)``. It
  replaces timm's model everywhere a backbone is built: scratch init, pretraining, continued
  pretraining, the restored copy of a cached stage, the probes.
- ``train.module``: a ``LightningModule`` class; the suite instantiates it with ``backbone``,
  ``num_classes``, the ``train`` hyperparameters (``lr``, ``head_lr``, ``weight_decay``,
  ``steps``, ``warmup_fraction``, ``augment``, ``seed``) and ``head_init`` (None, or LP-FT's
  probe ``(weight (D, K), bias (K,))``), plus the node's other keys. It defines
  ``training_step`` on ``(images in [0, 1], labels)`` batches, ``configure_optimizers`` and
  ``predict_logits(images) -> (N, num_classes)``, and trains the backbone it was given in place
  (forgetting probes that object afterwards).

Both are checked before anything is trained or written: a ``_target_`` that does not import, or
an object that misses a piece of the contract, is a ConfigError naming it.
"""

from __future__ import annotations

from typing import Any

import lightning as L  # noqa: N812
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig
from torch import nn

from benchmarks.config import ConfigError

# What target training and evaluation call on a user's module.
MODULE_METHODS = ("training_step", "configure_optimizers", "predict_logits")


def _located(node: Any, key: str) -> tuple[str, Any]:
    """The node's ``_target_`` and the object it names, or a ConfigError naming the key."""
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if not target:
        raise ConfigError(f"{key} must be null or a node with a _target_, got {node!r}")
    try:
        return str(target), get_object(str(target))
    except Exception as err:  # noqa: BLE001 - import errors come in every type
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{key}._target_={target!r} does not import ({why})") from None


def build_backbone(node: DictConfig, in_chans: int) -> nn.Module:
    """The user's backbone for ``in_chans`` input channels (the caller seeds torch first)."""
    return instantiate(node, in_chans=in_chans)


def build_module(node: DictConfig, **arguments: Any) -> L.LightningModule:
    """The user's target-training module, given what the contract promises it.

    The node is instantiated as a partial and then called: passed to ``instantiate`` directly,
    the arguments would be merged into the config first, and ``head_init``'s tuple of tensors
    would reach the module as a ListConfig.
    """
    return instantiate(node, _partial_=True)(**arguments)


def check_factory(node: DictConfig, in_chans: int) -> None:
    """Refuse a factory that does not import or does not build a backbone with ``num_features``.

    The factory is called once: only the built module can say whether it has the width.
    """
    target, factory = _located(node, "model.factory")
    if not callable(factory):
        raise ConfigError(f"model.factory._target_={target!r} is not callable")
    try:
        backbone = build_backbone(node, in_chans)
    except Exception as err:  # noqa: BLE001 - the user's code may raise anything
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"model.factory._target_={target!r} failed to build ({why})") from None
    if not isinstance(backbone, nn.Module):
        kind = type(backbone).__name__
        raise ConfigError(f"model.factory._target_={target!r} returned a {kind}, not an nn.Module")
    if not isinstance(getattr(backbone, "num_features", None), int):
        raise ConfigError(
            f"model.factory._target_={target!r} built a module without an int num_features"
        )


def check_module(node: DictConfig) -> None:
    """Refuse a ``train.module`` that is not a LightningModule class with the contract's methods.

    ``training_step`` and ``configure_optimizers`` exist on LightningModule itself (and raise or
    warn there), so the class must define its own.
    """
    target, cls = _located(node, "train.module")
    if not (isinstance(cls, type) and issubclass(cls, L.LightningModule)):
        raise ConfigError(f"train.module._target_={target!r} is not a LightningModule class")
    for name in MODULE_METHODS:
        if getattr(cls, name, None) is getattr(L.LightningModule, name, None):
            raise ConfigError(
                f"train.module._target_={target!r} does not define {name}() "
                "(see README, 'Bring your own')"
            )


def _used(cfg: DictConfig, reads: tuple[str, ...]) -> tuple[DictConfig | None, DictConfig | None]:
    """The factory and module nodes a regime reading ``reads`` uses (None: the built-in or none).

    A regime builds a backbone when it pretrains or trains one; the pixel baselines build none.
    """
    factory = cfg.model.factory if {"pretrain", "train"} & set(reads) else None
    module = cfg.train.module if "train" in reads else None
    return factory, module


def check(cfg: DictConfig, reads: tuple[str, ...], in_chans: int) -> None:
    """Refuse user code the run would use that breaks the contract; nothing for the built-ins."""
    factory, module = _used(cfg, reads)
    if factory is not None:
        if "pretrain" in reads and cfg.pretrain.objective == "timm" and not cfg.model.checkpoint:
            raise ConfigError(
                "pretrain=timm downloads timm's weights of model.name, not model.factory's "
                "model; set model.checkpoint=PATH to weights of the factory's backbone"
            )
        check_factory(factory, in_chans)
    if module is not None:
        check_module(module)


def info(cfg: DictConfig, reads: tuple[str, ...]) -> dict[str, str]:
    """The record's ``info`` entries naming the user code a run used; none for the built-ins."""
    factory, module = _used(cfg, reads)
    out = {}
    if factory is not None:
        out["model_factory"] = str(factory._target_)
    if module is not None:
        out["train_module"] = str(module._target_)
    return out
