"""The regimes: plain functions from a run's context to its outcome, dispatched by name.

Adding a regime is one function (here, or in a module of its own: ``anchoring``,
``interpolating``), one entry in ``REGIMES`` and one ``conf/regime/*.yaml`` whose ``name`` is
the key. Each returns an :class:`Outcome`: metrics ``{"test/acc", "test/f1_macro",
"test/ece"}`` and, when it starts from a pretrained backbone, the source accuracy before/after
(``probing.forgetting``); and the record's ``info`` and ``compute``, assembled from the typed
results its stages returned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
from omegaconf import DictConfig

from benchmarks import anchoring, fits, interpolating, keys
from benchmarks.inputs import RunContext, domain, new_backbone
from benchmarks.pretraining import Continued, Pretrained, continued_backbone, continued_facts
from benchmarks.pretraining import pretrained_backbone as pretrained
from benchmarks.probing import cached_bits, forgetting, pretrained_features, probe_accuracy
from benchmarks.results import Outcome, outcome_of, train_and_evaluate
from benchmarks.selecting import Scored, scored
from benchmarks.validation import MITIGATIONS
from common.cache import cached, stable_hash
from lightning_modules import baselines
from lightning_modules.budgets import budget_indices, parse_per_class
from lightning_modules.domains import Domain
from lightning_modules.probe import extract_features
from lightning_modules.streaming import materialize
from lightning_modules.text_baselines import text_features


def _probe_outcome(
    ctx: RunContext, train_x: torch.Tensor, test_x: torch.Tensor
) -> tuple[Scored, dict[str, Any]]:
    """Fit the linear probe on the labelled rows of ``train_x``; score it on ``test_x``."""
    sc = scored(ctx, fits.probe(ctx, train_x, test_x))
    return sc, sc.fitted.payload.info()


def scratch(ctx: RunContext) -> Outcome:
    """Random init, everything trained on the labelled budget."""
    backbone = new_backbone(ctx.cfg, ctx.cfg.train_seed).to(ctx.device)
    trained, sc = train_and_evaluate(ctx, backbone)
    return outcome_of(sc, trained.info(), trained.compute())


def _fine_tuned(ctx: RunContext) -> Outcome:
    pre = pretrained(ctx)
    trained, sc = train_and_evaluate(ctx, pre.backbone, pre=pre)
    info, compute = pre.info() | trained.info(), pre.compute() | trained.compute()
    return outcome_of(sc, info, compute, forgetting(ctx, pre, pre.backbone))


def finetune(ctx: RunContext) -> Outcome:
    """Plain fine-tuning: pretrained backbone, a new random head, all trained on the budget.

    ``train.head_init: random`` (validation refuses ``probe`` here: that is ``lp_ft``).
    """
    return _fine_tuned(ctx)


def lp_ft(ctx: RunContext) -> Outcome:
    """LP-FT (Kumar et al. 2022): the head starts from the linear probe, then full fine-tuning.

    The probe is fitted on the frozen backbone's features of the labelled examples
    (``train.head_init: probe``); against ``finetune`` only the head's start differs.
    """
    return _fine_tuned(ctx)


def linear_probe(ctx: RunContext) -> Outcome:
    """Pretrained and frozen; a logistic-regression probe on cached features.

    The backbone never changes, so its source accuracy after equals before: forgetting is 0 by
    construction, recorded so the forgetting table has every pretrained regime.
    """
    pre = pretrained(ctx)
    feats = pretrained_features(ctx, pre.backbone, stable_hash(pre.cache.key))
    sc, probe_info = _probe_outcome(ctx, feats.train, feats.test)
    source = {
        "source/acc_before": pre.source_acc,
        "source/acc_after": pre.source_acc,
        "source/forgetting": 0.0,
    }
    if pre.source_bpb is not None:  # a frozen language model forgets nothing either
        source |= {
            "lm/source_bpb_before": pre.source_bpb,
            "lm/source_bpb_after": pre.source_bpb,
            "lm/source_bpb_rise": 0.0,
        }
    return outcome_of(sc, pre.info() | feats.info() | probe_info, pre.compute(), source)


def _target_bits(
    ctx: RunContext, backbone: torch.nn.Module, key: dict[str, Any], stage: str
) -> dict[str, float]:
    """A language model's bits per byte on the target's test passages (``{}`` for images).

    ``key``: the cache key of the stage that made ``backbone`` (the score is cached under it).
    """
    if not ctx.target.is_text:
        return {}
    with ctx.phase("eval"):
        bpb = cached_bits(ctx, backbone, key, ctx.cfg.data, ctx.target)
        return {f"lm/target_bpb_{stage}": bpb}


def _continued_then_trained(ctx: RunContext, stages: Sequence[DictConfig | None]) -> Outcome:
    """Continued stages on each domain of ``stages`` in turn (``None``: the target), then LP-FT.

    Each stage starts from the one before and is cached under its chain of keys; the bits per
    byte ``continued`` and the source accuracy after it are read after the last stage.
    """
    pre = pretrained(ctx)
    bits = _target_bits(ctx, pre.backbone, pre.cache.key, "before")
    backbone, base, earlier, done = pre.backbone, pre.cache.key, [ctx.source], list[Continued]()
    for stage, on in enumerate(stages, start=1):
        cont = continued_backbone(ctx, backbone, pre.probe_l2, base, on, tuple(earlier), stage)
        done.append(cont)
        backbone, base = cont.backbone, cont.cache.key
        earlier.append(domain(on if on is not None else ctx.cfg.data, ctx.cfg))
    last = done[-1]
    bits |= _target_bits(ctx, last.backbone, last.cache.key, "continued")
    if last.source_bpb is not None:
        bits["lm/source_bpb_continued"] = last.source_bpb
    trained, sc = train_and_evaluate(ctx, last.backbone, pre=pre)
    cont_info, cont_compute = continued_facts(done)
    info = pre.info() | cont_info | trained.info()
    compute = pre.compute() | cont_compute | trained.compute()
    extra = forgetting(ctx, pre, last.backbone) | {"source/acc_after_continued": last.source_acc}
    extra |= bits
    return outcome_of(sc, info, compute, extra)


def _task_passages(cfg: DictConfig) -> DictConfig:
    """The target's spec without its unlabelled corpus: the task's own train passages only."""
    task = copy.deepcopy(cfg.data)
    task.text.unlabeled_passages = 0
    return task


def incremental_pretrain(ctx: RunContext) -> Outcome:
    """Pretrained, then SimCLR on the target's unlabelled train split, then fine-tuned."""
    return _continued_then_trained(ctx, [None])


