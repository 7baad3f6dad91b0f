"""Undo the folders Hydra made for work that was refused, so bad input leaves nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path


def remove_with_empty_parents(folder: Path) -> None:
    """Delete ``folder`` and then its parents while they are empty, stopping at the cwd."""
    shutil.rmtree(folder, ignore_errors=True)
    cwd = Path.cwd().resolve()
    parent = folder.resolve().parent
    while parent != cwd and cwd in parent.parents and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
