"""K target fits of one architecture trained as one computation: grouped convolutions.

A sweep's target fits share the model and the data shape and differ only in seed, learning rate
or labelled subset. Placed side by side in the channel dimension, K convolution-and-BatchNorm
networks are one network: every ``Conv2d(C, D, groups=g)`` becomes ``Conv2d(K*C, K*D,
groups=K*g)`` (model k reads and writes only its own channel block), every ``BatchNorm2d(C)``
becomes ``BatchNorm2d(K*C)`` (batch statistics are per channel, hence per model, over that
model's own batch), and activations, pooling and residual additions are elementwise or per
channel. Row n of model k's batch sits in the channels of block k of input row n, so each model
keeps its own batches and augmentation draws; its trajectory is its separate fit's up to the
order of float summation inside the kernels.

The weights stay the K modules' own parameters: the grouped weight is their concatenation,
rebuilt at every forward pass (its backward splits the gradient back), so every module keeps
its own optimiser and schedule (``configure_optimizers``, AdamW per model, learning rates and
warm-up exactly the separate fit's) and needs no copy-back. Only BatchNorm's running statistics
live in the stacked layer during the fit; :meth:`StackedClassifier.write_back` returns them.

torch.func (``stack_module_state`` + ``functional_call`` + ``vmap``) runs the same kernels: in
torch's profiler its batching rules fold the model dimension into the groups of one convolution
and into the channels of one batch norm (running statistics batched, updated in place). Grouping
by hand keeps the modules' own parameters and optimisers, and lets 1x1-spatial layers be matmuls.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lightning_modules.classifier import ClassifierModule
from lightning_modules.datamodules import RandomBatches
from lightning_modules.normalization import normalize, stats_of
from lightning_modules.optim import check_finite
from lightning_modules.probe import normalize_features


class StackError(ValueError):
    """Modules that cannot be trained as one grouped network (different shapes, other layers)."""


class GroupedConv2d(nn.Module):
    """K ``Conv2d`` of equal shape as one grouped convolution over their parameters.

    ``pointwise``: on a 1x1 input with a 1x1 output (the default model's last stages see 16x16
    images at 1x1) only one kernel tap meets a pixel, the others meet zero padding; the layer is
    then a matrix product of that tap, computed as one batched matmul. Exact up to float order
    (the dropped terms are products with zeros), and 5-6x faster than oneDNN's grouped
    convolution of the same shape on an AVX2 CPU (fwd+bwd, K=8, 192->96 channels, 3x3).
    """

    def __init__(self, convs: Sequence[nn.Conv2d], pointwise: bool = True) -> None:
        super().__init__()
        self.convs = list(convs)  # not registered: the parameters belong to the K modules
        c = convs[0]
        if c.padding_mode != "zeros" or isinstance(c.padding, str):
            raise StackError(f"Conv2d with padding {c.padding!r}/{c.padding_mode} is not stacked")
        self.args = (c.stride, c.padding, c.dilation, c.groups * len(convs))
        dims = zip(c.padding, c.dilation, c.kernel_size, c.stride, strict=True)
        # the tap that meets input pixel 0 from output pixel 0, when the output is 1x1
        taps = [p // d if p % d == 0 and p // d < k and 2 * p - d * (k - 1) < s else None
                for p, d, k, s in dims]  # fmt: skip
        self.tap = taps if pointwise and c.groups == 1 and None not in taps else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The K convolutions, model k on channel block k."""
        k = len(self.convs)
        bias = None if self.convs[0].bias is None else torch.cat([c.bias for c in self.convs])
        if self.tap is not None and x.shape[-2:] == (1, 1):
            i, j = self.tap
            weight = torch.stack([c.weight[:, :, i, j] for c in self.convs])  # (K, out, in)
            out = torch.bmm(x.view(x.shape[0], k, -1).transpose(0, 1), weight.transpose(1, 2))
            out = out.transpose(0, 1).reshape(x.shape[0], -1, 1, 1)
            return out if bias is None else out + bias.view(1, -1, 1, 1)
        weight = torch.cat([c.weight for c in self.convs])
        return F.conv2d(x, weight, bias, *self.args)


class GroupedBatchNorm2d(nn.Module):
    """K ``BatchNorm2d`` as one, with per-model running statistics side by side."""

    def __init__(self, bns: Sequence[nn.BatchNorm2d]) -> None:
        super().__init__()
        b = bns[0]
        if not (b.affine and b.track_running_stats and b.momentum is not None):
            raise StackError("BatchNorm2d without affine, running statistics or momentum")
        self.bns, self.eps, self.momentum = list(bns), b.eps, b.momentum
        self.register_buffer("running_mean", torch.cat([m.running_mean for m in bns]).clone())
        self.register_buffer("running_var", torch.cat([m.running_var for m in bns]).clone())
        self.steps = 0  # batches seen here, added to each model's num_batches_tracked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Batch norm per channel; training mode updates the running statistics (in place)."""
        weight = torch.cat([m.weight for m in self.bns])
        bias = torch.cat([m.bias for m in self.bns])
        self.steps += self.training
        return F.batch_norm(
            x, self.running_mean, self.running_var, weight, bias, self.training,
            self.momentum, self.eps,
        )  # fmt: skip

    @torch.no_grad()
    def write_back(self) -> None:
        """Each model's slice of the running statistics into its own BatchNorm2d."""
        for m, mean, var in zip(
            self.bns,
            self.running_mean.chunk(len(self.bns)),
            self.running_var.chunk(len(self.bns)),
            strict=True,
        ):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.add_(self.steps)
        self.steps = 0