def longer_pretrain(ctx: RunContext) -> Outcome:
    """The compute-matched control of ``incremental_pretrain``: its extra SimCLR on the SOURCE.

    The same ``continued_pretrain`` stage (steps, batch, lr, schedule) continues on the source's
    images instead of the target's, then the same fine-tuning; a gain of incremental_pretrain
    over this is adaptation to the target, not just more pretraining. Cached under the source's
    domain spec, so it is one stage per train seed however many budgets are swept.
    """
    return _continued_then_trained(ctx, [ctx.cfg.source])


def unrelated_pretrain(ctx: RunContext) -> Outcome:
    """The unrelated-corpus control of ``incremental_pretrain``: its extra stage on ``control``.

    The same ``continued_pretrain`` stage continues on a corpus that is neither the source nor
    the target's domain (``data@control``: the King James Bible for the code target), then the
    same fine-tuning. Beside ``longer_pretrain`` (the source again) it asks whether DAPT's gain
    is the target domain's text or any new text. Cached under the control's domain spec.
    """
    return _continued_then_trained(ctx, [ctx.cfg.control])


def task_pretrain(ctx: RunContext) -> Outcome:
    """TAPT (Gururangan et al. 2020): the continued stage on the task's own train passages only.

    ``incremental_pretrain`` (DAPT) continues on the target's passages and its domain corpus
    (``data.text.unlabeled_passages`` of other code); this is the same stage (steps, batch, lr,
    schedule) without the corpus, labels unused, then the same fine-tuning. A text regime: a
    target without a domain corpus would make it ``incremental_pretrain`` (refused).
    """
    return _continued_then_trained(ctx, [_task_passages(ctx.cfg)])


def domain_then_task_pretrain(ctx: RunContext) -> Outcome:
    """DAPT then TAPT (Gururangan et al. 2020, "DAPT + TAPT"): two continued stages in turn.

    The first is ``incremental_pretrain``'s stage (the same cache entry), the second
    ``task_pretrain``'s stage started from it: twice the continued compute of either, so a gain
    over ``incremental_pretrain`` is the paper's claim with its extra compute, as the paper ran it.
    """
    return _continued_then_trained(ctx, [None, _task_passages(ctx.cfg)])


