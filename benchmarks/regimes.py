"""The regimes: plain functions from a run's context to its metrics, dispatched by name.

Adding a regime is one function here, one entry in ``REGIMES`` and one ``conf/regime/*.yaml``
whose ``name`` is the key. Each returns ``{"test/acc", "test/f1_macro", "test/ece"}`` and, when it
starts from a pretrained backbone, the source accuracy before/after (see ``stages.forgetting``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from threadpoolctl import threadpool_limits

from benchmarks import keys, stages
from benchmarks.stages import RunContext
from common.cache import cached
from lightning_modules import baselines
from lightning_modules.budgets import budget_indices, parse_per_class
from lightning_modules.probe import extract_features
from lightning_modules.streaming import Images, materialize

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
    return _train_and_evaluate(ctx, stages.new_backbone(ctx.cfg, ctx.cfg.train_seed).to(ctx.device))


def _fine_tuned(ctx: RunContext) -> Metrics:
    backbone, before = stages.pretrained_backbone(ctx)
    metrics = _train_and_evaluate(ctx, backbone)
    return metrics | stages.forgetting(ctx, before, backbone)


def finetune(ctx: RunContext) -> Metrics:
    """Plain fine-tuning: pretrained backbone, a new random head, all trained on the budget.

    ``train.head_init: random`` (validation refuses ``probe`` here: that is ``lp_ft``).
    """
    return _fine_tuned(ctx)


def lp_ft(ctx: RunContext) -> Metrics:
    """LP-FT (Kumar et al. 2022): the head starts from the linear probe, then full fine-tuning.

    The probe is fitted on the frozen backbone's features of the labelled examples
    (``train.head_init: probe``); against ``finetune`` only the head's start differs.
    """
    return _fine_tuned(ctx)


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


def _continued_then_trained(ctx: RunContext, on: DictConfig | None) -> Metrics:
    backbone, before = stages.pretrained_backbone(ctx)
    backbone, after_continued, _ = stages.continued_backbone(ctx, backbone, on, (ctx.source,))
    metrics = _train_and_evaluate(ctx, backbone)
    return (
        metrics
        | stages.forgetting(ctx, before, backbone)
        | {"source/acc_after_continued": after_continued}
    )


def incremental_pretrain(ctx: RunContext) -> Metrics:
    """Pretrained, then SimCLR on the target's unlabelled train split, then fine-tuned."""
    return _continued_then_trained(ctx, None)


def longer_pretrain(ctx: RunContext) -> Metrics:
    """The compute-matched control of ``incremental_pretrain``: its extra SimCLR on the SOURCE.

    The same ``continued_pretrain`` stage (steps, batch, lr, schedule) continues on the source's
    images instead of the target's, then the same fine-tuning; a gain of incremental_pretrain
    over this is adaptation to the target, not just more pretraining. Cached under the source's
    domain spec, so it is one stage per train seed however many budgets are swept.
    """
    return _continued_then_trained(ctx, ctx.cfg.source)


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
    labelled = [budget_indices(d.y_train, per_class, cfg.subset_seed) for d in domains]
    backbone, _ = stages.pretrained_backbone(ctx)

    def probe(backbone: torch.nn.Module, j: int, l2: float | None = None) -> tuple[float, float]:
        return stages.probe_accuracy(ctx, backbone, domains[j], l2, labelled[j])

    def start() -> tuple[dict, dict]:
        """Row 0 of R and the random-init baselines: shared by every variant of a seed."""
        random_init = stages.new_backbone(cfg, cfg.train_seed).to(ctx.device)
        first = [probe(backbone, j) for j in range(len(domains))]
        return {}, {
            "baseline": [probe(random_init, j)[0] for j in range(len(domains))],
            "row": [fit[0] for fit in first],
            "l2": [fit[1] for fit in first],  # each domain's penalty, fixed from here on
        }

    key = keys.stream_start(ctx, ctx.info["pretrain_hash"], domains[1:])
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


def _flat(images: Images) -> np.ndarray:
    return materialize(images).flatten(1).double().numpy()


