"""When forgetting happens: the ``train.track_every`` rows of tracked runs, against the step.

A tracked run (``benchmarks/tracking.py``) scored its target fit every N steps: target test
accuracy and the forgetting probe's source accuracy (and the supervised source head's, where
kept). The figure draws each tracked run's two curves, so a reader sees whether the source skill
goes in the first steps (a random head's large early gradients) or drains slowly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from reports.plots import COLORS

MAX_RUNS = 12  # tracked runs drawn; tracking is meant for a few chosen runs, not a sweep


def tracked(runs: pd.DataFrame) -> list[tuple[pd.Series, pd.DataFrame]]:
    """Each ok run with a track file and the file's rows, in the runs' order (at most MAX_RUNS)."""
    if "track_file" not in runs:
        return []
    rows = runs[runs["track_file"].notna() & runs["status"].eq("ok")].head(MAX_RUNS)
    out = []
    for _, row in rows.iterrows():
        path = Path(row["run_dir"]) / row["track_file"]
        if path.is_file():
            out.append((row, pd.read_csv(path)))
    return out


def figure(runs: pd.DataFrame) -> Figure | None:
    """Target and source accuracy against the optimiser step of each tracked run, or None."""
    entries = tracked(runs)
    if not entries:
        return None
    fig = Figure(figsize=(10, 4), layout="constrained")
    target, source = fig.subplots(1, 2, sharex=True)
    heads = False
    for row, track in entries:
        label = f"{row['arm']} @ {row['per_class']}/class, seed {row['seed']}"
        color = COLORS.get(row["regime"], "black")
        target.plot(track["step"], track["target_acc"], color=color, marker=".", label=label)
        if "source_acc" in track:
            source.plot(track["step"], track["source_acc"], color=color, marker=".", label=label)
        if "source_head_acc" in track:
            source.plot(track["step"], track["source_head_acc"], color=color, ls="--")
            heads = True
    target.set_ylabel("target test accuracy")
    source.set_ylabel("source accuracy, probe-refit" + ("; dashed: source head" if heads else ""))
    for ax in (target, source):
        ax.set_xlabel("optimiser step of the target fit")
        ax.grid(alpha=0.3)
    target.legend(fontsize=7)
    total = int((runs["track_file"].notna() & runs["status"].eq("ok")).sum())
    runs_text = f"{len(entries)} tracked run{'s' if len(entries) > 1 else ''}"
    shown = runs_text + (f" of {total}" if total > len(entries) else "")
    fig.suptitle(f"Target and source accuracy during the target fit ({shown})")
    return fig