def _stream_bits(
    ctx: RunContext,
    backbone: torch.nn.Module,
    key: dict[str, Any],
    nodes: list[DictConfig],
    domains: list[Domain],
) -> list[float]:
    """A language model's bits per byte on each domain's test passages (``[]`` for images).

    ``key``: the cache key of the stage that made ``backbone``; ``nodes``: the domains' specs.
    """
    if not ctx.target.is_text:
        return []
    with ctx.phase("eval"):
        pairs = zip(nodes, domains, strict=True)
        return [cached_bits(ctx, backbone, key, node, d) for node, d in pairs]


def continual_pretrain(ctx: RunContext) -> Outcome:
    """Source pretraining, then SimCLR (or the LM's objective) on each ``stream`` domain in turn.

    After every stage a linear probe on every domain (fitted on the run's label budget of that
    domain) fills the accuracy matrix ``R/i/j``, and for a language model its bits per byte on
    every domain's test passages the matrix ``lm/B/i/j``; ``b/j``
    is the same probe on a randomly initialised backbone. The stream's last domain is the run's
    target (validation checks ``data`` is it): ``test/*`` are the linear_probe regime's metrics
    on it after the last stage (R[T, T] up to the probe's l2 choice). Forgetting, backward
    and forward transfer are derived from the matrix by the report (``reports/transfer.py``).
    """
    cfg = ctx.cfg
    stream = [cfg.stream[name] for name in cfg.stream]
    domains = [ctx.source, *(domain(d, cfg) for d in stream)]
    per_class = parse_per_class(cfg.budget.per_class)
    labelled = [budget_indices(d.y_train, per_class, cfg.subset_seed) for d in domains]
    pre: Pretrained = pretrained(ctx)

    def probe(backbone: torch.nn.Module, j: int, l2: float | None = None) -> tuple[float, float]:
        return probe_accuracy(ctx, backbone, domains[j], l2, labelled[j])

    def start() -> tuple[dict, dict]:
        """Row 0 of R and the random-init baselines: shared by every variant of a seed."""
        random_init = new_backbone(cfg, cfg.train_seed).to(ctx.device)
        first = [probe(pre.backbone, j) for j in range(len(domains))]
        return {}, {
            "baseline": [probe(random_init, j)[0] for j in range(len(domains))],
            "row": [fit[0] for fit in first],
            "l2": [fit[1] for fit in first],  # each domain's penalty, fixed from here on
        }

    key = keys.stream_start(ctx, stable_hash(pre.cache.key), domains[1:])
    with ctx.phase("eval"):
        _, first, _ = cached(cfg.paths.cache_dir, "stream_start", key, start)
    baseline, l2 = first["baseline"], first["l2"]
    rows, stages, backbone, base = [first["row"]], list[Continued](), pre.backbone, pre.cache.key
    nodes = [cfg.source, *stream]
    bits = [_stream_bits(ctx, pre.backbone, pre.cache.key, nodes, domains)]  # [] for images
    for i, dom_cfg in enumerate(stream, start=1):
        cont = continued_backbone(
            ctx, backbone, pre.probe_l2, base, dom_cfg, tuple(domains[:i]), stage=i
        )
        stages.append(cont)
        backbone, base = cont.backbone, cont.cache.key
        with ctx.phase("eval"):
            rows.append([probe(backbone, j, l2[j])[0] for j in range(len(domains))])
        bits.append(_stream_bits(ctx, backbone, base, nodes, domains))
    metrics = {f"R/{i}/{j}": acc for i, row in enumerate(rows) for j, acc in enumerate(row)}
    metrics |= {f"lm/B/{i}/{j}": b for i, row in enumerate(bits) for j, b in enumerate(row)}
    with ctx.phase("features"):
        train_x = extract_features(backbone, ctx.target.x_train.to(ctx.device))
        test_x = extract_features(backbone, ctx.target.x_test.to(ctx.device))
    sc, probe_info = _probe_outcome(ctx, train_x, test_x)  # as linear_probe: l2 cross-validated
    cont_info, cont_compute = continued_facts(stages)
    info = pre.info() | cont_info | {"stream_domains": [d.name for d in domains]} | probe_info
    baselines_b = {f"b/{j}": acc for j, acc in enumerate(baseline)}
    ev = sc.evaluated  # fixed protocol only (tuning.py): no validation metrics
    return Outcome(
        metrics | baselines_b | ev.metrics, info, pre.compute() | cont_compute, ev.confusion
    )


def pixels(ctx: RunContext) -> Outcome:
    """The floor: the same logistic-regression probe on the raw input pixels."""
    flat_train = materialize(ctx.target.x_train).flatten(1).to(ctx.device)
    flat_test = materialize(ctx.target.x_test).flatten(1).to(ctx.device)
    sc, probe_info = _probe_outcome(ctx, flat_train, flat_test)
    return outcome_of(sc, probe_info, {})


