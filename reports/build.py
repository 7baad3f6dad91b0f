"""Build a report folder from sweep folders: CSVs, figures (PNG + SVG), index.html, report.pdf.

Files are written into a temporary sibling folder that replaces ``out`` at the end, so a crash
mid-report never leaves a half-written report.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from common.records import RunRecord
from reports import claims, pdf, perclass, plots, render, setup, tables, tracks, training, tuning
from reports.aggregate import CI_METHOD, summarize, with_costs
from reports.bits import figure as bits_per_byte_figure
from reports.collect import collect, find_records
from reports.compare import IQM_METHOD, PAIRED_METHOD, POI_METHOD, paired_differences
from reports.crossed import VARIANCE_METHOD
from reports.efficiency import AULC_METHOD, TRANSFER_METHOD, data_efficiency, efficiency_table
from reports.family import with_keys
from reports.findings import findings
from reports.floor import baseline_regimes, best_by_aulc, floor_curve
from reports.frontier import section as frontier_section
from reports.inference import BOOT_METHOD, HOLM_METHOD
from reports.inference import PAIRED_METHOD as CLAIM_METHOD
from reports.streams import bits_table
from reports.streams import section as stream_section
from reports.variance import variance_table

TRANSFER_COLUMNS = ["variant", "metric", "definition", "value", "ci_low", "ci_high", "n_seeds"]
OPTIONAL_FIGURES = (
    "forgetting",
    "accuracy_vs_compute",
    "accuracy_matrix",
    "forgetting_vs_replay",
    "forgetting_tradeoff",
    "training_curves",
    "frontier",
    "forgetting_over_training",
    "bits_per_byte",
)
METHODS = {
    "claim": CLAIM_METHOD,
    "holm": HOLM_METHOD,
    "boot": BOOT_METHOD,
    "variance": VARIANCE_METHOD,
    "paired": PAIRED_METHOD,
    "poi": POI_METHOD,
    "iqm": IQM_METHOD,
    "aulc": AULC_METHOD,
    "transfer": TRANSFER_METHOD,
}


def _save_samples(out: Path, setups: list[dict]) -> None:
    """The sample strips of the setup headers, also as files next to the other figures."""
    for i, head in enumerate(setups):
        for strip in head["samples"]:
            png = base64.b64decode(strip["uri"].split(",", 1)[1])
            (out / "figures" / f"samples_{i}_{strip['role']}.png").write_bytes(png)


def _save(fig: plt.Figure, out: Path, name: str) -> Path:
    fig.savefig(out / "figures" / f"{name}.png", dpi=130, bbox_inches="tight")
    fig.savefig(out / "figures" / f"{name}.svg", bbox_inches="tight")
    return out / "figures" / f"{name}.png"


def _figures(summary: pd.DataFrame, streams: dict, floor: pd.DataFrame) -> dict[str, plt.Figure]:
    eff = plots.data_efficiency(summary, floor=floor).figure
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


def _numbers(runs: pd.DataFrame) -> dict:
    """Summary (with paired differences), efficiency, streams and transfer tables."""
    summary = summarize(runs)
    paired = paired_differences(runs)
    if not paired.empty:
        summary = summary.merge(paired, on=["arm", "per_class"], how="left")
    streams = stream_section(runs)
    transfer = pd.concat(
        [
            streams.get("transfer", pd.DataFrame(columns=TRANSFER_COLUMNS)),
            tables.source_forgetting_rows(summary),
        ]
    )
    return {"summary": summary, "eff": data_efficiency(runs), "streams": streams} | {
        "transfer": transfer
    }


def _per_class(
    runs: pd.DataFrame, records: list[RunRecord], budgets: list[str] | None
) -> list[dict]:
    """Per chosen budget: the per-class accuracy table and the confusion figure, if recorded."""
    out = []
    for budget in perclass.chosen_budgets(runs, budgets):
        table = perclass.per_class_table(runs, records, budget)
        if not table.empty:
            fig = perclass.confusion_figure(runs, records, budget)
            out.append({"budget": budget, "table": table, "figure": fig})
    return out


def _write(out: Path, dirs: list[Path], collected: tuple, budgets: list[str] | None) -> None:
    runs, records, unreadable = collected
    # runs.csv: every column findings.csv and summary.csv are made from (tuned: every trial, and
    # its `selected` rows are the ones they are made from)
    tuned = tuning.choose(with_keys(with_costs(runs)), records)
    runs, picked = tuned.runs, tuned.records  # the chosen trials and their records
    numbers = _numbers(runs)
    summary, eff, streams = numbers["summary"], numbers["eff"], numbers["streams"]
    tuned.trials.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    rows, sentences = findings(
        runs, records, streams.get("per_run", pd.DataFrame()), streams.get("knobs")
    )
    rows.to_csv(out / "findings.csv", index=False)
    eff.to_csv(out / "data_efficiency.csv", index=False)
    streams["matrix"].to_csv(out / "accuracy_matrix.csv", index=False)
    if "bits" in streams:  # a language model's stream
        streams["bits"].to_csv(out / "bits_matrix.csv", index=False)
    numbers["transfer"][TRANSFER_COLUMNS].to_csv(out / "transfer_metrics.csv", index=False)
    (out / "figures").mkdir()
    per_class = _per_class(runs, picked, budgets)
    baselines = baseline_regimes(records)
    selection = tuning.section(tuned, out)  # the oracle beside the chosen, tuning curves
    figures = _figures(summary, streams, floor_curve(summary, baselines)) | {
        f"confusion_{p['budget']}": p["figure"] for p in per_class if p["figure"] is not None
    }
    figures |= selection["figures"]
    front = frontier_section(runs, summary, records, out)  # frontier.csv, its figure and tables
    figures |= {} if front["figure"] is None else {"frontier": front["figure"]}
    if (bits_figure := bits_per_byte_figure(runs)) is not None:
        figures["bits_per_byte"] = bits_figure
    if (tracked := tracks.figure(runs)) is not None:
        figures["forgetting_over_training"] = tracked
    # the median runs' loss curves; a stage's builder may be any trial
    curves = training.section(runs, picked, baselines, (tuned.trials, records))
    if (curve_figure := curves.pop("figure")) is not None:
        figures["training_curves"] = curve_figure
    table = curves.pop("table")
    curves["html"] = table.to_html(
        index=False, escape=True, na_rep="-", float_format="{:.4g}".format
    )
    images = {name: render.png_data_uri(_save(fig, out, name)) for name, fig in figures.items()}
    for name in OPTIONAL_FIGURES:
        images.setdefault(name, "")
    for p in per_class:
        p["image"] = images.get(f"confusion_{p['budget']}", "")
        p["html"] = p["table"].to_html(escape=True)
    context = _context(runs, records, unreadable, dirs, numbers) | {
        "images": images,
        "findings": sentences,
        "headline": claims.headline(rows).to_html(escape=True) if len(rows) else "",
        "floor": best_by_aulc(eff, summary, baselines),
        "claims_table": claims.claims_table(rows),
        "variance_table": variance_table(runs).to_html(
            index=False, escape=True, na_rep="-", float_format="{:.3f}".format
        ),
        "per_class": per_class,
        "training": curves,
        "tuning": selection["context"],
        "frontier": front["context"],
    }
    _save_samples(out, context["setups"])

    def fallback(path: Path, renderer: str) -> None:
        intro, pages, tail = render.fallback_pages(
            context | {"pdf_renderer": renderer}, numbers, per_class
        )
        render.pdf(path, intro, list(figures.values()), pages, tail)

    what = pdf.write_pdf(
        out / "report.pdf",
        lambda renderer: render.html(context | {"pdf_renderer": renderer}),
        fallback,
    )
    (out / "index.html").write_text(render.html(context | {"pdf_renderer": what}))
    sources = {
        "dirs": [str(d) for d in dirs],
        "records": records_fingerprint(dirs),
        "unreadable": [list(u) for u in unreadable],
    }
    (out / "sources.json").write_text(json.dumps(sources))
    plt.close("all")


def _context(
    runs: pd.DataFrame,
    records: list[RunRecord],
    unreadable: list,
    dirs: list[Path],
    numbers: dict,
) -> dict:
    """Everything the template shows besides images, findings and per-class results."""
    summary, eff, transfer = numbers["summary"], numbers["eff"], numbers["transfer"]
    failed = runs[runs["status"] != "ok"]
    varied, fixed = tables.config_split(records)
    paired = tables.paired_table(summary)
    questions = sorted({r.config["question"] for r in records})
    return {
        "title": records[0].config["name"],
        "question": " / ".join(questions),
        "setups": setup.headers(records),
        "n_runs": len(runs),
        "n_ok": int((runs["status"] == "ok").sum()),
        "n_failed": len(failed),
        "n_groups": runs["group"].nunique(),
        "sources": [str(d) for d in dirs],
        "generated": dt.datetime.now().isoformat(timespec="seconds"),
        "ci_method": CI_METHOD,
        "methods": METHODS,
        "efficiency_table": efficiency_table(eff).to_html(escape=True, na_rep="-"),
        "paired_table": "" if paired is None else paired.to_html(escape=True),
        "transfer_table": (
            transfer.round(4).to_html(index=False, escape=True, na_rep="-") if len(transfer) else ""
        ),
        "bits_table": (
            bits_table(numbers["streams"]["bits"]).to_html(escape=True)
            if "bits" in numbers["streams"]
            else ""
        ),
        "acc_table": tables.accuracy_table(summary).to_html(escape=True),
        "summary_table": summary.round(4).to_html(index=False, escape=True, na_rep="-"),
        "main_metrics_table": tables.main_metrics(summary).to_html(index=False, escape=True),
        "failed": [{"run": r.run_dir, "error": r.error} for r in failed.itertuples()],
        "unreadable": unreadable,
        "varied": varied,
        "fixed": fixed,
        "environment": tables.environment(records),
    }


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


def build_report(
    dirs: list[Path],
    out: Path,
    confusion_budgets: list[str] | None = None,
) -> Path:
    """Build the report for ``dirs`` into ``out``; returns the path of ``index.html``.

    ``confusion_budgets``: the budgets of the per-class results (default: the smallest and the
    largest).
    """
    out, dirs = Path(out), [Path(d) for d in dirs]
    collected = collect(dirs)  # bad input fails here, before any folder is created
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write(tmp, dirs, collected, confusion_budgets)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out / "index.html"
