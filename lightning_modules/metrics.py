"""Classification metrics of a finished model, computed with torchmetrics' functional API.

The names, definitions, directions and ranges of these metrics live in one registry,
``common/metrics.py``, which the record, the report and the golden check read.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Top-1 accuracy (micro), macro-F1 and expected calibration error (15 bins, L1)."""
    k = logits.shape[1]
    probs = logits.float().softmax(dim=1)
    return {
        "test/acc": float(multiclass_accuracy(probs, labels, k, average="micro")),
        "test/f1_macro": float(multiclass_f1_score(probs, labels, k, average="macro")),
        "test/ece": float(multiclass_calibration_error(probs, labels, k, n_bins=15, norm="l1")),
    }


def confusion_matrix(logits: torch.Tensor, labels: torch.Tensor) -> list[list[int]]:
    """Counts, rows = true class, columns = predicted class (the report's per-class accuracy)."""
    matrix = multiclass_confusion_matrix(logits.float().argmax(dim=1), labels, logits.shape[1])
    return matrix.tolist()