def tfidf(ctx: RunContext) -> Outcome:
    """Text's floor, as ``pixels`` is images': the logistic-regression probe on TF-IDF features.

    TF-IDF of character n-grams (``tfidf`` node), its vocabulary and IDF fitted on every target
    train passage without labels (what the pretrained regimes' continued stages see too), then
    the same probe as ``pixels`` and ``linear_probe`` on the labelled budget.
    """
    t = ctx.cfg.tfidf
    with ctx.phase("features"):
        train_x, test_x = text_features(
            ctx.target.x_train, ctx.target.x_test, t.ngram_max, t.max_features
        )
    sc, probe_info = _probe_outcome(ctx, train_x.to(ctx.device), test_x.to(ctx.device))
    return outcome_of(sc, probe_info, {})


def _baseline(ctx: RunContext, name: str) -> Outcome:
    """Fit a scikit-learn baseline on the budget's pixels, its hyperparameters by CV inside it.

    Label spreading also gets every other target train image (and the domain's unlabelled
    extras) without labels: exactly the images the pretrained regimes' SSL stages see.
    """
    sc = scored(ctx, fits.baseline(ctx, name))
    chosen = sc.fitted.payload
    info = {
        "baseline_params": chosen.params,
        "baseline_selected_by": chosen.selected_by,
        "baseline_cv_acc": chosen.cv_acc,
        "baseline_at_edge": chosen.at_edge,
    }
    out = outcome_of(sc, info, {})
    return replace(out, selection=out.selection | trial_values_used(ctx.cfg, name, chosen.params))


def trial_values_used(cfg: DictConfig, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``{"used": {key: value}}`` where the baseline ran a trial's value other than it said.

    k-NN caps k at the smallest class count, so at 1 per class the trials k = 1, 3, 5, 10 all
    run k = 1: the record says so, and the report's hyperparameter columns show what ran.
    """
    if cfg.tuning.trial is None or name not in baselines.PARAMS:  # label spreading caps nothing
        return {}
    used = {}
    for param, (grid, _) in baselines.PARAMS[name].items():
        key = f"{name}.{grid}"
        value = cfg[name][grid]
        if value is not None and len(value) == 1 and value[0] != params[param]:
            used[key] = params[param]
    return {"used": used} if used else {}


def svm(ctx: RunContext) -> Outcome:
    """RBF-SVM on pixels; C and gamma by CV inside the budget (``svm:`` node)."""
    return _baseline(ctx, "svm")


def knn(ctx: RunContext) -> Outcome:
    """k-nearest neighbours on pixels; k (at most the examples per class) and weights by CV."""
    return _baseline(ctx, "knn")


def label_spreading(ctx: RunContext) -> Outcome:
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
    "unrelated_pretrain": ("pretrain", "continued_pretrain", "train", "control"),
    "task_pretrain": ("pretrain", "continued_pretrain", "train"),
    "domain_then_task_pretrain": ("pretrain", "continued_pretrain", "train"),
    "wise_ft": ("pretrain", "train", "wise_ft"),
    "l2sp": ("pretrain", "train", "l2sp"),
    "ewc": ("pretrain", "train", "ewc"),
    "pixels": (),
    "tfidf": ("tfidf",),
    "svm": ("svm",),
    "knn": ("knn",),
    "label_spreading": ("label_spreading",),
    "continual_pretrain": ("pretrain", "continued_pretrain", "stream"),
}
STAGE_NODES = (
    "pretrain",
    "continued_pretrain",
    "train",
    "stream",
    "control",
    *baselines.BASELINES,
    "tfidf",
    *MITIGATIONS,
)

REGIMES: dict[str, Callable[[RunContext], Outcome]] = {
    "scratch": scratch,
    "finetune": finetune,
    "lp_ft": lp_ft,
    "linear_probe": linear_probe,
    "incremental_pretrain": incremental_pretrain,
    "longer_pretrain": longer_pretrain,
    "unrelated_pretrain": unrelated_pretrain,
    "task_pretrain": task_pretrain,
    "domain_then_task_pretrain": domain_then_task_pretrain,
    "wise_ft": interpolating.wise_ft,
    "l2sp": anchoring.l2sp,
    "ewc": anchoring.ewc,
    "pixels": pixels,
    "tfidf": tfidf,
    "svm": svm,
    "knn": knn,
    "label_spreading": label_spreading,
    "continual_pretrain": continual_pretrain,
}
assert READS.keys() == REGIMES.keys()
