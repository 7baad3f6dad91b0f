"""The regimes: plain functions from a run's context to its metrics, dispatched by name.

Adding a regime is one function here, one entry in ``REGIMES`` and one ``conf/regime/*.yaml``
whose ``name`` is the key. Each returns ``{"test/acc", "test/f1_macro", "test/ece"}`` and, when it
starts from a pretrained backbone, the source accuracy before/after (see ``stages.forgetting``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from benchmarks import keys, stages
from benchmarks.cache import cached
from benchmarks.stages import RunContext
from lightning_modules.budgets import budget_indices, parse_per_class
from lightning_modules.probe import extract_features
from lightning_modules.streaming import materialize

Metrics = dict[str, float]


def _probe_metrics(ctx: RunContext, train_x: torch.Tensor, test_x: torch.Tensor) -> Metrics:
    """Fit the linear probe on the labelled rows of ``train_x``; score it on ``test_x``."""
    with ctx.phase("train"):
        probe = stages.fit_labelled_probe(ctx, train_x)
    with ctx.phase("eval"):
        return stages.evaluate(ctx, probe.logits(test_x))


def _train_and_evaluate(ctx: RunContext, backbone: torch.nn.Module) -> Metrics:
    module = stages.train_classifier(ctx, backbone)
    with ctx.phase("eval"):
        return stages.evaluate(ctx, module.predict_logits(ctx.target.x_test.to(ctx.device)))


def scratch(ctx: RunContext) -> Metrics:
    """Random init, everything trained on the labelled budget."""
    return _train_and_evaluate(ctx, stages.new_backbone(ctx.cfg, ctx.cfg.seed).to(ctx.device))


def finetune(ctx: RunContext) -> Metrics:
    """Pretrained init, everything trained on the labelled budget."""
    backbone, before = stages.pretrained_backbone(ctx)
    metrics = _train_and_evaluate(ctx, backbone)
    return metrics | stages.forgetting(ctx, before, backbone)


def linear_probe(ctx: RunContext) -> Metrics:
    """Pretrained and frozen; a logistic-regression probe on cached features.

    The backbone never changes, so its source accuracy after equals before: forgetting is 0 by
    construction, recorded so the forgetting table has every pretrained regime.
    """
    backbone, before = stages.pretrained_backbone(ctx)
    train_x, test_x = stages.pretrained_features(ctx, backbone)
    metrics = _probe_metrics(ctx, train_x, test_x)
    return metrics | {
        "source/acc_before": before,
        "source/acc_after": before,
        "source/forgetting": 0.0,
    }


def incremental_pretrain(ctx: RunContext) -> Metrics:
    """Pretrained, then SimCLR on the target's unlabelled train split, then finetuned."""
    backbone, before = stages.pretrained_backbone(ctx)
    backbone, after_continued, _ = stages.continued_backbone(ctx, backbone)
    metrics = _train_and_evaluate(ctx, backbone)
    return (
        metrics
        | stages.forgetting(ctx, before, backbone)
        | {"source/acc_after_continued": after_continued}
    )


def continual_pretrain(ctx: RunContext) -> Metrics:
    """Source pretraining, then SimCLR on each domain of ``stream`` in turn (no labels).

    After every stage a linear probe on every domain (fitted on the run's label budget of that
    domain) fills the accuracy matrix ``R/i/j``; ``b/j``
    is the same probe on a randomly initialised backbone. The stream's last domain is the run's
    target (validation checks ``data`` is it): ``test/*`` are the linear_probe regime's metrics
    on it after the last stage (R[T, T] up to the probe's l2 choice). Forgetting, backward
    and forward transfer are derived from the matrix by the report (``reports/transfer.py``).
    """
    cfg = ctx.cfg
    stream = [cfg.stream[name] for name in cfg.stream]
    domains = [ctx.source, *(stages.domain(d, cfg) for d in stream)]
    per_class = parse_per_class(cfg.budget.per_class)
    labelled = [budget_indices(d.y_train, per_class, cfg.seed) for d in domains]
    backbone, _ = stages.pretrained_backbone(ctx)

    def probe(backbone: torch.nn.Module, j: int, l2: float | None = None) -> tuple[float, float]:
        return stages.probe_accuracy(ctx, backbone, domains[j], l2, labelled[j])

    def start() -> tuple[dict, dict]:
        """Row 0 of R and the random-init baselines: shared by every variant of a seed."""
        random_init = stages.new_backbone(cfg, cfg.seed).to(ctx.device)
        first = [probe(backbone, j) for j in range(len(domains))]
        return {}, {
            "baseline": [probe(random_init, j)[0] for j in range(len(domains))],
            "row": [fit[0] for fit in first],
            "l2": [fit[1] for fit in first],  # each domain's penalty, fixed from here on
        }

    key = keys.stream_start(ctx, ctx.info["pretrain_hash"], domains[1:], cfg.seed)
    with ctx.phase("eval"):
        _, first, _ = cached(cfg.paths.cache_dir, "stream_start", key, start)
    baseline, l2 = first["baseline"], first["l2"]
    rows, key = [first["row"]], None
    for i, dom_cfg in enumerate(stream, start=1):
        backbone, _, key = stages.continued_backbone(
            ctx, backbone, dom_cfg, tuple(domains[:i]), stage=i, base_key=key
        )
        with ctx.phase("eval"):
            rows.append([probe(backbone, j, l2[j])[0] for j in range(len(domains))])
    ctx.info["stream_domains"] = [d.name for d in domains]
    metrics = {f"R/{i}/{j}": acc for i, row in enumerate(rows) for j, acc in enumerate(row)}
    with ctx.phase("features"):
        train_x = extract_features(backbone, ctx.target.x_train.to(ctx.device))
        test_x = extract_features(backbone, ctx.target.x_test.to(ctx.device))
    target = _probe_metrics(ctx, train_x, test_x)  # as linear_probe: l2 cross-validated
    return metrics | {f"b/{j}": acc for j, acc in enumerate(baseline)} | target


def pixels(ctx: RunContext) -> Metrics:
    """The floor: the same logistic-regression probe on the raw input pixels."""
    flat_train = materialize(ctx.target.x_train).flatten(1).to(ctx.device)
    flat_test = materialize(ctx.target.x_test).flatten(1).to(ctx.device)
    return _probe_metrics(ctx, flat_train, flat_test)


# The stage nodes of the config each regime reads. Validation requires them complete; the
# config hash leaves the others out, so changing ``train.steps`` does not re-run ``pixels``.
READS: dict[str, tuple[str, ...]] = {
    "scratch": ("train",),
    "finetune": ("pretrain", "train"),
    "linear_probe": ("pretrain",),
    "incremental_pretrain": ("pretrain", "continued_pretrain", "train"),
    "pixels": (),
    "continual_pretrain": ("pretrain", "continued_pretrain", "stream"),
}
STAGE_NODES = ("pretrain", "continued_pretrain", "train", "stream")

REGIMES: dict[str, Callable[[RunContext], Metrics]] = {
    "scratch": scratch,
    "finetune": finetune,
    "linear_probe": linear_probe,
    "incremental_pretrain": incremental_pretrain,
    "pixels": pixels,
    "continual_pretrain": continual_pretrain,
}
assert READS.keys() == REGIMES.keys()
