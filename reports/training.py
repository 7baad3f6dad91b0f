"""Training curves of a chosen run per arm: can a reader see a fit that did not converge?

Every fit a run does (``pretrain``, ``continued_pretrain``, ``train``) logs ``train/loss`` into
``<job folder>/<fit>/metrics.csv`` (Lightning's CSVLogger, ``trainer.logger.csv``). Plotting every
run would bury the curves; per arm the report shows the run whose target test accuracy is the
median of its cell's seeds, at the smallest and at the largest budget: typical runs, not the
best ones. A cached stage logs only in the job that built it, so its curve is looked up there
(by the stage's hash); a stage built outside the sweeps read is named, not drawn.

Pure functions of records and files: no torch, no benchmarks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from textwrap import wrap

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from common.records import RunRecord
from reports.collect import budget_order
from reports.tables import arm_order

CSV = "metrics.csv"
LOSS = "train/loss"
STAGES = ("pretrain", "continued_pretrain")  # the fits a later run may take from the cache
NO_CSV = "no metrics.csv (a record from before the CSV logger, or trainer.logger={})"
CHOICE = (
    "Per arm, at its smallest and at its largest budget: the run whose target test accuracy is "
    "the median over the cell's ok seeds (for an even number of seeds the lower of the two "
    "middle ones; ties broken by subset_seed, then train_seed)."
)


def median_run(cell: pd.DataFrame) -> pd.Series:
    """The median-accuracy run of one cell (the lower middle one for an even count)."""
    ordered = cell.sort_values(["test/acc", "subset_seed", "train_seed"], kind="stable")
    return ordered.iloc[(len(ordered) - 1) // 2]


def chosen_runs(runs: pd.DataFrame, without: set[str] = frozenset()) -> pd.DataFrame:
    """Per arm (regimes in ``without`` left out): the median run at the extreme budgets.

    Returns the chosen rows of ``runs`` (index kept, so ``records[i]`` is row ``i``'s record)
    with ``n_seeds`` (the cell's ok runs) and ``budget_end`` ("smallest" / "largest" / "only").
    """
    if "test/acc" not in runs:  # every run failed: nothing measured, nothing to choose
        return runs.iloc[:0]
    ok = runs[(runs["status"] == "ok") & ~runs["regime"].isin(without)]
    ok = ok.dropna(subset=["test/acc"])
    rows = []
    for arm in arm_order(ok["arm"], ok["regime"]):
        mine = ok[ok["arm"] == arm]
        budgets = sorted(mine["per_class"].unique(), key=lambda b: budget_order(pd.Series([b]))[0])
        ends = {budgets[0]: "smallest", budgets[-1]: "largest"} if len(budgets) > 1 else {}
        for budget in dict.fromkeys([budgets[0], budgets[-1]]):
            cell = mine[mine["per_class"] == budget]
            row = median_run(cell).copy()
            row["n_seeds"], row["budget_end"] = len(cell), ends.get(budget, "only")
            rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class FitLog:
    """One fit's curve for one chosen run: where it came from, and the points (if found)."""

    fit: str  # pretrain, continued_pretrain(_k) or train
    origin: str  # "this run", "built by <job>", or why there is no curve
    curve: pd.DataFrame | None  # step, loss (float; nan/inf kept: a diverged fit shows)


def read_curve(path: Path) -> pd.DataFrame | None:
    """``step`` and ``loss`` of a metrics.csv: rows that logged a loss (nan/inf kept), or None.

    Rows that logged other metrics only (a callback's learning rate) leave the loss cell empty;
    a loss that became ``nan`` is written as the text ``nan`` and kept.
    """
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError):
        return None
    if LOSS not in table or "step" not in table:
        return None
    table = table[table[LOSS] != ""]
    if table.empty:
        return None
    return pd.DataFrame({"step": table["step"].astype(int), "loss": table[LOSS].astype(float)})


def _builders(runs: pd.DataFrame, records: list[RunRecord]) -> dict[tuple[str, str], Path]:
    """(stage, hash) -> the job folder of the run that built that stage (not a cache hit)."""
    found = {}
    for i, rec in enumerate(records):
        for stage in STAGES:
            digest = rec.info.get(f"{stage}_hash")
            if digest is not None and rec.info.get(f"{stage}_cached") is False:
                found[(stage, str(digest))] = Path(runs["run_dir"].iloc[i])
    return found


def _own_fits(job: Path | None, stage: str) -> dict[str, Path]:
    """The fits of ``stage`` logged in ``job`` (``continued_pretrain_2``... for a stream)."""
    if job is None:
        return {}
    found = {p.parent.name: p for p in sorted(job.glob(f"*/{CSV}"))}
    return {k: p for k, p in found.items() if k == stage or k.startswith(f"{stage}_")}


def _stage_logs(stage: str, rec: RunRecord, job: Path, builders: dict) -> list[FitLog]:
    """The logs of one cacheable stage of a run: its own, the builder's, or why none."""
    objective = rec.config.get("pretrain", {}).get("objective")
    if stage == "pretrain" and objective in ("timm", "hf"):
        return [FitLog(stage, f"published weights (pretrain={objective}): no fit", None)]
    own = _own_fits(job, stage)
    if own:
        return [FitLog(k, "this run", read_curve(p)) for k, p in own.items()]
    if rec.info.get(f"{stage}_cached") is not True:
        return [FitLog(stage, NO_CSV, None)]
    builder = builders.get((stage, str(rec.info.get(f"{stage}_hash"))))
    found = _own_fits(builder, stage)
    if not found:
        where = "in these sweeps, but " + NO_CSV if builder else "outside these sweeps"
        return [FitLog(stage, f"from the cache, built {where}: no curve here", None)]
    origin = f"from the cache, built by {builder.name if builder else ''}"
    return [FitLog(k, origin, read_curve(p)) for k, p in found.items()]


def _stages_read(rec: RunRecord, job: Path) -> set[str]:
    """The gradient stages a run reads; for an older record, those its folder logged."""
    if rec.reads is not None:
        return set(rec.reads)
    names = {p.parent.name for p in job.glob(f"*/{CSV}")}
    return {"continued_pretrain" if n.startswith("continued_pretrain") else n for n in names}


def fit_logs(rec: RunRecord, job: Path, builders: dict) -> list[FitLog]:
    """Every fit of one run in training order, each with its curve or why there is none."""
    read = _stages_read(rec, job)
    logs = [log for s in STAGES if s in read for log in _stage_logs(s, rec, job, builders)]
    if "train" in read:
        path = job / "train" / CSV
        found = path.exists()
        logs.append(FitLog("train", "this run" if found else NO_CSV, read_curve(path)))
    return logs


def summary_row(row: pd.Series, log: FitLog) -> dict:
    """One line of the curves table: the run, the fit, and how far its loss fell."""
    out = {
        "arm": row["arm"],
        "budget": f"{row['per_class']} ({row['budget_end']})",
        "run": Path(row["run_dir"]).name,
        "test/acc": f"{row['test/acc']:.3f} (median of {row['n_seeds']})",
        "fit": log.fit,
        "curve": log.origin,
    }
    if log.curve is None:
        return out
    loss = log.curve["loss"]
    finite = loss[loss.map(math.isfinite)]
    bad = log.curve.loc[~loss.map(math.isfinite), "step"]
    fifth = max(1, len(finite) // 5)  # a mean over a fifth of the points: one batch is noisy
    first, last = finite.iloc[:fifth].mean(), finite.iloc[-fifth:].mean()
    out |= {"points": len(loss), "loss, first fifth": first, "loss, last fifth": last}
    out["last/first"] = last / first if len(finite) else math.nan
    out["non-finite from step"] = int(bad.iloc[0]) if len(bad) else ""
    return out


def _draw(ax: Axes, logs: list[tuple[str, FitLog]]) -> None:
    """One panel: a line per distinct curve (two runs sharing a cached stage share a line)."""
    drawn: list[tuple[pd.DataFrame, list[str]]] = []
    for label, log in logs:
        if log.curve is None:
            continue
        same = next((d for d in drawn if d[0].equals(log.curve)), None)
        if same is None:
            drawn.append((log.curve, [label]))
        else:
            same[1].append(label)
    if not drawn:
        reasons = "\n".join(dict.fromkeys(log.origin for _, log in logs))
        ax.text(0.5, 0.5, "\n".join(wrap(reasons, 40)), ha="center", va="center", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    for k, (curve, labels) in enumerate(drawn):
        finite = curve[curve["loss"].map(math.isfinite)]
        style = "-" if k == 0 else "--"  # smallest budget solid, largest dashed
        ax.plot(finite["step"], finite["loss"], style, lw=1.2, label=" = ".join(labels))
    for curve, _ in drawn:
        bad = curve.loc[~curve["loss"].map(math.isfinite), "step"]
        if len(bad):
            top = ax.get_ylim()[1]
            ax.plot(bad, [top] * len(bad), "x", color="red", label="non-finite loss")
    ax.legend(fontsize=6)
    ax.set_xlabel("optimiser step", fontsize=7)
    ax.tick_params(labelsize=6)


def _seeds(row: pd.Series) -> str:
    """The run's seeds, short enough for a legend (its folder name is the whole override set)."""
    s, t = row["subset_seed"], row["train_seed"]
    return f"seed {s}" if s == t else f"subset seed {s}, train seed {t}"


def figure(entries: list[tuple[pd.Series, list[FitLog]]]) -> Figure | None:
    """Arms x fits, ``train/loss`` against step; None when no chosen run has any curve."""
    if not any(log.curve is not None for _, logs in entries for log in logs):
        return None
    arms = list(dict.fromkeys(row["arm"] for row, _ in entries))
    fits = list(dict.fromkeys(log.fit for _, logs in entries for log in logs))
    # stages in training order: pretraining, continued stages (continued_pretrain_2...), target fit
    fits.sort(key=lambda f: (f == "train", f != "pretrain", f))
    fig = Figure(figsize=(3.2 * len(fits), 2.3 * len(arms) + 0.3), layout="constrained")
    axes = fig.subplots(len(arms), len(fits), squeeze=False)
    for r, arm in enumerate(arms):
        for c, fit in enumerate(fits):
            logs = [
                (f"{row['per_class']}/class, {_seeds(row)}", log)
                for row, found in entries
                if row["arm"] == arm
                for log in found
                if log.fit == fit
            ]
            ax = axes[r][c]
            if logs:
                ax.set_title(f"{arm}: {fit}", fontsize=8)
                _draw(ax, logs)
            else:  # this arm has no such fit
                ax.axis("off")
    fig.supylabel(LOSS, fontsize=8)
    return fig


def section(
    runs: pd.DataFrame,
    records: list[RunRecord],
    without: set[str],
    every: tuple[pd.DataFrame, list[RunRecord]],
) -> dict:
    """The report's training-curves section: figure (or None), table, and what was chosen.

    ``without``: regimes that train nothing by gradient (the baselines), which have no curve.
    ``every``: all runs and records of the sweeps (a tuned sweep's unchosen trials too), where a
    cached stage's builder is looked up: it is often a trial that was not chosen.
    """
    chosen = chosen_runs(runs, without)
    builders = _builders(*every)
    entries = []
    for label, row in chosen.iterrows():
        rec = records[runs.index.get_loc(label)]
        entries.append((row, fit_logs(rec, Path(row["run_dir"]), builders)))
    table = pd.DataFrame([summary_row(row, log) for row, logs in entries for log in logs])
    return {"figure": figure(entries), "table": table, "choice": CHOICE, "n_runs": len(entries)}
