"""The work regimes share: build domains and backbones, pretrain (cached), fit, probe, evaluate.

Every random consumer is seeded explicitly from ``train_seed`` (backbone init, head init, batch
sampling, augmentation, pretraining, probe CV folds); ``subset_seed`` only picks the labelled
examples (``benchmarks/run.py``), so the two sources of variance can be varied apart. Seeding
every consumer means a run's result does not depend on which runs came before it in the same
process: an in-process sweep and a lone run give the same record.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from benchmarks import keys
from benchmarks.compute import train_step_flops
from benchmarks.fitting import fit, stage_checkpoints
from common.cache import cached, stable_hash
from lightning_modules.backbones import (
    clone_state,
    create_backbone,
    load_checkpoint,
    pretrained_timm,
)
from lightning_modules.classifier import ClassifierModule
from lightning_modules.datamodules import RandomBatches, ReplayBatches
from lightning_modules.datasets import DataError
from lightning_modules.datasets import load as load_raw
from lightning_modules.domains import Domain, DomainError, build_domain
from lightning_modules.metrics import classification_metrics, confusion_matrix
from lightning_modules.normalization import stats_of, timm_stats, with_stats
from lightning_modules.pretrain import PretrainModule
from lightning_modules.probe import (
    LinearProbe,
    cross_validated,
    extract_features,
    fit_probe,
    l2_at_edge,
)
from lightning_modules.streaming import Images, concat, take


@dataclass
class RunContext:
    """Everything one run needs, built once by the entry point and handed to its regime."""

    cfg: DictConfig
    device: torch.device
    source: Domain
    target: Domain
    labelled: torch.Tensor
    seconds: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)
    source_head: nn.Module | None = None  # the supervised source stage's classifier, if any
    job_dir: Path | None = None  # fits log into <job_dir>/<fit>/; None: no loggers

    def log_dir(self, fit_name: str) -> Path | None:
        """The loggers' folder of one fit of this run (a cached stage logs where it is built)."""
        return self.job_dir / fit_name if self.job_dir is not None else None

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the wall time of the enclosed block to ``seconds[name]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def training_device(trainer: DictConfig) -> torch.device:
    """Where this process keeps data and models between fits.

    With a DDP strategy the processes Lightning starts own the devices: this one stays on the CPU,
    hands each fit its CPU tensors, and gets the trained weights back after the fit.
    """
    if str(trainer.strategy).startswith("ddp"):
        return torch.device("cpu")
    gpu = trainer.accelerator in ("gpu", "cuda") or (
        trainer.accelerator == "auto" and torch.cuda.is_available()
    )
    return torch.device("cuda" if gpu else "cpu")


def _spec(dom: DictConfig) -> str:
    spec = OmegaConf.to_container(dom, resolve=True)
    return json.dumps(spec, sort_keys=True)


def in_chans(cfg: DictConfig) -> int:
    """The model's input channels: ``model.in_chans``, or by default the target domain's."""
    if cfg.model.in_chans is not None:
        return int(cfg.model.in_chans)
    try:
        raw = load_raw(_spec(cfg.data), cfg.model.image_size, str(cfg.paths.cache_dir))
    except DataError as err:
        raise DomainError(err.at("data")) from None
    return int(raw.x_train.shape[1])


def domain(dom: DictConfig, cfg: DictConfig) -> Domain:
    """The in-memory domain for a ``data``/``source``/``stream`` node (decoded once per process).

    A domain that cannot be built names the key the user set (``source.root``, not
    ``data.root``): the loaders are shared by every node, so only the node knows its key.
    """
    image_size, cache_dir = cfg.model.image_size, str(cfg.paths.cache_dir)
    try:
        return build_domain(str(dom.name), _spec(dom), image_size, in_chans(cfg), cache_dir)
    except DomainError as err:
        raise DomainError(err.at(dom._get_full_key(None))) from None  # noqa: SLF001


