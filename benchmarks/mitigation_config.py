"""Schemas of the forgetting mitigations' nodes: ``wise_ft``, ``l2sp``, ``ewc``.

Like the baselines' nodes (``baseline_config.py``), each is a top-level node filled by its
regime's YAML and read only by that regime; defaults live in ``conf/regime/<name>.yaml``,
checks in ``benchmarks/validation.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class WiseFtConfig:
    """WiSE-FT's interpolation (``benchmarks/interpolating.py``): the curve and the run's alpha."""

    alphas: list[float] = MISSING  # each scored on target and source: the record's curve
    alpha: float | None = MISSING  # the run's own metrics; null = chosen on the selection split
    batchnorm: str = MISSING  # interpolate (with the weights) | recompute (on the labelled images)


@dataclass
class L2spConfig:
    """L2-SP: ``(strength / 2) * ||theta - theta_pretrained||^2`` added to the target loss."""

    strength: float = MISSING


@dataclass
class EwcConfig:
    """EWC: the L2-SP distance weighted by the source task's diagonal Fisher."""

    strength: float = MISSING
    fisher_samples: int | None = MISSING  # source train images the Fisher averages; null = all
