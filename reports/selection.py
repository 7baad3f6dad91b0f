"""Model selection over tuning trials, as pure functions (DomainBed's model-selection methods).

A tuned sweep runs each regime at N points of its grid (the trials, ``trial`` 0..N-1) for every
(budget, subset_seed, train_seed): a *unit*. The report compares regimes only after choosing one
trial per unit, by a rule fixed before the numbers are seen (Gulrajani & Lopez-Paz 2021):

- **validation** (the run's protocol: holdout, cv, ...): the highest ``val/acc``; ties go to the
  lower ``val/loss``, then to the lower trial index. It reads no test metric at all: it is
  handed only the columns in :data:`SELECTION_COLUMNS`.
- a unit without a validation score (``defaulted``: cv where a class has fewer than 2 labelled
  examples, so no fold can hold it out) takes its ``is_default`` trial, the regime's declared
  defaults; so does a unit whose trials report no finite ``val/acc``.
- **oracle**: the highest ``test/acc`` of the same trials (ties: lower trial index), an upper
  bound on any selection rule, always labelled oracle.

Untuned runs (``trial`` missing) and failed runs pass through unchanged: a failed trial cannot
be chosen, and it still counts as a failure of its cell.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

UNIT_KEY = ["arm", "per_class", "subset_seed", "train_seed"]
SELECTION_COLUMNS = (*UNIT_KEY, "trial", "val/acc", "val/loss", "defaulted", "is_default")
RULE = (
    "per (arm, budget, subset_seed, train_seed) the trial with the highest val/acc (ties: lower "
    "val/loss, then lower trial index); a unit without a validation score takes the trial with "
    "the regime's declared defaults"
)
ORACLE_RULE = "the trial with the highest test/acc among the same trials (an upper bound only)"


def is_tuned(runs: pd.DataFrame) -> bool:
    """Some run is a trial of a grid (its record's ``selection.trial`` is set)."""
    return "trial" in runs and bool(runs["trial"].notna().any())


def _trials(runs: pd.DataFrame) -> pd.Series:
    """Mask of the ok runs that are trials: the only rows a selection chooses among."""
    if not is_tuned(runs):
        return pd.Series(False, index=runs.index)
    return (runs["status"] == "ok") & runs["trial"].notna()


def _column(frame: pd.DataFrame, name: str, fill: object) -> pd.Series:
    return frame[name].fillna(fill) if name in frame else pd.Series(fill, index=frame.index)


def validation_order(view: pd.DataFrame) -> pd.DataFrame:
    """``view``'s rows best first within each unit by the validation rule (NaN ``val/acc`` last).

    ``view`` needs only :data:`SELECTION_COLUMNS`; the order is strict (the trial index breaks
    every tie), which is what makes the expected-maximum curve exact.
    """
    key = view.assign(
        _acc=-_column(view, "val/acc", -math.inf).astype(float),
        _loss=_column(view, "val/loss", math.inf).astype(float),
    )
    return key.sort_values([*UNIT_KEY, "_acc", "_loss", "trial"], kind="stable")


def _unscored(view: pd.DataFrame) -> pd.Series:
    """Per row: its unit has no validation score (declared ``defaulted``, or no finite val/acc)."""
    acc = _column(view, "val/acc", math.nan).astype(float)
    scored = acc.notna().groupby([view[k] for k in UNIT_KEY]).transform("any")
    defaulted = _column(view, "defaulted", False).astype(bool)
    flagged = defaulted.groupby([view[k] for k in UNIT_KEY]).transform("any")
    return flagged | ~scored


def choose(runs: pd.DataFrame) -> pd.Index:
    """Index labels of the validation-chosen trial of every unit (never reads a test metric)."""
    mask = _trials(runs)
    view = runs.loc[mask, [c for c in SELECTION_COLUMNS if c in runs]]
    if view.empty:
        return view.index
    unscored = _unscored(view)
    scored = validation_order(view[~unscored]).drop_duplicates(UNIT_KEY)
    default = view[unscored & _column(view, "is_default", False).astype(bool)]
    default = default.sort_values("trial", kind="stable").drop_duplicates(UNIT_KEY)
    return scored.index.append(default.index)


def choose_oracle(runs: pd.DataFrame) -> pd.Index:
    """Index labels of the test-best trial of every unit: the oracle, an upper bound only."""
    trials = runs[_trials(runs)]
    acc = -_column(trials, "test/acc", -math.inf).astype(float)
    ordered = trials.assign(_acc=acc).sort_values([*UNIT_KEY, "_acc", "trial"], kind="stable")
    return ordered.drop_duplicates(UNIT_KEY).index


def selected(runs: pd.DataFrame, oracle: bool = False) -> pd.DataFrame:
    """The runs a report aggregates: one chosen trial per unit, untuned and failed rows as they are.

    Rows keep their order and index labels (so positional records can follow them).
    """
    mask = _trials(runs)
    chosen = choose_oracle(runs) if oracle else choose(runs)
    return runs[~mask | runs.index.isin(chosen)]


def expected_best_weights(n_trials: int, n: int, replace: bool = False) -> np.ndarray:
    """P(the j-th worst of ``n_trials`` strictly ranked trials is the best of ``n`` drawn).

    Without replacement (a random subset of n distinct trials): C(j-1, n-1) / C(N, n). With
    replacement (n independent uniform draws, Dodge et al. 2019): (j/N)^n - ((j-1)/N)^n.
    """
    j = np.arange(1, n_trials + 1)
    if replace:
        return (j / n_trials) ** n - ((j - 1) / n_trials) ** n
    total = math.comb(n_trials, n)
    return np.array([math.comb(int(k) - 1, n - 1) / total for k in j])


def expected_max_curve(test_worst_first: np.ndarray, replace: bool = False) -> np.ndarray:
    """Expected test accuracy of the validation-best of n trials, for n = 1..N.

    ``test_worst_first``: the trials' test accuracies in the validation order, worst first (a
    strict order: :func:`validation_order`). The report draws without replacement: the trials
    are N distinct grid points of a deterministic run, so drawing one twice is not a second
    trial, and at n = N the curve ends exactly at the selected runs' accuracy. Dodge et al.'s
    estimator draws with replacement (``replace=True``), treating the N trials as a sample of
    an unknown distribution of configurations; its value at n = N is below the selected one.

    >>> expected_max_curve(np.array([0.2, 0.5, 0.4])).round(4).tolist()
    [0.3667, 0.4333, 0.4]
    """
    values = np.asarray(test_worst_first, float)
    return np.array(
        [expected_best_weights(len(values), n, replace) @ values for n in range(1, len(values) + 1)]
    )


def unit_curves(runs: pd.DataFrame, replace: bool = False) -> pd.DataFrame:
    """Per unit and n: the expected test accuracy of the validation-best of n of its ok trials.

    A unit without a validation score always takes its default trial: a flat curve at that
    trial's accuracy. A failed trial is not a draw (its unit has fewer trials).
    """
    trials = runs[_trials(runs)]
    unscored = _unscored(trials)
    rows = []
    for unit, cell in validation_order(trials).groupby(UNIT_KEY, sort=False):
        test = cell["test/acc"].to_numpy(float)[::-1] if "test/acc" in cell else np.array([])
        if unscored.loc[cell.index].any():
            default = cell[_column(cell, "is_default", False).astype(bool)]
            flat = float(default["test/acc"].iloc[0]) if len(default) else math.nan
            curve = np.full(len(cell), flat)
        else:
            curve = expected_max_curve(test, replace)
        for n, value in enumerate(curve, start=1):
            rows.append(dict(zip(UNIT_KEY, unit, strict=True)) | {"n": n, "expected": value})
    return pd.DataFrame(rows, columns=[*UNIT_KEY, "n", "expected"])


def _text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def hparam_modes(chosen: pd.DataFrame) -> pd.DataFrame:
    """Per (arm, budget, hyperparameter): the value most units chose, how many, and the spread.

    ``chosen``: the selected tuned runs. A tie of counts goes to the value of the lower trial
    index, so the table is deterministic. ``values``: every value chosen, with its count.
    """
    rows = []
    hps = [c for c in chosen.columns if c.startswith("hp/")]
    for (arm, per_class), cell in chosen.sort_values("trial").groupby(["arm", "per_class"]):
        for hp in hps:
            values = [_text(v) for v in cell[hp] if not (isinstance(v, float) and math.isnan(v))]
            if not values:
                continue
            counts = Counter(values)
            ranked = sorted(counts, key=lambda v: (-counts[v], values.index(v)))
            rows.append(
                {
                    "arm": arm,
                    "per_class": per_class,
                    "key": hp.removeprefix("hp/"),
                    "mode": ranked[0],
                    "count": counts[ranked[0]],
                    "n_units": len(values),
                    "values": ", ".join(f"{v} ({counts[v]})" for v in ranked),
                }
            )
    return pd.DataFrame(
        rows, columns=["arm", "per_class", "key", "mode", "count", "n_units"] + ["values"]
    )


def protocol_labels(runs: pd.DataFrame) -> pd.Series:
    """Per arm, its runs' protocol labels joined: under cv they differ by budget (k, defaulted)."""
    return runs.groupby("arm")["selection"].agg(lambda s: "; ".join(sorted(set(s.dropna()))))
