"""Compute accounting: FLOPs of a training step (torch's own counter) and peak memory.

Two traps of ``torch.utils.flop_counter`` (torch 2.14), measured and corrected here:

- The weight gradient of a grouped or depthwise convolution is counted as if ``groups`` were 1,
  that is ``groups`` times too much. ``aten.convolution_backward`` gets a corrected formula
  (the grad-weight term divided by ``groups``); the forward and grad-input terms are right.
- timm's fused attention calls ``scaled_dot_product_attention``; on the CPU that dispatches to
  an op the counter has no formula for, so attention FLOPs silently vanish. Templates are built
  with timm's fused attention switched off, which makes attention explicit matmuls.

FLOPs do not depend on weights, so a step is counted once per process for each
(model, image size, batch size, classes) on a fresh template, never on the run's own module,
whose BatchNorm statistics must not move.
"""

from __future__ import annotations

import functools
import json
import resource
import sys
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from omegaconf import OmegaConf
from timm.layers import set_fused_attn, use_fused_attn
from torch.utils import flop_counter

from benchmarks.user_code import build_backbone
from lightning_modules.backbones import create_backbone
from lightning_modules.classifier import ClassifierModule
from lightning_modules.language_models import text_backbone
from lightning_modules.normalization import TOKEN_IDS, InputStats, with_stats

aten = torch.ops.aten


def _conv_backward_flop(
    grad_out_shape: Any,
    x_shape: Any,
    w_shape: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    transposed: bool,
    output_padding: Any,
    groups: int,
    output_mask: list[bool],
    out_shape: Any,
    **kwargs: Any,
) -> int:
    """Torch's formula with the grad-weight term divided by ``groups`` (see module docstring)."""
    args = (
        grad_out_shape,
        x_shape,
        w_shape,
        bias,
        stride,
        padding,
        dilation,
        transposed,
        output_padding,
        groups,
    )
    # torch's registered formula is shape-wrapped: the output shapes go in as ``out_val``
    formula = flop_counter.conv_backward_flop
    grad_input = formula(*args, [output_mask[0], False, False], out_val=out_shape)
    grad_weight = formula(*args, [False, output_mask[1], False], out_val=out_shape)
    return grad_input + grad_weight // groups


def flop_counter_mode() -> flop_counter.FlopCounterMode:
    """A FlopCounterMode with the grouped-convolution correction."""
    return flop_counter.FlopCounterMode(
        display=False, custom_mapping={aten.convolution_backward: _conv_backward_flop}
    )


class unfused_attention:  # noqa: N801 - used like a function, as a context manager
    """Build timm models with explicit attention so the counter sees its matmuls."""

    def __enter__(self) -> None:
        self._was = use_fused_attn()
        set_fused_attn(False)

    def __exit__(self, *exc: object) -> None:
        set_fused_attn(self._was)


@functools.lru_cache(maxsize=32)
def train_step_flops(
    model: str, image_size: int, batch_size: int, num_classes: int, factory: str | None = None
) -> int:
    """FLOPs of one forward + backward of backbone and head (optimizer update not counted).

    ``factory``: ``model.factory`` as JSON, whose backbone is counted instead of timm's
    ``model``. A user's ``train.module`` is counted as the built-in head on its backbone.
    The template is seeded inside a forked RNG: the count is cached per process, so reseeding
    the global RNG only on the first call would leave a run's RNG state depending on which
    runs came before it in the same process.
    """
    with unfused_attention(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if factory is None:
            backbone = create_backbone(model)
        else:
            backbone = build_backbone(OmegaConf.create(json.loads(factory)), in_chans=1)
        backbone = with_stats(backbone, InputStats((0.0,), (1.0,), "FLOPs only"))
        module = ClassifierModule(backbone, num_classes, 1e-3, 1e-3, 0.0, 1)
        x = torch.rand(batch_size, 1, image_size, image_size)
    y = torch.arange(batch_size) % num_classes
    with flop_counter_mode() as counter:
        F.cross_entropy(module(x), y).backward()
    return int(counter.get_total_flops())


@functools.lru_cache(maxsize=32)
def text_step_flops(model: str, length: int, batch_size: int, num_classes: int) -> int:
    """FLOPs of one forward + backward of a text backbone (``model`` as JSON) and its head.

    Counted on passages of ``length`` printable ASCII bytes with no padding, an upper bound for
    padded ones (a checkpoint's tokenizer makes at most one token of each such byte).
    """
    m = json.loads(model)
    with torch.random.fork_rng(devices=[]):
        backbone = with_stats(text_backbone(m["name"], m["text"], 0), TOKEN_IDS)
        module = ClassifierModule(backbone, num_classes, 1e-3, 1e-3, 0.0, 1)
        x = torch.randint(32, 127, (batch_size, length))
    y = torch.arange(batch_size) % num_classes
    with flop_counter_mode() as counter:
        F.cross_entropy(module(x), y).backward()
    return int(counter.get_total_flops())


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak memory: CUDA allocator peak on a GPU; on the CPU the process's peak RSS.

    The RSS peak is process-wide (it never goes down), so in an in-process sweep it bounds,
    rather than measures, one run.
    """
    if device.type == "cuda":
        return {"cuda_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20}
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return {"process_peak_rss_mb": peak / 2**20}
