"""``wise_ft``: the LP-FT fit, then its weights interpolated back toward where it started.

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
and wise_ft under ``cv`` (each fold would need a curve of its own).
"""

from __future__ import annotations

from typing import Any

from torch.optim.swa_utils import update_bn

from benchmarks.inputs import RunContext
from benchmarks.pretraining import Pretrained
from benchmarks.probing import forgetting, probe_accuracy
from benchmarks.selecting import Scored
from benchmarks.training import Evaluated, Trained, evaluate
from lightning_modules.backbones import clone_state
from lightning_modules.interpolation import interpolate
from lightning_modules.selection import scores
from lightning_modules.streaming import take


def alpha_key(alpha: float) -> str:
    """An alpha as its metric names write it: ``0``, ``0.25``, ``1``."""
    return f"{float(alpha):g}"


def _val(ctx: RunContext, module: Any, test: Evaluated) -> dict[str, float]:
    """The selection split's accuracy and loss of the module as it now is (empty under fixed)."""
    protocol = ctx.cfg.selection.protocol
    if protocol == "holdout":
        assert ctx.holdout is not None
        logits = module.predict_logits(ctx.target.x_train[ctx.holdout].to(ctx.device))
        acc, loss = scores(logits, ctx.target.y_train[ctx.holdout])
        return {"val/acc": acc, "val/loss": loss}
    if protocol == "oracle":
        return {"val/acc": test.metrics["test/acc"]}
    return {}


def curve(
    ctx: RunContext, pre: Pretrained, trained: Trained, sc: Scored
) -> tuple[dict[str, float], Evaluated, dict[str, float], dict[str, float]]:
    """Score every alpha; leave the module at the chosen one.

    Returns the curve's metrics (``wise/alpha`` the chosen alpha among them), the chosen alpha's
    test evaluation, its source metrics (``probing.forgetting``) and its validation metrics.
    ``sc`` is the LP-FT fit's own scoring: with interpolated BatchNorm statistics alpha = 1 is
    that fit, so its test numbers are reused rather than recomputed.
    """
    assert trained.start is not None  # wise_ft trains with keep_start
    module, w = trained.module, ctx.cfg.wise_ft
    end = clone_state(module)
    alphas = sorted(
        {float(a) for a in w.alphas} | ({float(w.alpha)} if w.alpha is not None else set())
    )
    metrics: dict[str, float] = {}
    tests: dict[float, Evaluated] = {}
    vals: dict[float, dict[str, float]] = {}
    with ctx.phase("eval"):
        for alpha in alphas:
            _load(ctx, module, interpolate(trained.start, end, alpha))
            if alpha == 1.0 and w.batchnorm == "interpolate":
                tests[alpha] = sc.evaluated
            else:
                logits = module.predict_logits(ctx.target.x_test.to(ctx.device))
                tests[alpha] = evaluate(ctx, logits)
            vals[alpha] = _val(ctx, module, tests[alpha])
            key = alpha_key(alpha)
            metrics[f"wise/target/{key}"] = tests[alpha].metrics["test/acc"]
            acc, _ = probe_accuracy(ctx, module.backbone, ctx.source, pre.probe_l2)
            metrics[f"wise/source/{key}"] = acc
            if "val/acc" in vals[alpha] and ctx.cfg.selection.protocol == "holdout":
                metrics[f"wise/val/{key}"] = vals[alpha]["val/acc"]
    chosen = float(w.alpha) if w.alpha is not None else _best(vals)
    _load(ctx, module, interpolate(trained.start, end, chosen))
    source = forgetting(ctx, pre, module.backbone)
    metrics["wise/alpha"] = chosen
    return metrics, tests[chosen], source, vals[chosen]


def _load(ctx: RunContext, module: Any, state: dict) -> None:
    """Load interpolated weights; with ``batchnorm: recompute`` re-estimate BatchNorm's statistics.

    Recomputed statistics are those of the labelled target images (the budget, unaugmented, one
    pass, torch's ``update_bn``), so the ends are then no longer the two networks exactly.
    """
    module.load_state_dict(state)
    if ctx.cfg.wise_ft.batchnorm == "recompute":
        x = take(ctx.target.x_train, ctx.labelled).to(ctx.device)
        update_bn([x], module)
        module.eval()


def _best(vals: dict[float, dict[str, float]]) -> float:
    """The alpha of best validation accuracy; of ties the largest (the least interpolated)."""
    return max(vals, key=lambda a: (vals[a]["val/acc"], a))
