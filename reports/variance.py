"""Where a cell's spread comes from: the labelled subset or the training seed.

Only a crossed design can separate them (every subset_seed run with every train_seed); when one
seed sets both (the shorthand ``seed``), the two sources are confounded and the table says so.
"""

from __future__ import annotations

import pandas as pd

from reports.crossed import variance_split
from reports.family import with_keys

NOT_CROSSED = "cannot be decomposed: subset_seed and train_seed are not crossed in this cell"
COLUMNS = ["arm", "per_class", "subset share", "train share", "residual share", "design", "note"]


def variance_table(runs: pd.DataFrame, metric: str = "test/acc") -> pd.DataFrame:
    """Per arm x budget of ``ok`` runs: the shares of the variance of ``metric`` (see inference).

    Empty when no cell is crossed (the usual ``seed`` sweep): one sentence says so instead.
    """
    ok = with_keys(runs[(runs["status"] == "ok") & runs[metric].notna()])
    rows = []
    for (arm, per_class), cell in ok.groupby(["arm", "per_class"], sort=False):
        split = variance_split(
            cell[metric].to_numpy(float),
            cell["subset_seed"].to_numpy(),
            cell["train_seed"].to_numpy(),
        )
        if split is None:
            rows.append([arm, per_class, None, None, None, "-", NOT_CROSSED])
            continue
        note = "negative estimate clipped to 0" if split.clipped else ""
        design = f"{split.n_subset} subsets x {split.n_train} train seeds"
        rows.append(
            [
                arm,
                per_class,
                split.subset_share,
                split.train_share,
                split.residual_share,
                design,
                note,
            ]  # fmt: skip
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    if table.empty or (table["note"] == NOT_CROSSED).all():
        return table.iloc[0:0]
    return table
