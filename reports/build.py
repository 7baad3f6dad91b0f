"""Build a report folder from sweep folders: CSVs, figures (PNG + SVG), index.html, report.pdf.

Files are written into a temporary sibling folder that replaces ``out`` at the end, so a crash
mid-report never leaves a half-written report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from benchmarks.records import DEFINITIONS
from reports import claims, plots, render
from reports.aggregate import CI_METHOD, RESAMPLES, summarize, with_costs
from reports.collect import budget_order, collect, find_records
from reports.compare import IQM_METHOD, PAIRED_METHOD, POI_METHOD, paired_differences
from reports.efficiency import AULC_METHOD, TRANSFER_METHOD, data_efficiency, efficiency_table
from reports.family import seed_columns, with_keys
from reports.findings import findings
from reports.inference import BOOT_METHOD, HOLM_METHOD, VARIANCE_METHOD
from reports.inference import PAIRED_METHOD as CLAIM_METHOD
from reports.streams import (
    accuracy_matrix,
    per_run_metrics,
    stream_runs,
    transfer_metrics,
    variant_summary,
)
from reports.variance import variance_table

MATRIX_COLUMNS = [
    "variant",
    "stage",
    "stage_domain",
    "domain",
    "mean",
    "ci_low",
    "ci_high",
    "n_seeds",
]
TRANSFER_COLUMNS = ["variant", "metric", "definition", "value", "ci_low", "ci_high", "n_seeds"]


def _cell(mean: float, lo: float, hi: float, n: int) -> str:
    if pd.isna(mean):
        return "-"
    ci = "" if pd.isna(lo) else f" [{lo:.3f}, {hi:.3f}]"
    return f"{mean:.3f}{ci} n={n}"


def accuracy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Regimes x budgets, each cell "mean [ci_low, ci_high] n=seeds" of target accuracy."""
    s = summary.assign(
        cell=[
            _cell(r["test/acc_mean"], r["test/acc_ci_low"], r["test/acc_ci_high"], r["n_seeds"])
            for _, r in summary.iterrows()
        ]
    )
    table = s.pivot(index="arm", columns="per_class", values="cell")
    cols = sorted(table.columns, key=lambda c: budget_order(pd.Series([c])).iloc[0])
    regime = s.groupby("arm")["regime"].first()
    rank = {r: i for i, r in enumerate(plots.ORDER)}
    order = sorted(table.index, key=lambda a: (rank.get(regime[a], len(rank)), a))
    return table.loc[order, cols].fillna("-")


def _flatten(record: dict) -> dict:
    return pd.json_normalize(record["config"], sep=".").iloc[0].to_dict()


