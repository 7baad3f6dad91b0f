"""What a regime returns, and the fit-and-score step of every regime that trains a classifier.

Lives apart from ``benchmarks/regimes.py`` (the registry) so that the regimes defined in their own
modules (``anchoring``: l2sp, ewc; ``interpolating``: wise_ft) share it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from benchmarks import fits, tracking
from benchmarks.inputs import RunContext
from benchmarks.selecting import Scored, scored
from benchmarks.training import Trained
from lightning_modules.penalties import AnchorPenalty

if TYPE_CHECKING:
    from benchmarks.pretraining import Pretrained

Metrics = dict[str, float]


@dataclass(frozen=True)
class Outcome:
    """What a regime hands the record: its metrics, ``info``, ``compute`` and the confusion.

    ``selection``: the data-dependent facts of its validation (folds, defaulted).
    """

    metrics: Metrics
    info: dict[str, Any] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)
    confusion: list[list[int]] | None = None
    selection: dict[str, Any] = field(default_factory=dict)


def outcome_of(
    sc: Scored, info: dict[str, Any], compute: dict[str, float], extra: Metrics | None = None
) -> Outcome:
    """The outcome of a scored fit: its test and validation metrics, plus ``extra``."""
    metrics = sc.evaluated.metrics | sc.val | (extra or {})
    return Outcome(metrics, info, compute | sc.compute, sc.evaluated.confusion, sc.selection)


def train_and_evaluate(
    ctx: RunContext,
    backbone: torch.nn.Module,
    penalty: AnchorPenalty | None = None,
    keep_start: bool = False,
    pre: Pretrained | None = None,
) -> tuple[Trained, Scored]:
    """Train ``backbone`` in place (forgetting reads it after) on the budget; score it.

    ``pre``: the pretraining ``backbone`` came from, which ``train.track_every`` scores against.
    """
    track = tracking.tracker(ctx, pre)
    sc = scored(ctx, fits.classifier(ctx, backbone, penalty, keep_start, track))
    return sc.fitted.payload, sc
