"""Collect ``record.json`` files under sweep folders into one tidy DataFrame (one row per run)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from common.records import RECORD_NAME, RunRecord, read_record
from reports.arms import arm_labels, pairing_columns

ALL_BUDGET = "all"


class NoRecordsError(ValueError):
    """No readable record under the given folders."""


class DuplicateRunsError(ValueError):
    """Two ok records would be the same sample of one cell (the same experiment read twice?)."""


def find_records(dirs: list[Path]) -> list[Path]:
    """Every ``record.json`` below ``dirs`` (a folder may be a sweep or a single run)."""
    found: list[Path] = []
    for d in dirs:
        if not d.is_dir():
            raise NoRecordsError(f"{d} is not a folder")
        for root, _, files in os.walk(d):
            if RECORD_NAME in files:
                found.append(Path(root) / RECORD_NAME)
    return sorted(set(found))  # a folder given twice, or inside another, is read once


def _or_seed(value: int | None, rec: RunRecord) -> int:
    return rec.seed if value is None else value  # older records: one seed for all


def _row(path: Path, rec: RunRecord) -> dict:
    budget = rec.budget
    n_classes = len(rec.classes["target"])
    row = {
        "run_dir": str(path.parent),
        "status": rec.status,
        "error": rec.error,
        "regime": rec.regime,
        "source": rec.source,
        "target": rec.target,
        "model": rec.model,
        "seed": rec.seed,
        "subset_seed": _or_seed(rec.subset_seed, rec),
        "train_seed": _or_seed(rec.train_seed, rec),
        "per_class": str(budget["per_class"]),
        "n_labelled": budget["n_labelled"],
        "labelled_per_class": budget["n_labelled"] / n_classes,
        "config_hash": rec.config_hash,
    }
    row.update(rec.metrics)
    row.update({f"seconds/{k}": v for k, v in rec.seconds.items()})
    row.update({f"compute/{k}": v for k, v in rec.compute.items()})
    info = rec.info
    for stage in ("pretrain", "continued_pretrain", "fisher"):  # shared stages: amortised costs
        row[f"{stage}_hash"] = info.get(f"{stage}_hash")
    row["track_file"] = info.get("track_file")  # train.track_every: reports/tracks.py
    row["overrides"] = settings(rec.job.get("overrides", []))
    row |= selection_columns(rec.selection)
    if "stream_domains" in info:
        row["stream_domains"] = ",".join(info["stream_domains"])
        continued = rec.config.get("continued_pretrain", {})
        row["replay"], row["schedule"] = continued.get("replay"), continued.get("schedule")
    return row


# Overrides that place a run in the grid rather than change what it is.
_GRID_KEYS = (
    "seed",
    "subset_seed",
    "train_seed",
    "regime",
    "budget.per_class",
    "experiment",
    "name",
    "tuning.trial",  # a trial is a grid position: the trials of one regime are one arm
)


def protocol_label(selection: dict) -> str:
    """How tables name a run's selection protocol, e.g. ``cv (k=3)``; "fixed" when untuned.

    >>> protocol_label({"protocol": "holdout", "per_class": 5, "extra_labels": 25})
    'holdout (V=5/class, 25 extra labels)'
    """
    protocol = selection.get("protocol", "fixed")
    if protocol == "cv":
        if selection.get("defaulted"):
            return "cv (no fold: a class has < 2 labels, declared defaults)"
        return f"cv (k={selection.get('folds')})"
    if protocol == "holdout":
        extra = selection.get("extra_labels", 0)
        return f"holdout (V={selection.get('per_class')}/class, {extra} extra labels)"
    if protocol == "oracle":
        return "oracle (selected on the test split: an upper bound)"
    return str(protocol)


def selection_columns(selection: dict) -> dict:
    """The selection block's columns; none for records without one (the report stays as it was).

    ``hp/<dotted key>`` holds this trial's value of each tuned hyperparameter, or the value the
    run used where it differs (``selection.used``: k-NN's k capped at the smallest class count).
    """
    if not selection:
        return {}
    row = {k: selection.get(k) for k in ("protocol", "trial", "trials", "extra_labels")}
    row |= {k: bool(selection.get(k, False)) for k in ("defaulted", "is_default")}
    row["selection"] = protocol_label(selection)
    row |= {f"hp/{k}": v for k, v in selection.get("hparams", {}).items()}
    row |= {f"hp/{k}": v for k, v in selection.get("used", {}).items()}
    return row


def settings(overrides: list[str]) -> str:
    """A run's overrides besides its grid position, as ``key=value`` joined by ``;``."""
    kept = []
    for override in sorted(overrides):
        key = override.lstrip("+~").partition("=")[0]
        if key not in _GRID_KEYS and not key.startswith("hydra"):
            kept.append(override.lstrip("+~"))
    return ";".join(kept)


def variants(settings_column: pd.Series) -> pd.Series:
    """Per run, the settings that differ between these runs, e.g. ``replay=0.05, schedule=rewarm``.

    Runs with the same variant differ only by seed (and grid position), so they are the samples
    of one interval. Keys are shortened to their last component.
    """
    parsed = [
        dict(kv.split("=", 1) for kv in text.split(";") if kv) if isinstance(text, str) else {}
        for text in settings_column
    ]
    keys = sorted({k for p in parsed for k in p})
    varying = [k for k in keys if len({p.get(k) for p in parsed}) > 1]
    labels = [", ".join(f"{k.rsplit('.', 1)[-1]}={p.get(k, '-')}" for k in varying) for p in parsed]
    return pd.Series(labels, index=settings_column.index)


def collect(dirs: list[Path]) -> tuple[pd.DataFrame, list[RunRecord], list[tuple[str, str]]]:
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
    runs = pd.DataFrame(rows)
    runs = pd.concat([runs, arm_labels(records).set_index(runs.index)], axis=1)
    refuse_duplicates(runs)
    return runs, records, bad


def refuse_duplicates(runs: pd.DataFrame) -> None:
    """Refuse two ok runs that would be the same sample of one (arm, budget) cell.

    Raises:
        DuplicateRunsError: naming both run folders, so the user can drop one of them.
    """
    ok = runs[runs["status"] == "ok"]
    key = ["arm", "per_class", *pairing_columns(ok), *(["trial"] if "trial" in ok else [])]
    twice = ok[ok.duplicated(key, keep=False)]
    if twice.empty:
        return
    same = twice[key].astype(str).agg("|".join, axis=1)  # NaN (an untuned trial) equals NaN
    first = twice.iloc[0]
    other = twice[same == same.iloc[0]].iloc[1]
    seeds = ", ".join(f"{k}={first[k]}" for k in key[2:] if pd.notna(first[k]))
    raise DuplicateRunsError(
        f"two ok records for arm {first['arm']!r}, per_class={first['per_class']}, {seeds}: "
        f"{first['run_dir']} and {other['run_dir']} (the same run read twice? pass one of them)"
    )


def budget_order(per_class: pd.Series) -> pd.Series:
    """Sort key for budgets: numbers ascending, ``all`` last."""
    return per_class.map(lambda v: float("inf") if v == ALL_BUDGET else float(v))
