"""Collect ``record.json`` files under sweep folders into one tidy DataFrame (one row per run)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from benchmarks.records import RECORD_NAME, read_record

ALL_BUDGET = "all"


class NoRecordsError(ValueError):
    """No readable record under the given folders."""


def find_records(dirs: list[Path]) -> list[Path]:
    """Every ``record.json`` below ``dirs`` (a folder may be a sweep or a single run)."""
    found: list[Path] = []
    for d in dirs:
        if not d.is_dir():
            raise NoRecordsError(f"{d} is not a folder")
        for root, _, files in os.walk(d):
            if RECORD_NAME in files:
                found.append(Path(root) / RECORD_NAME)
    return sorted(found)


def _row(path: Path, rec: dict) -> dict:
    budget = rec["budget"]
    n_classes = len(rec["classes"]["target"])
    row = {
        "run_dir": str(path.parent),
        "status": rec["status"],
        "error": rec.get("error"),
        "regime": rec["regime"],
        "source": rec["source"],
        "target": rec["target"],
        "model": rec["model"],
        "seed": rec["seed"],
        "per_class": str(budget["per_class"]),
        "n_labelled": budget["n_labelled"],
        "labelled_per_class": budget["n_labelled"] / n_classes,
        "config_hash": rec["config_hash"],
    }
    row.update(rec.get("metrics", {}))
    row.update({f"seconds/{k}": v for k, v in rec.get("seconds", {}).items()})
    row.update({f"compute/{k}": v for k, v in rec.get("compute", {}).items()})
    info = rec.get("info", {})
    for stage in ("pretrain", "continued_pretrain"):
        row[f"{stage}_hash"] = info.get(f"{stage}_hash")
    return row


def collect(dirs: list[Path]) -> tuple[pd.DataFrame, list[dict], list[tuple[str, str]]]:
    """Read all records: ``(runs, raw records, [(unreadable path, why)])``.

    Raises:
        NoRecordsError: when nothing readable is found.
    """
    rows, records, bad = [], [], []
    for path in find_records(dirs):
        try:
            rec = read_record(path)
            rows.append(_row(path, rec))
            records.append(rec)
        except (OSError, ValueError, KeyError, TypeError) as err:
            bad.append((str(path), f"{type(err).__name__}: {err}"))
    if not rows:
        where = ", ".join(str(d) for d in dirs)
        raise NoRecordsError(f"no readable {RECORD_NAME} under {where}")
    return pd.DataFrame(rows), records, bad


def budget_order(per_class: pd.Series) -> pd.Series:
    """Sort key for budgets: numbers ascending, ``all`` last."""
    return per_class.map(lambda v: float("inf") if v == ALL_BUDGET else float(v))
