"""Classification metrics of a finished model, computed with torchmetrics' functional API.

``HIGHER_IS_BETTER`` tells the report which way "best" is for every metric a record holds.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
)

HIGHER_IS_BETTER = {
    "test/acc": True,
    "test/f1_macro": True,
    "test/ece": False,
    "source/acc_before": True,
    "source/acc_after": True,
    "source/forgetting": False,
    "source/head_acc_before": True,
    "source/head_acc_after": True,
    "source/head_forgetting": False,
}


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
