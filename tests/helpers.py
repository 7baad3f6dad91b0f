"""Running the installed console scripts the way a user does, in a scratch folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent

# A few optimiser steps: real fits through the real entry point, seconds per run.
TINY_STEPS = [
    "pretrain.steps=5",
    "pretrain.batch_size=16",
    "train.steps=5",
    "train.batch_size=8",
]


def run_cli(
    args: list[str], cwd: Path, check: bool = True, script: str = "regimebench", timeout=600
) -> subprocess.CompletedProcess:
    """Run ``script args`` in ``cwd`` with a cache folder of its own; assert success if asked."""
    env = {**os.environ, "REGIMEBENCH_CACHE": str(cwd / "cache")}
    proc = subprocess.run(
        [str(BIN / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc
