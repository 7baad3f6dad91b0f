"""Content-addressed cache for expensive artefacts: pretrained backbones and frozen features.

An artefact is stored under ``<cache_dir>/<kind>/<hash>/`` where the hash covers everything
that determines it (the caller passes that as a JSON-able ``key``). A folder is written under a
temporary name and renamed into place, so a crash leaves either a complete entry or none. A file
that no longer loads (truncated, hand-edited) is discarded and rebuilt, never trusted. Builds
hold a file lock per entry, so parallel jobs (joblib, SLURM) that need the same artefact build
it once and the others wait and load it.

:data:`CACHE_VERSION` and :func:`versioned` live here, not with the run's keys
(``benchmarks/keys.py``), because ``lightning_modules/`` caches generated data sets too and must
not import ``benchmarks/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

log = logging.getLogger(__name__)

CACHE_VERSION = 4  # bump when a change to the code changes what a cached artefact contains


def versioned(kind: str, **parts: Any) -> dict[str, Any]:
    """The smallest key: the code version, the artefact kind and its inputs."""
    return {"version": CACHE_VERSION, "kind": kind, **parts}


def stable_hash(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys), first 16 hex digits."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _load(entry: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    try:
        meta = json.loads((entry / "meta.json").read_text())
        tensors = torch.load(entry / "tensors.pt", map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, EOFError) as err:
        log.warning("cache entry %s is unreadable (%s); rebuilding it", entry, err)
        shutil.rmtree(entry, ignore_errors=True)
        return None
    return tensors, meta


def cached(
    cache_dir: str | os.PathLike[str],
    kind: str,
    key: Any,
    build: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]],
) -> tuple[dict[str, torch.Tensor], dict[str, Any], bool]:
    """Return ``(tensors, meta, hit)`` for ``key``, building and storing them on a miss.

    ``meta`` gains ``build_seconds`` (the time the build took, also on later hits, so a record
    can say how much time the cache saved) and ``key``.
    """
    entry = Path(cache_dir) / kind / stable_hash(key)
    entry.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{entry}.lock"):
        if entry.is_dir():
            loaded = _load(entry)
            if loaded is not None:
                return loaded[0], loaded[1], True
        return _build(entry, key, build)


def _build(
    entry: Path,
    key: Any,
    build: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]],
) -> tuple[dict[str, torch.Tensor], dict[str, Any], bool]:
    """Build, time and store one entry (the caller holds its lock)."""
    start = time.perf_counter()
    tensors, meta = build()
    meta = {**meta, "build_seconds": time.perf_counter() - start, "key": key}
    for stale in entry.parent.glob(f".{entry.name}.*"):  # left by a killed builder of this entry
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    torch.save(tensors, tmp / "tensors.pt")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    os.rename(tmp, entry)  # under the lock: nobody else can have stored it meanwhile
    return tensors, meta, False