def new_backbone(cfg: DictConfig, seed: int, pretrained: bool = False) -> nn.Module:
    """A randomly initialised backbone whose weights depend only on ``seed``.

    It reads the target's input statistics; ``pretrained`` (a pretraining stage and every
    backbone it hands on) the source's, or timm's for published weights (normalization.py).
    """
    torch.manual_seed(seed)
    net = create_backbone(cfg.model.name, in_chans=in_chans(cfg), drop_rate=cfg.model.drop_rate)
    weights = pretrained and cfg.pretrain.objective == "timm"
    node = cfg.source if pretrained else cfg.data
    return with_stats(net, timm_stats(net, cfg.model.name) if weights else domain(node, cfg).stats)


def probe_accuracy(
    ctx: RunContext,
    backbone: nn.Module,
    dom: Domain,
    l2: float | None = None,
    labelled: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Test accuracy of a linear probe fitted on ``dom``'s train split (frozen features).

    ``labelled`` (indices into the train split) restricts the fit to a label budget; None = all.

    With ``l2`` None the penalty is cross-validated (``probe.l2_grid``); otherwise it is fixed.
    Forgetting probes reuse the l2 chosen for the pretrained backbone, so "before" and "after"
    are the same probe applied to two backbones. Returns (accuracy, l2).
    """
    x_train, labels = dom.x_train, dom.y_train
    if labelled is not None:
        x_train, labels = take(x_train, labelled), labels[labelled]
    ftr = extract_features(backbone, x_train.to(ctx.device))
    fte = extract_features(backbone, dom.x_test.to(ctx.device))
    p = ctx.cfg.probe
    grid, default = (p.l2_grid, p.default_l2) if l2 is None else ((), l2)
    labels = labels.to(ctx.device)
    probe = fit_probe(
        ftr, labels, dom.num_classes, grid, default, seed=ctx.cfg.train_seed, max_iter=p.max_iter
    )
    acc = float((probe.logits(fte).argmax(1).cpu() == dom.y_test).float().mean())
    return acc, probe.l2


def ssl_images(dom: Domain) -> Images:
    """Every image a self-supervised stage may use: train split plus unlabelled extras."""
    if dom.x_unlabeled is None:
        return dom.x_train
    return concat([dom.x_train, dom.x_unlabeled])


def weights_backbone(cfg: DictConfig) -> nn.Module:
    """``pretrain=timm``: the model with timm's hub weights, or ``model.checkpoint``'s."""
    m = cfg.model
    if m.checkpoint is None:
        net = pretrained_timm(m.name, in_chans(cfg), m.drop_rate)
        return with_stats(net, timm_stats(net, m.name))
    backbone = new_backbone(cfg, 0, pretrained=True)
    load_checkpoint(backbone, m.checkpoint)
    return backbone


def _record_cache_use(ctx: RunContext, stage: str, meta: dict[str, Any], hit: bool) -> None:
    """Cache bookkeeping: whether it was a hit, the stage's full cost and what the hit saved.

    A run with several stages of one kind (a stream of domains) adds their costs; the hash is
    the last stage's, whose key chains all before it.
    """
    ctx.info[f"{stage}_cached"] = hit and ctx.info.get(f"{stage}_cached", True)
    ctx.info[f"{stage}_hash"] = stable_hash(meta["key"])
    for name, value in (
        ("seconds_full", meta["build_seconds"]),
        ("seconds_saved", meta["build_seconds"] if hit else 0.0),
        ("samples", meta["samples"]),
    ):
        ctx.compute[f"{stage}_{name}"] = ctx.compute.get(f"{stage}_{name}", 0.0) + value


def pretrained_backbone(ctx: RunContext) -> tuple[nn.Module, float]:
    """The source-pretrained backbone and its source probe accuracy, built once per key."""
    cfg, p = ctx.cfg, ctx.cfg.pretrain

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        if p.objective == "timm":  # published weights instead of the suite's own stage
            backbone = weights_backbone(cfg).to(ctx.device)
            acc, l2 = probe_accuracy(ctx, backbone, ctx.source)
            return clone_state(backbone), {"source_acc": acc, "source_l2": l2, "samples": 0}
        backbone = new_backbone(cfg, 1000 + cfg.train_seed, pretrained=True)
        torch.manual_seed(2000 + cfg.train_seed)
        module = PretrainModule(
            backbone,
            p.objective,
            ctx.source.num_classes,
            p.lr,
            p.weight_decay,
            p.steps,
            p.warmup_fraction,
            p.temperature or 0.5,
            seed=cfg.train_seed,
        )
        if p.objective == "simclr":  # labels unused: unlabelled extra images join (STL-10)
            x, y = ssl_images(ctx.source).to(ctx.device), None
        else:
            x, y = ctx.source.x_train.to(ctx.device), ctx.source.y_train.to(ctx.device)
        batches = RandomBatches(x, y, p.batch_size, p.steps, cfg.train_seed)
        fit(cfg, module, batches, ctx.log_dir("pretrain"), checkpoints)
        acc, l2 = probe_accuracy(ctx, backbone, ctx.source)
        views = 2 if p.objective == "simclr" else 1
        state, meta = clone_state(backbone), {"source_l2": l2}
        if p.objective == "supervised":  # keep the source head: head-retained forgetting
            state |= {f"{HEAD}{k}": v for k, v in clone_state(module.head).items()}
            meta["source_head_acc"] = head_accuracy(ctx, backbone, module.head)
        return state, meta | {"source_acc": acc, "samples": p.steps * p.batch_size * views}

    key = keys.pretrain(ctx)
    with ctx.phase("pretrain"), stage_checkpoints(cfg, "pretrain", key) as checkpoints:
        state, meta, hit = cached(cfg.paths.cache_dir, "pretrain", key, build)
        backbone = restored(ctx, {k: v for k, v in state.items() if not k.startswith(HEAD)})
    _record_cache_use(ctx, "pretrain", meta, hit)
    ctx.info["input_stats"] = stats_of(backbone).facts()  # what every later fit reads
    ctx.info["source_probe_l2"] = meta["source_l2"]
    ctx.info["source_probe_l2_at_edge"] = l2_at_edge(meta["source_l2"], cfg.probe.l2_grid)
    head = {k.removeprefix(HEAD): v for k, v in state.items() if k.startswith(HEAD)}
    if head:
        ctx.source_head = nn.Linear(head["weight"].shape[1], head["weight"].shape[0])
        ctx.source_head.load_state_dict(head)
        ctx.source_head.to(ctx.device)
        ctx.info["source_head_acc_before"] = float(meta["source_head_acc"])
    return backbone, float(meta["source_acc"])


def restored(ctx: RunContext, state: dict[str, torch.Tensor]) -> nn.Module:
    """A fresh backbone holding ``state``: what a stage hands on, whether built or cache-loaded.

    A stage that was just built leaves its trained module changed in ways its saved state does
    not carry: ``fit`` turned its weights channels-last (``trainer.channels_last``), it is in
    train mode with gradients attached, and a precision plugin may have cast it. Evaluating
    channels-last weights takes other oneDNN kernels than contiguous ones, so the features and
    the LP-FT probe differed in the last digits and a run that built its continued backbone
    recorded another ``test/ece`` than one that loaded it. Handing on a new module with the
    state loaded into it makes a miss give exactly what a later hit gives.
    """
    backbone = new_backbone(ctx.cfg, 0, pretrained=True)
    backbone.load_state_dict(state)
    return backbone.to(ctx.device)


HEAD = "source_head."  # cache-entry prefix of the supervised source head's tensors


@torch.no_grad()
def head_accuracy(ctx: RunContext, backbone: nn.Module, head: nn.Module) -> float:
    """Source test accuracy of ``head`` on ``backbone``'s features: the functional measure."""
    logits = head(extract_features(backbone, ctx.source.x_test.to(ctx.device)))
    return float((logits.argmax(1).cpu() == ctx.source.y_test).float().mean())


def continued_backbone(
    ctx: RunContext,
    backbone: nn.Module,
    target_cfg: DictConfig | None = None,
    earlier: tuple[Domain, ...] = (),
    stage: int = 1,
    base_key: dict[str, Any] | None = None,
) -> tuple[nn.Module, float, dict[str, Any]]:
    """Continue SimCLR on a domain's whole unlabelled train split (default: the run's target).

    ``earlier`` are the domains of the stages before (the source first); with
    ``continued_pretrain.replay`` > 0 that share of every batch is drawn from them. A stage is
    cached under the chain of everything before it (``base_key``: the previous stage's key).
    Returns the backbone, its source probe accuracy and this stage's key.
    """
    cfg, c = ctx.cfg, ctx.cfg.continued_pretrain
    target_cfg = target_cfg if target_cfg is not None else cfg.data
    target = domain(target_cfg, cfg)
    base = base_key or keys.pretrain(ctx)
    key = keys.continued(ctx, base, target_cfg, target, len(earlier))

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        torch.manual_seed(3000 + cfg.train_seed)
        module = PretrainModule(
            backbone,
            "simclr",
            target.num_classes,
            c.lr,
            c.weight_decay,
            c.steps,
            c.warmup_fraction,
            cfg.pretrain.temperature or 0.5,
            seed=cfg.train_seed,
            schedule=c.schedule,
        )
        x_new = ssl_images(target).to(ctx.device)
        x_old = concat([ssl_images(d) for d in earlier]).to(ctx.device) if earlier else None
        seed = cfg.train_seed + 1000 * (stage - 1)
        batches = ReplayBatches(x_new, x_old, c.replay, c.batch_size, c.steps, seed)
        name = "continued_pretrain" if stage == 1 else f"continued_pretrain_{stage}"
        fit(cfg, module, batches, ctx.log_dir(name), checkpoints)
        return clone_state(backbone), {
            "source_acc": probe_accuracy(ctx, backbone, ctx.source, ctx.info["source_probe_l2"])[0],
            "samples": c.steps * c.batch_size * 2,  # two SimCLR views per image
        }

    with ctx.phase("continued_pretrain"), stage_checkpoints(cfg, "continued", key) as checkpoints:
        state, meta, hit = cached(cfg.paths.cache_dir, "continued", key, build)
        backbone = restored(ctx, state)  # not the module the build trained: see restored()
    _record_cache_use(ctx, "continued_pretrain", meta, hit)
    return backbone, float(meta["source_acc"]), key


def pretrained_features(ctx: RunContext, backbone: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Target train/test features of the (frozen) pretrained backbone, cached per backbone."""
    key = keys.features(ctx, ctx.info["pretrain_hash"])

    def build() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {
            "train": extract_features(backbone, ctx.target.x_train.to(ctx.device)).cpu(),
            "test": extract_features(backbone, ctx.target.x_test.to(ctx.device)).cpu(),
        }, {}

    with ctx.phase("features"):
        tensors, meta, hit = cached(ctx.cfg.paths.cache_dir, "features", key, build)
    ctx.info["features_cached"] = hit
    ctx.info["features_hash"] = stable_hash(key)
    return tensors["train"].to(ctx.device), tensors["test"].to(ctx.device)


def fit_labelled_probe(ctx: RunContext, features: torch.Tensor) -> LinearProbe:
    """The linear probe on the labelled rows of ``features`` (target train split)."""
    p, idx = ctx.cfg.probe, ctx.labelled.to(ctx.device)
    labels = ctx.target.y_train.to(ctx.device)[idx]
    probe = fit_probe(
        features[idx],
        labels,
        ctx.target.num_classes,
        p.l2_grid,
        p.default_l2,
        seed=ctx.cfg.train_seed,
        max_iter=p.max_iter,
    )
    cv = cross_validated(labels, ctx.target.num_classes, p.l2_grid)
    ctx.info |= {"probe_l2": probe.l2, "probe_l2_selected_by": "cv" if cv else "default"}
    ctx.info["probe_l2_at_edge"] = cv and l2_at_edge(probe.l2, p.l2_grid)  # report: say so
    return probe


def classifier_and_batches(
    ctx: RunContext,
    backbone: nn.Module,
    head_init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[ClassifierModule, RandomBatches]:
    """The module and the batches of one target fit, seeded from ``train_seed``."""
    cfg, t = ctx.cfg, ctx.cfg.train
    torch.manual_seed(4000 + cfg.train_seed)
    module = ClassifierModule(
        backbone,
        ctx.target.num_classes,
        t.lr,
        t.head_lr,
        t.weight_decay,
        t.steps,
        t.warmup_fraction,
        t.augment,
        cfg.train_seed,
        head_init,
    )
    x = take(ctx.target.x_train, ctx.labelled).to(ctx.device)
    y = ctx.target.y_train[ctx.labelled].to(ctx.device)
    return module, RandomBatches(x, y, t.batch_size, t.steps, cfg.train_seed)


def train_classifier(ctx: RunContext, backbone: nn.Module) -> ClassifierModule:
    """Train backbone + head on the labelled budget for ``train.steps`` steps.

    With ``head_init: probe`` the head starts from a linear probe fitted on the backbone's frozen
    features of the labelled examples (LP-FT); with ``random`` from timm/torch's default init.
    """
    cfg, t = ctx.cfg, ctx.cfg.train
    head_init = None
    if t.head_init == "probe":
        with ctx.phase("train"):
            probe = fit_labelled_probe(
                ctx, extract_features(backbone, ctx.target.x_train.to(ctx.device))
            )
        head_init = (probe.weight.float(), probe.bias.float())
    ctx.info["head_init"] = t.head_init
    ctx.info["input_stats"] = stats_of(backbone).facts()
    module, batches = classifier_and_batches(ctx, backbone, head_init)
    run = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(run, dict)
    run.pop("paths")  # the checkpoint key: everything the fit depends on
    with ctx.phase("train"), stage_checkpoints(cfg, "train", run) as checkpoints:
        fit(cfg, module, batches, ctx.log_dir("train"), checkpoints)
    ctx.compute["train_samples"] = t.steps * t.batch_size
    step = train_step_flops(
        cfg.model.name, cfg.model.image_size, t.batch_size, ctx.target.num_classes
    )
    ctx.compute["train_flops"] = float(step * t.steps)
    return module


def evaluate(ctx: RunContext, logits: torch.Tensor) -> dict[str, float]:
    """Target test metrics from the target test split's logits; its confusion into ``ctx.info``."""
    ctx.info["confusion"] = confusion_matrix(logits.cpu(), ctx.target.y_test)
    return classification_metrics(logits.cpu(), ctx.target.y_test)


def forgetting(ctx: RunContext, before: float, backbone: nn.Module) -> dict[str, float]:
    """Source probe accuracy before and after target training; forgetting = before - after."""
    with ctx.phase("eval"):
        after, _ = probe_accuracy(ctx, backbone, ctx.source, ctx.info["source_probe_l2"])
        out = {
            "source/acc_before": before,
            "source/acc_after": after,
            "source/forgetting": before - after,
        }
        if ctx.source_head is not None:  # a supervised source stage left its head
            head_before = ctx.info["source_head_acc_before"]
            head_after = head_accuracy(ctx, backbone, ctx.source_head)
            out |= {
                "source/head_acc_before": head_before,
                "source/head_acc_after": head_after,
                "source/head_forgetting": head_before - head_after,
            }
    return out
