"""The one registry of metrics: name, definition, which way is better, and the range.

Every number a run record holds under ``metrics`` is named here. The record stores the
definitions of the metrics it holds (:func:`definitions_for`); the report aggregates the
``per_cell`` ones and shows the ``headline`` ones on the printed page, clipping intervals to
:attr:`Metric.range`; the golden check pins the ``pinned`` ones; the findings clip a paired
difference to :func:`difference_range`. A new metric is one entry here, nowhere else.

``R/i/j`` and ``b/j`` name families (``R/1/2``, ``b/0``): :func:`lookup` resolves a member.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One metric of a run record.

    Attributes:
        name: the record's key (``"{stage}/{metric}"``), also the report's column name.
        definition: what it measures, in words a reader of the report needs.
        higher_is_better: which way "best" is.
        range: the values it can take; intervals of its mean are clipped to it.
        per_cell: the report aggregates it per arm x budget (mean, std, interval).
        headline: on the printed page's main table.
        pinned: the golden check compares it with the golden file.
        prefix: for a family of metrics (``R/i/j``), the prefix its members share.
    """

    name: str
    definition: str
    higher_is_better: bool
    range: tuple[float, float]
    per_cell: bool = True
    headline: bool = False
    pinned: bool = False
    prefix: str | None = None


_RATE = (0.0, 1.0)
# Forgetting is before - after of two accuracies: a gain of source skill is negative.
_CHANGE = (-1.0, 1.0)
# Bits per byte are not bounded above (a model can be worse than a uniform 8 bits).
_BITS = (0.0, float("inf"))
_BITS_CHANGE = (float("-inf"), float("inf"))

