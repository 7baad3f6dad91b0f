"""The tuned report: chosen trials, the oracle beside them, tuning-budget curves, what was chosen.

``choose`` narrows a tuned sweep's runs to the trial each unit's protocol chose
(``reports.selection``), so every table, finding and plot of the report is made from chosen runs
only. ``section`` adds what only a tuned sweep has:

- the chosen protocol and the oracle side by side for test/acc per arm x budget, and the gap
  oracle - chosen paired by unit (subset_seed, train_seed), with its Student-t interval;
- tuning-budget curves (Dodge et al. 2019, "Show Your Work"): the expected test accuracy of the
  validation-best of n trials, n = 1..N, mean over units, one figure per group, a panel per
  budget, a line per arm;
- the selected hyperparameters per arm and budget: each key's mode over units and its count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from common.records import RunRecord
from reports import plots, selection
from reports.collect import budget_order
from reports.family import UNIT
from reports.inference import paired_test, t_interval
from reports.tables import arm_order

CURVE_METHOD = (
    "expected test accuracy of the validation-best of n trials drawn without replacement from "
    "the N of each unit (computed exactly from the trials' ranks: P(the j-th worst is the best "
    "of n) = C(j-1, n-1) / C(N, n)), mean over units with the Student-t 95% interval; a unit "
    "without a validation score always takes its default trial (a flat line)"
)


@dataclass(frozen=True)
class Tuned:
    """What the report aggregates and what it lists.

    Attributes:
        runs: the chosen runs (untuned and failed ones as they are), index 0..n-1.
        records: their records, in the same order (readers index them by position).
        trials: every run, with ``selected`` and ``oracle`` flags when tuned (runs.csv).
        oracle: the oracle's chosen runs (empty when untuned).
    """

    runs: pd.DataFrame
    records: list[RunRecord]
    trials: pd.DataFrame
    oracle: pd.DataFrame


def choose(runs: pd.DataFrame, records: list[RunRecord]) -> Tuned:
    """The runs and records every table uses: the chosen trial per unit; all of them if untuned."""
    if not selection.is_tuned(runs):
        return Tuned(runs, records, runs, runs.iloc[:0])
    runs = runs.reset_index(drop=True)
    chosen = selection.selected(runs)
    oracle = selection.selected(runs, oracle=True)
    trials = runs.assign(
        selected=runs.index.isin(chosen.index), oracle=runs.index.isin(oracle.index)
    )
    picked = [records[i] for i in chosen.index]
    return Tuned(chosen.reset_index(drop=True), picked, trials, oracle.reset_index(drop=True))


def _cell(mean: float, low: float, high: float, sign: str = "") -> str:
    if pd.isna(low):
        return f"{mean:{sign}.3f}"
    return f"{mean:{sign}.3f} [{low:{sign}.3f}, {high:{sign}.3f}]"


def gap_table(tuned: Tuned) -> pd.DataFrame:
    """Per tuned arm x budget: chosen and oracle test/acc, and oracle - chosen paired by unit."""
    key = ["arm", "per_class", *UNIT]
    ok = tuned.runs[(tuned.runs["status"] == "ok") & tuned.runs["trial"].notna()]
    both = ok.merge(tuned.oracle[[*key, "test/acc"]], on=key, suffixes=("", "_oracle"))
    rows = []
    for (arm, per_class), cell in both.groupby(["arm", "per_class"]):
        units = (cell["subset_seed"].to_numpy(), cell["train_seed"].to_numpy())
        mine, best = cell["test/acc"].to_numpy(float), cell["test/acc_oracle"].to_numpy(float)
        chosen, oracle = t_interval(mine, units=units), t_interval(best, units=units)
        gap = paired_test(best, mine, units=units)
        rows.append(
            {"arm": arm, "regime": cell["regime"].iloc[0], "per_class": per_class,
             "selection": "; ".join(sorted(set(cell["selection"].dropna()))),
             "trials": _budget(cell), "n_units": len(cell),
             "n_defaulted": int(cell["defaulted"].sum()),
             "chosen_mean": chosen.mean, "chosen_ci_low": chosen.low, "chosen_ci_high": chosen.high,
             "oracle_mean": oracle.mean, "oracle_ci_low": oracle.low, "oracle_ci_high": oracle.high,
             "gap_mean": gap.estimate, "gap_ci_low": gap.low, "gap_ci_high": gap.high}
        )  # fmt: skip
    return _ordered(pd.DataFrame(rows))


def _budget(runs: pd.DataFrame) -> int:
    """The tuning budget N of these runs: declared (``trials``), else the trials seen."""
    declared = runs["trials"].max() if "trials" in runs else float("nan")
    return int(declared) if pd.notna(declared) else int(runs["trial"].nunique())


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by regime order, arm, then budget ascending."""
    if frame.empty:
        return frame
    rank = {a: i for i, a in enumerate(arm_order(frame["arm"], frame["regime"]))}
    key = frame["arm"].map(rank) * 1e6 + budget_order(frame["per_class"]).replace(float("inf"), 1e5)
    return frame.iloc[key.argsort(kind="stable")].reset_index(drop=True)


