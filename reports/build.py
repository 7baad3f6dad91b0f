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

from reports import plots, render
from reports.aggregate import CI_METHOD, summarize, with_costs
from reports.collect import budget_order, collect, find_records


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
    table = s.pivot(index="regime", columns="per_class", values="cell")
    cols = sorted(table.columns, key=lambda c: budget_order(pd.Series([c])).iloc[0])
    order = [r for r in plots.ORDER if r in table.index] + [
        r for r in table.index if r not in plots.ORDER
    ]
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


def _write(out: Path, dirs: list[Path], collected: tuple) -> None:
    runs, records, unreadable = collected
    runs = with_costs(runs)
    summary = summarize(runs)
    runs.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "figures").mkdir()
    eff = plots.data_efficiency(summary).figure
    eff.tight_layout()
    figures = {"data_efficiency": eff}
    if summary["source/acc_before_mean"].notna().any():
        figures["forgetting"] = plots.forgetting(summary)
    if (summary["cost/target_s_mean"] > 0).any():  # records from before compute accounting
        figures["accuracy_vs_compute"] = plots.accuracy_vs_compute(summary)
    images = {name: render.png_data_uri(_save(fig, out, name)) for name, fig in figures.items()}
    images.setdefault("forgetting", "")
    images.setdefault("accuracy_vs_compute", "")
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
    ]
    failures = [f"  {f['run']}: {f['error']}" for f in context["failed"]]
    tail = ["Failed runs:"] + (failures or ["  none"])
    tail += ["", "Varied configuration:"] + [f"  {k} = {v}" for k, v in varied]
    tail += ["", "Environment:"] + [f"  {k}: {v}" for k, v in context["environment"]]
    render.pdf(
        out / "report.pdf",
        intro,
        list(figures.values()),
        {"Target test accuracy: mean [95% CI] n=seeds": acc},
        tail,
    )
    sources = {
        "dirs": [str(d) for d in dirs],
        "records": records_fingerprint(dirs),
        "unreadable": [list(u) for u in unreadable],
    }
    (out / "sources.json").write_text(json.dumps(sources))
    plt.close("all")


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


def build_report(dirs: list[Path], out: Path) -> Path:
    """Build the report for ``dirs`` into ``out``; returns the path of ``index.html``."""
    out, dirs = Path(out), [Path(d) for d in dirs]
    collected = collect(dirs)  # bad input fails here, before any folder is created
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write(tmp, dirs, collected)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out / "index.html"
