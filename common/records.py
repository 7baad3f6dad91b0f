"""Run records: one ``record.json`` per run, the only thing the report reads.

A record is written to a temporary file in the same folder and renamed over the target, so a
crash at any moment leaves the old record or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

# Version 2 added ``definitions`` (what each metric in ``metrics`` means). Older records are
# upgraded on read (:data:`_UPGRADES`); newer ones are refused with a message, never guessed at.
SCHEMA_VERSION = 2
RECORD_NAME = "record.json"

# The words every record carries next to its numbers, so "forgetting" is never ambiguous.
DEFINITIONS = {
    "test/acc": "target test-split top-1 accuracy of the regime's classifier",
    "test/f1_macro": "target test-split F1, unweighted mean over classes",
    "test/ece": "target test-split expected calibration error, 15 equal-width bins, L1",
    "source/acc_before": (
        "source test accuracy of a linear probe fitted on the pretrained backbone's frozen "
        "source-train features"
    ),
    "source/acc_after": (
        "the same probe protocol (same l2) refitted on the updated backbone's source features"
    ),
    "source/forgetting": (
        "probe-refit forgetting: source/acc_before - source/acc_after (positive = skill lost)"
    ),
    "source/head_acc_before": (
        "source test accuracy of the supervised source stage's own head on the pretrained "
        "backbone (functional; only when pretraining was supervised)"
    ),
    "source/head_acc_after": "the same source head, unchanged, on the updated backbone",
    "source/head_forgetting": (
        "head-retained forgetting: source/head_acc_before - source/head_acc_after"
    ),
    "source/acc_after_continued": (
        "probe-refit source accuracy after continued pretraining, before target training"
    ),
    "R/i/j": (
        "accuracy matrix of a stream: test accuracy on domain j (0 = source) of a linear probe "
        "fitted on the label budget of domain j's train split, after stage i (0 = source "
        "pretraining); each domain's l2 is chosen once, at stage 0"
    ),
    "b/j": "the same probe on a randomly initialised backbone: forward transfer's baseline",
}


_PATTERNS = {"R/i/j": "R/", "b/j": "b/"}  # a definition that covers a family of metrics


def definitions_for(metrics: dict[str, float]) -> dict[str, str]:
    """The definitions of the metrics a record holds (``R/i/j`` covers ``R/1/2``)."""

    def held(name: str) -> bool:
        prefix = _PATTERNS.get(name)
        return name in metrics or (
            prefix is not None and any(m.startswith(prefix) for m in metrics)
        )

    return {k: v for k, v in DEFINITIONS.items() if held(k)}


def _upgrade_1_to_2(record: dict[str, Any]) -> dict[str, Any]:
    """Version 1 measured the same metrics with the same protocols, only without the words."""
    metrics = record.get("metrics", {})
    return record | {
        "schema_version": 2,
        "definitions": definitions_for(metrics),
    }


_UPGRADES = {1: _upgrade_1_to_2}


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: str) -> dict[str, Any]:
    """Versions, device and thread count: what a reader needs to reproduce a number."""
    import hydra
    import lightning
    import timm
    import torchmetrics

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "timm": timm.__version__,
        "torchmetrics": torchmetrics.__version__,
        "hydra": hydra.__version__,
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "git_commit": _git_commit(),
    }


def write_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Atomically write ``record`` as JSON to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(".record.*.json"):  # left by a run killed mid-write
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".record.", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh, indent=1, sort_keys=True, allow_nan=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finished_record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The record at ``path`` if it exists, parses and says ``ok``; otherwise None."""
    try:
        record = read_record(path)
    except (OSError, ValueError):
        return None
    return record if record.get("status") == "ok" else None


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse one record; raises ``ValueError`` when it is not a regimebench record."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or "schema_version" not in data or "status" not in data:
        raise ValueError("not a regimebench record (no schema_version/status)")
    version = data["schema_version"]
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ValueError(
            f"schema_version {version!r} is not one this regimebench reads (1 to {SCHEMA_VERSION});"
            " a newer regimebench wrote it"
        )
    while data["schema_version"] in _UPGRADES:
        data = _UPGRADES[data["schema_version"]](data)
    return data