def stack_backbones(backbones: Sequence[nn.Module]) -> nn.Module:
    """One network computing ``backbones`` side by side in the channel dimension.

    Raises:
        StackError: the backbones differ in structure or shape, or hold a layer with
            parameters or buffers other than Conv2d and BatchNorm2d (a Linear or LayerNorm
            mixes channels across models), or apply dropout (drawn from the global generator,
            it could not match the separate fits' draws).
    """
    first = backbones[0]
    if getattr(first, "drop_rate", 0):
        raise StackError("a backbone with dropout is not stacked (global-RNG draws)")
    shapes = [[(k, v.shape) for k, v in b.state_dict().items()] for b in backbones]
    if any(s != shapes[0] for s in shapes):
        raise StackError("backbones of different structure or shape")
    stacked = copy.deepcopy(first)
    parts = [dict(b.named_modules()) for b in backbones]
    for name, module in list(stacked.named_modules()):
        same = [p[name] for p in parts]
        if type(module) is nn.Conv2d:
            new: nn.Module = GroupedConv2d(same)
        elif type(module) is nn.BatchNorm2d:
            new = GroupedBatchNorm2d(same)
        elif next(module.parameters(recurse=False), None) is not None or any(
            True for _ in module.buffers(recurse=False)
        ):
            raise StackError(f"layer {name or '<root>'} ({type(module).__name__}) is not stacked")
        else:
            continue
        parent, _, leaf = name.rpartition(".")
        setattr(stacked.get_submodule(parent), leaf, new)
    return stacked


class StackedClassifier(nn.Module):
    """K ``ClassifierModule`` (backbone + L2-normalised linear head) as one computation."""

    def __init__(self, modules: Sequence[ClassifierModule]) -> None:
        super().__init__()
        if len({type(m) for m in modules}) != 1 or type(modules[0]) is not ClassifierModule:
            raise StackError("only the built-in ClassifierModule is stacked")
        self.members = list(modules)  # not registered: each keeps its own parameters
        self.backbone = stack_backbones([m.backbone for m in modules])
        self.stats = [stats_of(m.backbone) for m in modules]

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logits (K, N, classes) of model k for its images ``xs[k]`` (N, C, H, W) in [0, 1]."""
        x = torch.cat([normalize(x, s) for x, s in zip(xs, self.stats, strict=True)], 1)
        if _nhwc(self.members[0]):
            x = x.contiguous(memory_format=torch.channels_last)
        k = len(self.members)
        feats = self.backbone(x).view(x.shape[0], k, -1).transpose(0, 1)  # (K, N, D)
        feats = normalize_features(feats)
        weight = torch.stack([m.head.weight for m in self.members])  # (K, classes, D)
        bias = torch.stack([m.head.bias for m in self.members]).unsqueeze(1)
        return torch.baddbmm(bias, feats, weight.transpose(1, 2))

    def write_back(self) -> None:
        """Every model's running statistics into its own module (the weights are already)."""
        for layer in self.backbone.modules():
            if isinstance(layer, GroupedBatchNorm2d):
                layer.write_back()


def _nhwc(module: nn.Module) -> bool:
    """Whether the module's convolution weights are channels-last."""
    w = next(p for p in module.parameters() if p.dim() == 4)
    return w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()


def fit_stacked(modules: Sequence[ClassifierModule], batches: Sequence[RandomBatches]) -> None:
    """Train ``modules`` in place, each on its own batches with its own optimiser and schedule.

    The step is the separate fit's (benchmarks/bench.py ``bare_loop``): augment with the model's
    own generator, cross-entropy averaged over its batch, AdamW step, schedule step. The loss
    summed over models has, for each model's parameters, exactly that model's gradient.
    """
    if len({len(b) for b in batches}) != 1 or len({b.batch_size for b in batches}) != 1:
        raise StackError("stacked fits need equal steps and batch sizes")
    net = StackedClassifier(modules)
    optimizers = [m.configure_optimizers() for m in modules]
    for m in modules:
        m.train()
    net.train()
    for step, pairs in enumerate(zip(*batches, strict=True)):
        xs = [m.augment(x) for m, (x, _) in zip(modules, pairs, strict=True)]
        logits = net(xs)
        losses = [F.cross_entropy(lg, y) for lg, (_, y) in zip(logits, pairs, strict=True)]
        loss = torch.stack(losses).sum()
        check_finite(loss, step)
        for o in optimizers:
            o["optimizer"].zero_grad(set_to_none=True)
        loss.backward()
        for o in optimizers:
            o["optimizer"].step()
            o["lr_scheduler"]["scheduler"].step()
    net.write_back()