def config_split(records: list[dict]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Config keys whose value differs between runs (with the values) and those that don't."""
    flat = pd.DataFrame([_flatten(r) for r in records], dtype=object)
    flat = flat.map(lambda v: "(not set)" if v is None or v != v else str(v))  # v != v: NaN
    varied, fixed = [], []
    for key in sorted(flat.columns):
        values = sorted(flat[key].unique(), key=lambda v: (len(v), v))
        (varied if len(values) > 1 else fixed).append((key, ", ".join(values)))
    return varied, fixed


def _environment(records: list[dict]) -> list[tuple[str, str]]:
    envs = pd.DataFrame([r["environment"] for r in records]).map(str)
    return [(k, ", ".join(sorted(envs[k].unique()))) for k in envs.columns]


def _save(fig: plt.Figure, out: Path, name: str) -> Path:
    fig.savefig(out / "figures" / f"{name}.png", dpi=130, bbox_inches="tight")
    fig.savefig(out / "figures" / f"{name}.svg", bbox_inches="tight")
    return out / "figures" / f"{name}.png"


def source_forgetting_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """Two-stage regimes' source forgetting, in transfer_metrics.csv's columns.

    Probe-refit always; head-retained where the source stage was supervised and left a head.
    """
    tables = []
    for metric, name in (
        ("source/forgetting", "source_forgetting_probe_refit"),
        ("source/head_forgetting", "source_forgetting_head_retained"),
    ):
        cells = summary[summary[f"{metric}_mean"].notna()]
        tables.append(
            pd.DataFrame(
                {
                    "variant": cells["arm"] + " @ per_class=" + cells["per_class"].astype(str),
                    "metric": name,
                    "definition": DEFINITIONS[metric],
                    "value": cells[f"{metric}_mean"],
                    "ci_low": cells[f"{metric}_ci_low"],
                    "ci_high": cells[f"{metric}_ci_high"],
                    "n_seeds": cells["n_seeds"],
                }
            )
        )
    return pd.concat(tables)


def _streams(runs: pd.DataFrame, reps: int) -> dict:
    """Accuracy matrix, transfer metrics and per-variant summary of the stream runs, if any."""
    found = stream_runs(runs)
    if found.empty:
        return {"runs": found, "matrix": pd.DataFrame(columns=MATRIX_COLUMNS)}
    domains = found["stream_domains"].iloc[0].split(",")
    return {
        "runs": found,
        "matrix": accuracy_matrix(found, domains, reps),
        "transfer": transfer_metrics(found, reps),
        "per_run": per_run_metrics(found),
        "per_variant": variant_summary(found, reps),
        "knobs": found.groupby("variant")[["replay", "schedule"]].first(),
    }


def _figures(summary: pd.DataFrame, streams: dict) -> dict[str, plt.Figure]:
    eff = plots.data_efficiency(summary).figure
    eff.tight_layout()
    figures = {"data_efficiency": eff}
    if summary["source/acc_before_mean"].notna().any():
        figures["forgetting"] = plots.forgetting(summary)
    if (summary["cost/target_s_mean"] > 0).any():  # records from before compute accounting
        figures["accuracy_vs_compute"] = plots.accuracy_vs_compute(summary)
    if "per_variant" in streams:
        figures["accuracy_matrix"] = plots.accuracy_matrices(streams["matrix"])
        figures["forgetting_vs_replay"] = plots.forgetting_vs_replay(streams["per_variant"])
        figures["forgetting_tradeoff"] = plots.forgetting_tradeoff(streams["per_variant"])
    return figures


def _write(out: Path, dirs: list[Path], collected: tuple, reps: int) -> None:
    runs, records, unreadable = collected
    # runs.csv: every column findings.csv and summary.csv are made from
    runs = with_keys(seed_columns(with_costs(runs), records))
    summary = summarize(runs, reps)
    paired = paired_differences(runs, reps=reps)
    if not paired.empty:
        summary = summary.merge(paired, on=["arm", "per_class"], how="left")
    eff = data_efficiency(runs, reps)
    streams = _streams(runs, reps)
    transfer = pd.concat(
        [
            streams.get("transfer", pd.DataFrame(columns=TRANSFER_COLUMNS)),
            source_forgetting_rows(summary),
        ]
    )
    runs.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    rows, sentences = findings(
        runs, records, streams.get("per_run", pd.DataFrame()), streams.get("knobs")
    )
    rows.to_csv(out / "findings.csv", index=False)
    spread = variance_table(runs)
    eff.to_csv(out / "data_efficiency.csv", index=False)
    streams["matrix"].to_csv(out / "accuracy_matrix.csv", index=False)
    transfer[TRANSFER_COLUMNS].to_csv(out / "transfer_metrics.csv", index=False)
    (out / "figures").mkdir()
    figures = _figures(summary, streams)
    images = {name: render.png_data_uri(_save(fig, out, name)) for name, fig in figures.items()}
    for name in ("forgetting", "accuracy_vs_compute", "accuracy_matrix", "forgetting_vs_replay"):
        images.setdefault(name, "")
    images.setdefault("forgetting_tradeoff", "")
    failed = runs[runs["status"] != "ok"]
    varied, fixed = config_split(records)
    acc = accuracy_table(summary)
    name = records[0]["config"]["name"]
    questions = sorted({r["config"]["question"] for r in records})
    context = {
        "title": name,
        "question": " / ".join(questions),
        "n_runs": len(runs),
        "n_ok": int((runs["status"] == "ok").sum()),
        "n_failed": len(failed),
        "sources": [str(d) for d in dirs],
        "generated": dt.datetime.now().isoformat(timespec="seconds"),
        "images": images,
        "ci_method": CI_METHOD,
        "findings": sentences,
        "headline": claims.headline(rows).to_html(escape=True) if len(rows) else "",  # see PDF
        "claims_table": claims.claims_table(rows),
        "variance_table": spread.to_html(
            index=False, escape=True, na_rep="-", float_format="{:.3f}".format
        ),
        "methods": {
            "claim": CLAIM_METHOD,
            "holm": HOLM_METHOD,
            "boot": BOOT_METHOD,
            "variance": VARIANCE_METHOD,
            "paired": PAIRED_METHOD,
            "poi": POI_METHOD,
            "iqm": IQM_METHOD,
            "aulc": AULC_METHOD,
            "transfer": TRANSFER_METHOD,
        },
        "efficiency_table": efficiency_table(eff).to_html(escape=True, na_rep="-"),
        "paired_table": _paired_table(summary),
        "transfer_table": (
            transfer.round(4).to_html(index=False, escape=True, na_rep="-") if len(transfer) else ""
        ),
        "acc_table": acc.to_html(escape=True),
        "summary_table": summary.round(4).to_html(index=False, escape=True, na_rep="-"),
        "failed": [{"run": r.run_dir, "error": r.error} for r in failed.itertuples()],
        "unreadable": unreadable,
        "varied": varied,
        "fixed": fixed,
        "environment": _environment(records),
    }
    (out / "index.html").write_text(render.html(context))
    intro = [
        f"regimebench report: {name}",
        "",
        f"Question: {context['question']}",
        "",
        f"{len(runs)} runs, {len(failed)} failed. Intervals: {CI_METHOD}.",
        f"Claims: {CLAIM_METHOD}. {HOLM_METHOD}.",
        "",
        "Findings:",
        *[f"- {line}" for line in sentences],
    ]
    failures = [f"  {f['run']}: {f['error']}" for f in context["failed"]]
    tail = ["Failed runs:"] + (failures or ["  none"])
    tail += ["", "Varied configuration:"] + [f"  {k} = {v}" for k, v in varied]
    tail += ["", "Environment:"] + [f"  {k}: {v}" for k, v in context["environment"]]
    top = claims.headline(rows)
    headline = {"Primary endpoint: paired AULC difference [95% t CI]": top} if len(top) else {}
    render.pdf(
        out / "report.pdf",
        intro,
        list(figures.values()),
        headline
        | {"Target test accuracy: mean [95% t CI] n=seeds": acc}
        | (
            {"Data efficiency (AULC, IQM, effective data transferred)": efficiency_table(eff)}
            if not eff.empty
            else {}
        ),
        tail,
    )
    sources = {
        "dirs": [str(d) for d in dirs],
        "records": records_fingerprint(dirs),
        "unreadable": [list(u) for u in unreadable],
    }
    (out / "sources.json").write_text(json.dumps(sources))
    plt.close("all")


def _paired_table(summary: pd.DataFrame) -> str:
    """Regimes x budgets: paired difference to scratch [CI] and P(improvement)."""
    if "diff_vs_scratch_mean" not in summary:
        return ""
    cells = summary[summary["diff_vs_scratch_mean"].notna()]
    text = [
        f"{r['diff_vs_scratch_mean']:+.3f} [{r['diff_vs_scratch_ci_low']:+.3f}, "
        f"{r['diff_vs_scratch_ci_high']:+.3f}] n={r['n_pairs']:.0f} "
        f"P={r['p_improvement_vs_scratch']:.2f}"
        if pd.notna(r["diff_vs_scratch_ci_low"])
        else f"{r['diff_vs_scratch_mean']:+.3f} (one seed) P={r['p_improvement_vs_scratch']:.2f}"
        for _, r in cells.iterrows()
    ]
    table = cells.assign(cell=text).pivot(index="arm", columns="per_class", values="cell")
    cols = sorted(table.columns, key=lambda c: budget_order(pd.Series([c])).iloc[0])
    return table[cols].fillna("-").to_html(escape=True)


def records_fingerprint(dirs: list[Path]) -> str:
    """Identity of the records under ``dirs``: paths, sizes and modification times."""
    digest = hashlib.sha256()
    for path in find_records([Path(d) for d in dirs]):
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def is_up_to_date(dirs: list[Path], out: Path) -> bool:
    """True when ``out`` was built from exactly the records now under ``dirs``."""
    try:
        sources = json.loads((Path(out) / "sources.json").read_text())
    except (OSError, ValueError):
        return False
    return (Path(out) / "index.html").exists() and sources.get("records") == records_fingerprint(
        dirs
    )


def unreadable_records(out: Path) -> list[tuple[str, str]]:
    """The records a built report had to leave out, with why: ``[(path, reason)]``."""
    sources = json.loads((Path(out) / "sources.json").read_text())
    return [(path, why) for path, why in sources.get("unreadable", [])]


def build_report(dirs: list[Path], out: Path, resamples: int = RESAMPLES) -> Path:
    """Build the report for ``dirs`` into ``out``; returns the path of ``index.html``.

    ``resamples``: kept for callers; intervals are Student-t (``reports.inference``) and the
    bootstraps use their own fixed, seeded resample counts.
    """
    out, dirs = Path(out), [Path(d) for d in dirs]
    collected = collect(dirs)  # bad input fails here, before any folder is created
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write(tmp, dirs, collected, resamples)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out / "index.html"
