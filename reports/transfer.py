"""Metrics of an accuracy matrix R over a stream of domains, each with its named definition.

``R[i, j]`` is the accuracy on domain j after stage i (rows: training time, columns: evaluated
domain); ``b[j]`` is the accuracy on domain j of a randomly initialised backbone (a measured
linear probe, not class chance). Definitions from ``METRICS.md`` §1; its worked example §1.4 is
the unit test. Codebases disagree on "forgetting"; each number here carries its definition.
"""

from __future__ import annotations

import numpy as np

DEFINITIONS = {
    "average_accuracy": "ACC = mean_j R[T,j]: final accuracy averaged over all domains (GEM)",
    "backward_transfer": (
        "BWT = 1/(T-1) sum_{i<T} (R[T,i] - R[i,i]) (GEM paper form; negative = forgetting)"
    ),
    "forward_transfer": (
        "FWT = 1/(T-1) sum_{i>=2} (R[i-1,i] - b[i]), b = probe accuracy of a random-init backbone"
    ),
    "forgetting_max": (
        "F = 1/(T-1) sum_{j<T} (max_{l<T} R[l,j] - R[T,j]) (Chaudhry et al. 2018, max minus final)"
    ),
    "forgetting_first": (
        "F = 1/(T-1) sum_{j<T} (R[j,j] - R[T,j]) (Avalanche StreamForgetting, first minus final)"
    ),
    "target_gain": ("R[T,T] - R[1,T]: what the stages after the first added on the last domain"),
}


def stream_metrics(r: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """All :data:`DEFINITIONS` for a T x T matrix (T >= 2) and its random-init baseline."""
    r, b = np.asarray(r, float), np.asarray(b, float)
    t = r.shape[0]
    if r.shape != (t, t) or b.shape != (t,) or t < 2:
        raise ValueError(
            f"need a square matrix with T >= 2 and T baselines; got {r.shape}, {b.shape}"
        )
    final, diag = r[-1], np.diag(r)
    earlier = range(t - 1)
    return {
        "average_accuracy": float(final.mean()),
        "backward_transfer": float(np.mean([final[i] - diag[i] for i in earlier])),
        "forward_transfer": float(np.mean([r[i - 1, i] - b[i] for i in range(1, t)])),
        "forgetting_max": float(np.mean([r[: t - 1, j].max() - final[j] for j in earlier])),
        "forgetting_first": float(np.mean([diag[j] - final[j] for j in earlier])),
        "target_gain": float(r[-1, -1] - r[0, -1]),
    }
