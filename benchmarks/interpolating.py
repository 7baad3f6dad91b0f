"""Regime ``wise_ft``: the LP-FT fit, then its weights interpolated back toward where it started.

The start is the LP-FT start: the pretrained backbone with the linear-probe head (``train``'s
``head_init: probe``), so alpha = 0 is the linear probe's classifier and alpha = 1 the LP-FT
fit; in between lies Wortsman et al.'s WiSE-FT curve, bought with evaluations only. Each alpha
of ``wise_ft.alphas`` is scored on the target test split (``wise/target/<alpha>``) and by the
forgetting probe on the source (``wise/source/<alpha>``: the same probe, the same l2, as
``source/acc_after``), so the record holds the whole learning–forgetting curve.

The run's own numbers (``test/*``, ``source/*``) are those of one alpha: ``wise_ft.alpha``, or
with ``alpha: null`` the alpha of best accuracy on the selection split (``selection=holdout``:
the holdout labels, recorded as ``wise/val/<alpha>``; ``oracle``: the test split, an upper bound
only), ties to the larger alpha. Validation refuses null under ``fixed`` (nothing to choose on)
and wise_ft under ``cv`` (each fold would need a curve of its own). A ``train.track_every``
track of a wise_ft run is of its LP-FT fit (alpha = 1), whatever alpha its record reports.
"""

from __future__ import annotations

import lightning as L  # noqa: N812
import torch
from torch.optim.swa_utils import update_bn

from benchmarks.inputs import RunContext
from benchmarks.pretraining import Pretrained
from benchmarks.pretraining import pretrained_backbone as pretrained
from benchmarks.probing import forgetting, probe_accuracy
from benchmarks.results import Outcome, train_and_evaluate
from benchmarks.selecting import validation_of
from benchmarks.training import Evaluated, Trained, evaluate
from lightning_modules.backbones import clone_state
from lightning_modules.interpolation import interpolate
from lightning_modules.streaming import chunks, take

BN_CHUNK = 256  # images per forward pass when BatchNorm statistics are recomputed


def alpha_key(alpha: float) -> str:
    """An alpha as its metric names write it: ``0``, ``0.25``, ``1``."""
    return f"{float(alpha):g}"


def wise_ft(ctx: RunContext) -> Outcome:
    """WiSE-FT (Wortsman et al. 2022): LP-FT, then weights interpolated toward its start.

    ``theta(alpha) = (1 - alpha) * theta_start + alpha * theta_lp_ft`` for each alpha of
    ``wise_ft.alphas``, scored on target and source; the record's own metrics are the chosen
    alpha's. No training beyond the LP-FT fit.
    """
    pre = pretrained(ctx)
    trained, sc = train_and_evaluate(ctx, pre.backbone, keep_start=True, pre=pre)
    points, ev, source, val = curve(ctx, pre, trained)
    info = pre.info() | trained.info()
    compute = pre.compute() | trained.compute() | sc.compute
    return Outcome(ev.metrics | val | source | points, info, compute, ev.confusion, sc.selection)


class _Scored:
    """One alpha's test evaluation and validation metrics."""

    def __init__(self, ctx: RunContext, module: L.LightningModule) -> None:
        logits = module.predict_logits(ctx.target.x_test.to(ctx.device))
        self.test = evaluate(ctx, logits)

        def predict(rows: torch.Tensor | None) -> torch.Tensor:
            images = ctx.target.x_test if rows is None else take(ctx.target.x_train, rows)
            return module.predict_logits(images.to(ctx.device))

        self.val = validation_of(ctx, predict, logits, self.test)


def curve(
    ctx: RunContext, pre: Pretrained, trained: Trained
) -> tuple[dict[str, float], Evaluated, dict[str, float], dict[str, float]]:
    """Score every alpha; leave the module at the chosen one.

    Returns the curve's metrics (``wise/alpha``, the chosen alpha, among them), the chosen
    alpha's test evaluation, its source metrics (``probing.forgetting``) and its validation
    metrics.
    """
    assert trained.start is not None  # wise_ft trains with keep_start
    module, w = trained.module, ctx.cfg.wise_ft
    end = clone_state(module)
    declared = {float(w.alpha)} if w.alpha is not None else set()
    alphas = sorted({float(a) for a in w.alphas} | declared)
    metrics: dict[str, float] = {}
    scored: dict[float, _Scored] = {}
    with ctx.phase("eval"):
        for alpha in alphas:
            _load(ctx, module, interpolate(trained.start, end, alpha))
            scored[alpha] = _Scored(ctx, module)
            key = alpha_key(alpha)
            metrics[f"wise/target/{key}"] = scored[alpha].test.metrics["test/acc"]
            acc, _ = probe_accuracy(ctx, module.backbone, ctx.source, pre.probe_l2)
            metrics[f"wise/source/{key}"] = acc
            if ctx.cfg.selection.protocol == "holdout":
                metrics[f"wise/val/{key}"] = scored[alpha].val["val/acc"]
    chosen = float(w.alpha) if w.alpha is not None else _best(scored)
    _load(ctx, module, interpolate(trained.start, end, chosen))
    source = forgetting(ctx, pre, module.backbone)
    metrics["wise/alpha"] = chosen
    return metrics, scored[chosen].test, source, scored[chosen].val


def _load(ctx: RunContext, module: L.LightningModule, state: dict) -> None:
    """Load interpolated weights; with ``batchnorm: recompute`` re-estimate BatchNorm's statistics.

    Recomputed statistics are those of the labelled target images (the budget, unaugmented, in
    chunks, torch's ``update_bn``: a cumulative average), so the ends are then no longer the two
    networks exactly.
    """
    module.load_state_dict(state)
    if ctx.cfg.wise_ft.batchnorm == "recompute":
        x = take(ctx.target.x_train, ctx.labelled)
        update_bn((c.to(ctx.device) for c in chunks(x, BN_CHUNK)), module)
        module.eval()


def _best(scored: dict[float, _Scored]) -> float:
    """The alpha of best validation accuracy; of ties the largest (the least interpolated)."""
    return max(scored, key=lambda a: (scored[a].val["val/acc"], a))