_ALL = (
    Metric(
        "test/acc",
        "target test-split top-1 accuracy of the regime's classifier",
        True, _RATE, headline=True, pinned=True,
    ),
    Metric(
        "test/f1_macro",
        "target test-split F1, unweighted mean over classes",
        True, _RATE, headline=True, pinned=True,
    ),
    Metric(
        "test/ece",
        "target test-split expected calibration error, 15 equal-width bins, L1",
        False, _RATE, headline=True, pinned=True,
    ),
    Metric(
        "val/acc",
        "selection-split top-1 accuracy, used only to choose a trial: the holdout labels "
        "(selection=holdout), the mean over k folds of the budget (cv), the test split (oracle)",
        True, _RATE, per_cell=False,
    ),
    Metric(
        "val/loss",
        "selection-split mean cross-entropy (natural log) of the same predictions as val/acc",
        False, (0.0, float("inf")), per_cell=False,
    ),
    Metric(
        "source/acc_before",
        "source test accuracy of a linear probe fitted on the pretrained backbone's frozen "
        "source-train features",
        True, _RATE,
    ),
    Metric(
        "source/acc_after",
        "the same probe protocol (same l2) refitted on the updated backbone's source features",
        True, _RATE, pinned=True,
    ),
    Metric(
        "source/forgetting",
        "probe-refit forgetting: source/acc_before - source/acc_after (positive = skill lost)",
        False, _CHANGE, headline=True, pinned=True,
    ),
    Metric(
        "source/head_acc_before",
        "source test accuracy of the supervised source stage's own head on the pretrained "
        "backbone (functional; only when pretraining was supervised)",
        True, _RATE,
    ),
    Metric(
        "source/head_acc_after",
        "the same source head, unchanged, on the updated backbone",
        True, _RATE,
    ),
    Metric(
        "source/head_forgetting",
        "head-retained forgetting: source/head_acc_before - source/head_acc_after",
        False, _CHANGE,
    ),
    Metric(
        "source/acc_after_continued",
        "probe-refit source accuracy after continued pretraining, before target training",
        True, _RATE, per_cell=False,
    ),
    Metric(
        "lm/source_bpb_before",
        "bits per byte of the pretrained language model on the source's test passages: its own "
        "objective's NLL / (bytes x ln 2), next bytes for a causal LM, the masked bytes at a "
        "fixed mask for a masked LM (8 = a uniform guess over bytes)",
        False, _BITS,
    ),
    Metric(
        "lm/source_bpb_after",
        "the same source bits per byte of the backbone after target training (LM head tied to "
        "the embeddings, carried through every stage)",
        False, _BITS,
    ),
    Metric(
        "lm/source_bpb_rise",
        "language-model forgetting: lm/source_bpb_after - lm/source_bpb_before (positive = "
        "source modelling lost)",
        False, _BITS_CHANGE,
    ),
    Metric(
        "lm/source_bpb_continued",
        "source bits per byte after continued pretraining, before target training",
        False, _BITS,
    ),
    Metric(
        "lm/target_bpb_before",
        "target test passages' bits per byte of the source-pretrained language model",
        False, _BITS,
    ),
    Metric(
        "lm/target_bpb_continued",
        "target test passages' bits per byte after continued pretraining (DAPT, or its control)",
        False, _BITS,
    ),
    Metric(
        "wise/alpha",
        "wise_ft: the interpolation weight of the run's own metrics (declared, or chosen on "
        "the selection split); 0 = the LP-FT start (linear probe), 1 = the LP-FT fit (a "
        "setting, not a score: higher_is_better says nothing)",
        True, _RATE, per_cell=False,
    ),
    Metric(
        "wise/target/a",
        "wise_ft: target test accuracy of the weights (1 - a) theta_start + a theta_lp_ft",
        True, _RATE, per_cell=False, prefix="wise/target/",
    ),
    Metric(
        "wise/source/a",
        "wise_ft: probe-refit source test accuracy (source/acc_after's probe) at alpha = a",
        True, _RATE, per_cell=False, prefix="wise/source/",
    ),
    Metric(
        "wise/val/a",
        "wise_ft: holdout accuracy at alpha = a (selection=holdout), which chooses alpha",
        True, _RATE, per_cell=False, prefix="wise/val/",
    ),
    Metric(
        "R/i/j",
        "accuracy matrix of a stream: test accuracy on domain j (0 = source) of a linear probe "
        "fitted on the label budget of domain j's train split, after stage i (0 = source "
        "pretraining); each domain's l2 is chosen once, at stage 0",
        True, _RATE, per_cell=False, prefix="R/",
    ),
    Metric(
        "lm/B/i/j",
        "bits-per-byte matrix of a text stream: a language model's bits per byte on domain j's "
        "test passages (0 = source) after stage i (0 = source pretraining)",
        False, _BITS, per_cell=False, prefix="lm/B/",
    ),
    Metric(
        "b/j",
        "the same probe on a randomly initialised backbone: forward transfer's baseline",
        True, _RATE, per_cell=False, prefix="b/",
    ),
)  # fmt: skip

METRICS: dict[str, Metric] = {m.name: m for m in _ALL}

PER_CELL = tuple(m.name for m in _ALL if m.per_cell)
HEADLINE = tuple(m.name for m in _ALL if m.headline)
PINNED = tuple(m.name for m in _ALL if m.pinned)


def lookup(name: str) -> Metric:
    """The registry entry of ``name``, or of the family it belongs to (``R/1/2`` -> ``R/i/j``).

    Raises:
        KeyError: for a name the registry does not know.
    """
    if name in METRICS:
        return METRICS[name]
    for metric in _ALL:
        if metric.prefix is not None and name.startswith(metric.prefix):
            return metric
    raise KeyError(f"{name!r} is not a metric of the registry (common/metrics.py)")


def difference_range(name: str) -> tuple[float, float]:
    """Where a paired difference of two values of ``name`` can lie: ``(lo - hi, hi - lo)``."""
    lo, hi = lookup(name).range
    return (lo - hi, hi - lo)


def definitions_for(metrics: dict[str, float]) -> dict[str, str]:
    """The definitions of the metrics a record holds (``R/i/j`` covers ``R/1/2``)."""
    held = {lookup(name).name for name in metrics if _known(name)}
    return {m.name: m.definition for m in _ALL if m.name in held}


def _known(name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True
