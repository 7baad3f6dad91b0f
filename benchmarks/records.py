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

SCHEMA_VERSION = 1
RECORD_NAME = "record.json"


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
    return data
