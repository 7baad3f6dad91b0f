"""The "Findings" section: the declared claims (``reports.claims``) and the replay sentences.

Every regime sentence is made from a row of ``findings.csv``; nothing here picks the largest of
several noisy numbers. Replay differences are paired by seed (one backbone per seed) and tested
with the paired t-test, Holm-corrected over every replay fraction x schedule of the study.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.records import RunRecord
from reports import claims
from reports.family import comparisons, declared, with_keys
from reports.inference import holm, paired_test
from reports.selection import protocol_labels


def _ci(lo: float, hi: float) -> str:
    return f"95% t CI {lo:+.3f} to {hi:+.3f}"


def replay_effect(per_run: pd.DataFrame, knobs: pd.DataFrame) -> list[str]:
    """Per schedule: each replay fraction against none, on Chaudhry forgetting, paired by seed."""
    if per_run.empty:
        return []
    data = per_run.merge(knobs, left_on="variant", right_index=True)
    found = []
    for schedule, group in data.groupby("schedule"):
        base = group[group["replay"] == 0].set_index("seed")["forgetting_max"]
        for replay, cell in group[group["replay"] > 0].groupby("replay"):
            mine = cell.set_index("seed")["forgetting_max"]
            seeds = mine.index.intersection(base.index)
            if len(seeds) < 2:
                continue
            test = paired_test(mine.loc[seeds].to_numpy(float), base.loc[seeds].to_numpy(float))
            found.append((schedule, replay, base.loc[seeds].mean(), mine.loc[seeds].mean(), test))
    adjusted = holm(np.array([f[-1].p_t for f in found], float))
    out = []
    for (schedule, replay, before, after, t), p in zip(found, adjusted, strict=True):
        what = f"Replay of {replay:.0%} (schedule {schedule}) {{}} forgetting from {before:.3f} "
        what += f"to {after:.3f} ({_ci(t.low, t.high)}, Holm p = {p:.3g} over {len(found)})"
        if p < claims.ALPHA and t.high < 0:
            out.append(what.format("cuts") + ".")
        elif p < claims.ALPHA and t.low > 0:
            out.append(what.format("raises") + ".")
        else:
            out.append(what.format("moves") + f", not resolved with {t.n} seeds.")
    return out


def findings(
    runs: pd.DataFrame,
    records: list[RunRecord],
    stream_runs: pd.DataFrame,
    stream_knobs: pd.DataFrame,
) -> tuple[pd.DataFrame, list[str]]:
    """The rows of findings.csv and every sentence, primary claims first."""
    ok = with_keys(runs[runs["status"] == "ok"])
    spec = declared(records, set(ok["regime"]))
    rows = claims.claim_rows(ok, comparisons(ok, spec), spec["pretrained"])
    if "selection" in ok:  # which protocol chose the runs of each side (reports.selection)
        label = protocol_labels(ok)
        rows["selection"] = [
            label[a] if label.get(b, label[a]) == label[a] else f"{a}: {label[a]}; {b}: {label[b]}"
            for a, b in zip(rows["a"], rows["b"], strict=True)
        ]
    return rows, claims.sentences(rows) + replay_effect(stream_runs, stream_knobs)