def gap_view(gap: pd.DataFrame) -> pd.DataFrame:
    """The side-by-side table a reader sees."""
    return pd.DataFrame(
        {
            "arm": gap["arm"],
            "budget": gap["per_class"],
            "selection": gap["selection"],
            "trials": gap["trials"],
            "chosen test/acc [95% CI]": [
                _cell(*r) for r in gap[["chosen_mean", "chosen_ci_low", "chosen_ci_high"]].values
            ],
            "oracle test/acc [95% CI]": [
                _cell(*r) for r in gap[["oracle_mean", "oracle_ci_low", "oracle_ci_high"]].values
            ],
            "gap oracle - chosen [95% CI]": [
                _cell(*r, sign="+") for r in gap[["gap_mean", "gap_ci_low", "gap_ci_high"]].values
            ],
            "units (defaulted)": [f"{n} ({d})" for n, d in gap[["n_units", "n_defaulted"]].values],
        }
    )


def curves(trials: pd.DataFrame) -> pd.DataFrame:
    """Tuning-budget curves per arm x budget x n: mean over units of ``selection.unit_curves``."""
    per_unit = selection.unit_curves(trials[trials["status"] == "ok"])
    labels = trials.groupby("arm")[["regime", "group"]].first()
    protocols = selection.protocol_labels(trials)
    rows = []
    for (arm, per_class, n), cell in per_unit.groupby(["arm", "per_class", "n"]):
        units = (cell["subset_seed"].to_numpy(), cell["train_seed"].to_numpy())
        r = t_interval(cell["expected"].to_numpy(float), units=units)
        rows.append(
            {"arm": arm, "regime": labels.loc[arm, "regime"], "group": labels.loc[arm, "group"],
             "per_class": per_class, "selection": protocols[arm], "n": n,
             "expected_test_acc": r.mean, "ci_low": r.low, "ci_high": r.high, "n_units": r.n}
        )  # fmt: skip
    return pd.DataFrame(rows)


def curve_figure(curve: pd.DataFrame) -> Figure:
    """One group's curves: a panel per budget, a line per arm (colour by regime), 95% band."""
    budgets = sorted(curve["per_class"].unique(), key=lambda b: budget_order(pd.Series([b]))[0])
    fig, axes = plt.subplots(1, len(budgets), figsize=(3.6 * len(budgets) + 1, 3.6), sharey=True)
    axes = [axes] if len(budgets) == 1 else list(axes)
    for ax, budget in zip(axes, budgets, strict=True):
        here = curve[curve["per_class"] == budget]
        for arm in arm_order(here["arm"], here["regime"]):
            line = here[here["arm"] == arm].sort_values("n")
            color = plots.COLORS.get(line["regime"].iloc[0], "black")
            ax.plot(line["n"], line["expected_test_acc"], marker="o", ms=3, color=color, label=arm)
            ax.fill_between(line["n"], line["ci_low"], line["ci_high"], color=color, alpha=0.15)
        ax.set_title(f"{budget} per class", fontsize=9)
        ax.set_xlabel("trials n")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("expected test acc of the validation-best")
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    group = curve["group"].iloc[0]
    fig.suptitle(f"Tuning budget{' (' + group + ')' if group else ''}: best of n trials")
    fig.tight_layout()
    return fig


def hparams(tuned: Tuned) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(selected_hparams.csv, its arms x budgets view: "train.lr=0.003 (7/10)" per key)."""
    chosen = tuned.runs[(tuned.runs["status"] == "ok") & tuned.runs["trial"].notna()]
    modes = selection.hparam_modes(chosen)
    if modes.empty:
        return modes, modes
    modes.insert(1, "selection", modes["arm"].map(selection.protocol_labels(chosen)))
    text = modes.assign(
        cell=[f"{r.key}={r.mode} ({r.count}/{r.n_units})" for r in modes.itertuples()]
    )
    view = text.groupby(["arm", "per_class"])["cell"].agg("; ".join).unstack("per_class")
    view = view[sorted(view.columns, key=lambda b: budget_order(pd.Series([b]))[0])]
    regimes = chosen.groupby("arm")["regime"].first()
    return modes, view.loc[arm_order(regimes.index.to_series(), regimes)].fillna("-")


def section(tuned: Tuned, out: Path) -> dict:
    """The tuned section's CSVs (written into ``out``), figures and page context (None: untuned)."""
    if tuned.oracle.empty:
        return {"figures": {}, "context": None}
    gap = gap_table(tuned)
    gap.to_csv(out / "oracle_gap.csv", index=False)
    modes, view = hparams(tuned)
    modes.to_csv(out / "selected_hparams.csv", index=False)
    curve = curves(tuned.trials)
    curve.to_csv(out / "tuning_curves.csv", index=False)
    groups = list(dict.fromkeys(curve["group"]))
    names = (
        ["tuning_curves"]
        if len(groups) == 1
        else [f"tuning_curves_{i}" for i in range(len(groups))]
    )
    figures = {
        n: curve_figure(curve[curve["group"] == g]) for n, g in zip(names, groups, strict=True)
    }
    tried = tuned.trials[tuned.trials["trial"].notna()]
    trials = pd.Series({arm: _budget(cell) for arm, cell in tried.groupby("arm")})
    pages = {"Chosen protocol and oracle (test/acc)": gap_view(gap).set_index("arm")}
    context = {
        "protocols": sorted(set(gap["selection"])),
        "trials": ", ".join(f"{a}: {int(n)}" for a, n in trials.items()),
        "equal_budget": trials.nunique() == 1,
        "n_trial_runs": len(tuned.trials),
        "rule": selection.RULE,
        "oracle_rule": selection.ORACLE_RULE,
        "curve_method": CURVE_METHOD,
        "gap_table": gap_view(gap).to_html(index=False, escape=True),
        "hparams_table": view.to_html(escape=True),
        "figures": names,
        "pages": pages
        | ({"Selected hyperparameters (mode over units)": view} if len(view) else {}),
    }
    return {"figures": figures, "context": context}
