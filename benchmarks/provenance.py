"""Where a run ran: versions, device, threads and CPU kernels, for its record's ``environment``.

Apart from :mod:`common.records` because it imports torch and lightning, which reading a record
must not (the report and the sweep's "already finished" check read records only).
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import torch


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
