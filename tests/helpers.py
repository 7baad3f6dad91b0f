"""Running the installed console scripts the way a user does, in a scratch folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from common.records import SCHEMA_VERSION, RunRecord, write_record

BIN = Path(sys.executable).parent

# A few optimiser steps: real fits through the real entry point, seconds per run.
TINY_STEPS = [
    "pretrain.steps=5",
    "pretrain.batch_size=16",
    "train.steps=5",
    "train.batch_size=8",
]


def run_cli(
    args: list[str],
    cwd: Path,
    check: bool = True,
    script: str = "regimebench",
    timeout=600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``script args`` in ``cwd`` with a cache folder of its own; assert success if asked.

    ``env`` adds to (or replaces) the caller's environment variables.
    """
    env = {**os.environ, "REGIMEBENCH_CACHE": str(cwd / "cache"), **(env or {})}
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


def write_dict(path: Path, record: dict) -> None:
    """Write a record given as its JSON object, through :class:`RunRecord` like every writer."""
    write_record(path, RunRecord.from_dict(record))


def as_records(records: list[dict]) -> list[RunRecord]:
    """Records given as JSON objects, read the way the report reads them."""
    return [RunRecord.from_dict(r) for r in records]


def _merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


def synthetic_record(
    regime,
    per_class,
    seed,
    acc,
    status="ok",
    name="synthetic",
    forgetting=None,
    config=None,
    **fields,
):
    """A record with known values; ``config`` is merged into its config, ``fields`` on top."""
    record = _synthetic(regime, per_class, seed, acc, status, name, forgetting)
    record["config"] = _merged(record["config"], config or {})
    return record | fields


def _synthetic(regime, per_class, seed, acc, status, name, forgetting):
    metrics = {"test/acc": acc, "test/f1_macro": acc - 0.01, "test/ece": 0.05}
    if forgetting is not None:
        metrics |= {
            "source/acc_before": 0.9,
            "source/acc_after": 0.9 - forgetting,
            "source/forgetting": forgetting,
        }
    n = 5 * (per_class if per_class != "all" else 100)
    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "error": None if status == "ok" else "NonFiniteLossError: train/loss became nan",
        "metrics": metrics if status == "ok" else {},
        "regime": regime,
        "source": "digits",
        "target": "digits_5to9",
        "model": "test_resnet",
        "seed": seed,
        "threads": 2,
        "budget": {"per_class": str(per_class), "n_labelled": n, "per_class_used": {}},
        "classes": {"source": [str(i) for i in range(10)], "target": list("56789")},
        "seconds": {"total": 1.0},
        "info": {},
        "config_hash": f"{regime}{per_class}{seed}",
        "config": {
            "name": name,
            "question": "Which regime?",
            "seed": seed,
            "regime": {"name": regime},
            "budget": {"per_class": per_class},
        },
        "environment": {"torch": "2.14.1", "device": "cpu"},
    }


def domain_spec(dataset="digits", classes=None, transform="none", **extra) -> str:
    """A ``data`` node as build_domain takes it (sorted JSON)."""
    import json

    spec = {"name": "x", "dataset": dataset, "classes": classes, "transform": transform}
    spec |= {"test_fraction": 0.3, "split_seed": 0, "root": None, "download": False}
    spec |= {"test_root": None, "unlabeled": False, "fractal": None} | extra
    return json.dumps(spec, sort_keys=True)


def digits_domain(name, classes, transform, size, in_chans=1, cache_dir="/nonexistent"):
    """A digits domain built by the real code (digits needs no cache folder)."""
    from lightning_modules.domains import build_domain

    classes = list(classes) if classes is not None else None
    return build_domain(name, domain_spec("digits", classes, transform), size, in_chans, cache_dir)


def write_image_tree(root, size=24, rgb=True, per_class=6, classes=("ants", "bees")):
    """A tiny image-folder tree of one image size, RGB or gray, that the test writes itself."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size, size, 3) if rgb else (size, size)
            array = (rng.random(shape) * 100 + 120 * c).astype("uint8")
            Image.fromarray(array, "RGB" if rgb else "L").save(root / name / f"{i}.png")
    return root