def _baseline(ctx: RunContext, name: str) -> Metrics:
    """Fit a scikit-learn baseline on the budget's pixels, its hyperparameters by CV inside it.

    Label spreading also gets every other target train image (and the domain's unlabelled
    extras) without labels: exactly the images the pretrained regimes' SSL stages see.
    """
    cfg = OmegaConf.to_container(ctx.cfg[name], resolve=True)
    x_train, idx = _flat(ctx.target.x_train), ctx.labelled.numpy()
    x, y = x_train[idx], ctx.target.y_train.numpy()[idx]
    unlabelled = None
    if name == "label_spreading":
        parts = [np.delete(x_train, idx, axis=0)]
        if ctx.target.x_unlabeled is not None:
            parts.append(_flat(ctx.target.x_unlabeled))
        unlabelled = np.concatenate(parts)
    # scikit-learn's OpenMP/BLAS pools default to every core: on 2 busy cores that made label
    # spreading's CV 8x slower than one thread (5 fits + 20 k-NN fits: 5.4 s against 0.67 s).
    with ctx.phase("train"), threadpool_limits(limits=ctx.cfg.threads):
        chosen = baselines.select(name, cfg, x, y, unlabelled, seed=ctx.cfg.train_seed)
        model = baselines.fit(name, cfg, chosen.params, x, y, unlabelled)
    ctx.info |= {
        "baseline_params": chosen.params,
        "baseline_selected_by": chosen.selected_by,
        "baseline_cv_acc": chosen.cv_acc,
        "baseline_at_edge": chosen.at_edge,
    }
    with ctx.phase("eval"), threadpool_limits(limits=ctx.cfg.threads):
        logits = baselines.scores(model, _flat(ctx.target.x_test))
    return stages.evaluate(ctx, torch.from_numpy(logits))


def svm(ctx: RunContext) -> Metrics:
    """RBF-SVM on pixels; C and gamma by CV inside the budget (``svm:`` node)."""
    return _baseline(ctx, "svm")


def knn(ctx: RunContext) -> Metrics:
    """k-nearest neighbours on pixels; k (at most the examples per class) and weights by CV."""
    return _baseline(ctx, "knn")


def label_spreading(ctx: RunContext) -> Metrics:
    """Semi-supervised label spreading on pixels: the budget plus all unlabelled target images.

    Sized for the small domains: the pixel matrix is float64 in memory (STL-10's 100,000
    unlabelled 64x64 RGB images would be about 10 GB) and ``kernel: rbf`` is a dense n x n graph.
    """
    return _baseline(ctx, "label_spreading")


# The stage nodes of the config each regime reads. Validation requires them complete; the
# config hash leaves the others out, so changing ``train.steps`` does not re-run ``pixels``.
READS: dict[str, tuple[str, ...]] = {
    "scratch": ("train",),
    "finetune": ("pretrain", "train"),
    "lp_ft": ("pretrain", "train"),
    "linear_probe": ("pretrain",),
    "incremental_pretrain": ("pretrain", "continued_pretrain", "train"),
    "longer_pretrain": ("pretrain", "continued_pretrain", "train"),
    "pixels": (),
    "svm": ("svm",),
    "knn": ("knn",),
    "label_spreading": ("label_spreading",),
    "continual_pretrain": ("pretrain", "continued_pretrain", "stream"),
}
STAGE_NODES = ("pretrain", "continued_pretrain", "train", "stream", *baselines.BASELINES)

REGIMES: dict[str, Callable[[RunContext], Metrics]] = {
    "scratch": scratch,
    "finetune": finetune,
    "lp_ft": lp_ft,
    "linear_probe": linear_probe,
    "incremental_pretrain": incremental_pretrain,
    "longer_pretrain": longer_pretrain,
    "pixels": pixels,
    "svm": svm,
    "knn": knn,
    "label_spreading": label_spreading,
    "continual_pretrain": continual_pretrain,
}
assert READS.keys() == REGIMES.keys()
