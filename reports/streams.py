"""Streams of domains (``continual_pretrain`` runs): the accuracy matrix and transfer metrics.

A language model's stream also has its bits-per-byte matrix (``lm/B/i/j``), summarised the same
way (``section()["bits"]``).

Runs that differ only in their seed form one *variant* (e.g. ``replay=0.05, schedule=rewarm``);
each seed's matrix gives one value of every metric in :mod:`reports.transfer`, and the tables
report the mean over seeds with a 95% Student-t interval (``aggregate.mean_ci``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from reports.aggregate import mean_ci
from reports.collect import variants
from reports.transfer import DEFINITIONS, stream_metrics

_CELL = re.compile(r"^R/(\d+)/(\d+)$")


def stream_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The ok runs that carry an accuracy matrix, with their ``variant``."""
    if "R/0/0" not in runs:
        return runs.iloc[:0]
    found = runs[(runs["status"] == "ok") & runs["R/0/0"].notna()]
    return found.assign(variant=variants(found["overrides"]))


def _size(runs: pd.DataFrame) -> int:
    cells = [_CELL.match(c) for c in runs.columns]
    return 1 + max(int(m.group(1)) for m in cells if m)


def _has_bits(runs: pd.DataFrame) -> bool:
    """Whether the stream's runs are a language model's (``lm/B/i/j``: bits per byte)."""
    return "lm/B/0/0" in runs and bool(runs["lm/B/0/0"].notna().all())


def matrices(row: pd.Series, t: int) -> tuple[np.ndarray, np.ndarray]:
    """The T x T matrix R and baselines b of one run."""
    r = np.array([[row[f"R/{i}/{j}"] for j in range(t)] for i in range(t)], float)
    return r, np.array([row[f"b/{j}"] for j in range(t)], float)


def per_run_metrics(streams: pd.DataFrame) -> pd.DataFrame:
    """One row per run: variant, seed and every transfer metric of its matrix."""
    t = _size(streams)
    rows = []
    for _, row in streams.iterrows():
        r, b = matrices(row, t)
        rows.append({"variant": row["variant"], "seed": row["seed"]} | stream_metrics(r, b))
    return pd.DataFrame(rows)


def accuracy_matrix(streams: pd.DataFrame, domains: list[str], family: str = "R") -> pd.DataFrame:
    """Per variant, stage and domain: mean accuracy over seeds and its interval.

    ``family="lm/B"``: the same for a language model's bits per byte (``lm/B/i/j``).
    """
    t = _size(streams)
    rows = []
    for variant, group in streams.groupby("variant"):
        for i in range(t):
            for j in range(t):
                vals = group[f"{family}/{i}/{j}"].to_numpy(float)
                mean, lo, hi = mean_ci(vals)
                cell = {"stage": i, "stage_domain": domains[i], "domain": domains[j]}
                rows.append(
                    {"variant": variant, **cell, "mean": mean, "ci_low": lo, "ci_high": hi}
                    | {"n_seeds": len(vals)}
                )
    return pd.DataFrame(rows)


def transfer_metrics(streams: pd.DataFrame) -> pd.DataFrame:
    """Per variant and metric: definition, mean over seeds and its interval."""
    per_run = per_run_metrics(streams)
    rows = []
    for variant, group in per_run.groupby("variant"):
        for metric, definition in DEFINITIONS.items():
            vals = group[metric].to_numpy(float)
            value, lo, hi = mean_ci(vals)
            rows.append(
                {"variant": variant, "metric": metric, "definition": definition}
                | {"value": value, "ci_low": lo, "ci_high": hi, "n_seeds": len(vals)}
            )
    return pd.DataFrame(rows)


def variant_summary(streams: pd.DataFrame) -> pd.DataFrame:
    """Per variant: replay, schedule, Chaudhry forgetting and target gain with intervals."""
    per_run = per_run_metrics(streams)
    knobs = streams.groupby("variant")[["replay", "schedule"]].first()
    rows = []
    for variant, group in per_run.groupby("variant"):
        row = {"variant": variant, **knobs.loc[variant].to_dict(), "n_seeds": len(group)}
        for short, metric in (("fgt", "forgetting_max"), ("gain", "target_gain")):
            stats = mean_ci(group[metric].to_numpy(float))
            row |= dict(
                zip((f"{short}_mean", f"{short}_ci_low", f"{short}_ci_high"), stats, strict=True)
            )
        rows.append(row)
    return pd.DataFrame(rows)


MATRIX_COLUMNS = ["variant", "stage", "stage_domain", "domain", "mean", "ci_low", "ci_high"]
MATRIX_COLUMNS += ["n_seeds"]


def section(runs: pd.DataFrame) -> dict:
    """Accuracy matrix, transfer metrics and per-variant summary of the stream runs, if any."""
    found = stream_runs(runs)
    if found.empty:
        return {"runs": found, "matrix": pd.DataFrame(columns=MATRIX_COLUMNS)}
    domains = found["stream_domains"].iloc[0].split(",")
    bits = {"bits": accuracy_matrix(found, domains, "lm/B")} if _has_bits(found) else {}
    return bits | {
        "runs": found,
        "matrix": accuracy_matrix(found, domains),
        "transfer": transfer_metrics(found),
        "per_run": per_run_metrics(found),
        "per_variant": variant_summary(found),
        "knobs": found.groupby("variant")[["replay", "schedule"]].first(),
    }


def bits_table(bits: pd.DataFrame) -> pd.DataFrame:
    """The bits-per-byte matrix as a reader scans it: rows are stages, columns domains.

    A row per variant and stage, a column per evaluated domain in stream order, each cell
    "mean [low, high]".
    """
    domains = list(dict.fromkeys(bits["domain"]))
    cells = bits.assign(
        cell=[
            f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
            for m, lo, hi in bits[["mean", "ci_low", "ci_high"]].to_numpy()
        ]
    )
    table = cells.pivot(index=["variant", "stage", "stage_domain"], columns="domain", values="cell")
    return table[domains]
