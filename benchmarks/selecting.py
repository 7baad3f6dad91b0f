"""Every regime's one fit-and-score step, and the validation score the selection protocol asks for.

A regime hands :func:`scored` a :data:`Fit`: "fit on these labelled train indices" returning a
predictor of logits for train rows (by index) or for the test split (``None``). The run's own fit
(the whole budget) gives the test metrics; ``selection.protocol`` then decides ``val/*``:

- ``fixed``: none;
- ``oracle``: the test split's accuracy and cross-entropy (an upper bound only);
- ``holdout``: the same fitted model on the holdout examples;
- ``cv``: the regime refitted on k-1 folds of the budget and scored on the held-out fold, k
  times (mean accuracy, mean cross-entropy). The same ``Fit`` serves all, so no regime has a
  cross-validation of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from benchmarks.inputs import RunContext
from benchmarks.training import Evaluated, evaluate
from lightning_modules.selection import cv_folds, scores

log = logging.getLogger("regimebench")

Predict = Callable[[torch.Tensor | None], torch.Tensor]  # train indices (None: test) -> logits


@dataclass(frozen=True)
class Fitted:
    """One fit of a regime's classifier: its predictor and what the regime records of it."""

    predict: Predict
    payload: Any = None  # the regime's own result (Trained, LabelledProbe, Selection, ...)


Fit = Callable[[torch.Tensor, int | None], Fitted]  # (labelled train indices, CV fold or None)


@dataclass(frozen=True)
class Scored:
    """The run's own fit, its test metrics, and the protocol's validation metrics and facts."""

    fitted: Fitted
    evaluated: Evaluated
    val: dict[str, float]
    selection: dict[str, Any]  # the record's data-dependent selection facts: folds, defaulted...
    compute: dict[str, float]  # what the cv fold fits cost (select_samples, select_flops)


def scored(ctx: RunContext, fit: Fit) -> Scored:
    """Fit on the budget, evaluate on the test split, validate as ``selection.protocol`` says."""
    fitted = fit(ctx.labelled, None)
    with ctx.phase("eval"):
        test_logits = fitted.predict(None)
        evaluated = evaluate(ctx, test_logits)
    val, facts, compute = _validation(ctx, fit, fitted, test_logits, evaluated)
    return Scored(fitted, evaluated, val, facts, compute)


def _metrics(acc: float, loss: float) -> dict[str, float]:
    return {"val/acc": acc, "val/loss": loss}


def validation_of(
    ctx: RunContext, predict: Predict, test_logits: torch.Tensor, evaluated: Evaluated
) -> dict[str, float]:
    """``val/*`` of one fitted model under ``fixed``, ``oracle`` or ``holdout`` (no refits).

    ``wise_ft`` scores each interpolated model with it, so its alphas are validated exactly as
    every other regime's fit is.
    """
    s = ctx.cfg.selection
    assert s.protocol != "cv"  # cv refits the regime: _validation
    if s.protocol == "fixed":
        return {}
    if s.protocol == "oracle":
        _, loss = scores(test_logits, ctx.target.y_test)  # the test metric itself, to the bit
        return _metrics(evaluated.metrics["test/acc"], loss)
    assert ctx.holdout is not None  # preflight.prepare drew it
    with ctx.phase("select"):
        return _metrics(*scores(predict(ctx.holdout), ctx.target.y_train[ctx.holdout]))


def _validation(
    ctx: RunContext,
    fit: Fit,
    fitted: Fitted,
    test_logits: torch.Tensor,
    evaluated: Evaluated,
) -> tuple[dict[str, float], dict[str, Any], dict[str, float]]:
    """``val/*``, the selection facts, and the compute of fold fits (deep regimes under cv)."""
    s, y_train = ctx.cfg.selection, ctx.target.y_train
    if s.protocol != "cv":  # extra_labels: the record counts ctx.holdout
        return validation_of(ctx, fitted.predict, test_logits, evaluated), {}, {}
    folds = cv_folds(y_train[ctx.labelled], s.folds, ctx.cfg.train_seed)
    if folds is None:  # a class with one labelled example: the declared defaults are the choice
        return {}, {"defaulted": True}, {}
    if folds.k < s.folds:
        log.info("selection.folds=%d capped at %d: the smallest class's examples", s.folds, folds.k)
    accs, losses, compute = [], [], {}
    for i, (fit_pos, held_pos) in enumerate(folds.splits):
        fold_fit = fit(ctx.labelled[fit_pos], i)
        held = ctx.labelled[held_pos]
        with ctx.phase("select"):
            acc, loss = scores(fold_fit.predict(held), y_train[held])
        accs.append(acc)
        losses.append(loss)
        if hasattr(fold_fit.payload, "compute"):  # a deep fit (Trained): samples and FLOPs
            for key, value in fold_fit.payload.compute().items():
                name = key.replace("train_", "select_")
                compute[name] = compute.get(name, 0.0) + value
    val = _metrics(sum(accs) / len(accs), sum(losses) / len(losses))
    return val, {"folds": folds.k}, compute
