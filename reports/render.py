"""HTML (jinja2, one self-contained page) and the fallback PDF (matplotlib PdfPages).

``reports.pdf`` prints the HTML page to PDF where a browser or WeasyPrint is available; the
matplotlib pages here are the pure-Python fallback.

Everything that comes from configs or records goes through jinja2's autoescaping, so a run or
class name containing markup shows as text.
"""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from reports import tables
from reports.aggregate import CI_METHOD
from reports.efficiency import efficiency_table

TEMPLATES = Path(__file__).parent / "templates"


def png_data_uri(path: Path) -> str:
    """Embed a PNG in the page, so the report needs no network and no side files."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def html(context: dict[str, Any]) -> str:
    """Render ``templates/report.html.j2`` with autoescaping on."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("report.html.j2").render(**context)


def setup_lines(head: dict[str, Any]) -> list[str]:
    """A setup header (``reports.setup.header``) as lines of text for the fallback PDF."""
    lines = [f"Setup{' of ' + head['group'] if head['group'] else ''} ({head['n_runs']} runs)"]
    lines += [f"  ! {w}" for w in head["warnings"]]
    lines += [f"  Budgets: {head['budgets']}", f"  Model: {head['model']}"]
    lines += [f"  Pretraining: {p}" for p in head["pretraining"]]
    lines += [f"  Seeds: {head['seeds']}"] + [f"  Overlap: {n}" for n in head["overlap"]]
    return [*lines, ""]


def domains_frame(head: dict[str, Any]) -> pd.DataFrame:
    """The domains of a setup header as a table (one row per domain)."""
    return pd.DataFrame(head["domains"]).set_index("role")


def _text_pages(lines: list[str]) -> list[Figure]:
    """A4 pages of wrapped monospace lines, as many as the lines need."""
    wrapped = [part for line in lines for part in (textwrap.wrap(line, 95) or [""])]
    per_page = 50
    pages = []
    for start in range(0, max(len(wrapped), 1), per_page):
        fig = Figure(figsize=(8.27, 11.69))
        for k, part in enumerate(wrapped[start : start + per_page]):
            fig.text(0.06, 0.95 - 0.018 * k, part, fontsize=9, family="monospace", va="top")
        pages.append(fig)
    return pages


def _table_page(title: str, table: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(11.69, 8.27))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title, fontsize=11)
    cells = table.reset_index()
    # "mean [lo, hi] n=k" on two lines, so seven budgets fit across an A4 landscape page
    text = cells.map(lambda v: str(v).replace(" [", "\n[", 1)).to_numpy()
    tab = ax.table(cellText=text, colLabels=list(cells.columns), loc="upper center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.auto_set_column_width(list(range(len(cells.columns))))
    tab.scale(1, 2.6)
    return fig


def pdf(
    path: Path,
    intro: list[str],
    figures: list[Figure],
    tables: dict[str, pd.DataFrame],
    tail: list[str],
) -> None:
    """Write the PDF: introduction, figures, tables, then failures/config/environment text."""
    with PdfPages(path) as pages:
        for page in _text_pages(intro):
            pages.savefig(page)
        for fig in figures:
            pages.savefig(fig)
        for title, table in tables.items():
            pages.savefig(_table_page(title, table))
        for page in _text_pages(tail):
            pages.savefig(page)


def fallback_pages(context: dict, numbers: dict, per_class: list[dict]) -> tuple:
    """(intro lines, tables, tail lines) of the matplotlib PDF, from the page's context."""
    intro = [f"regimebench report: {context['title']}", f"PDF: {context['pdf_renderer']}", ""]
    intro += [f"Question: {context['question']}", ""]
    for head in context["setups"]:
        intro += setup_lines(head)
    intro += [
        "",
        f"{context['n_runs']} runs, {context['n_failed']} failed. Intervals: {CI_METHOD}.",
    ]
    if context["tuning"]:  # a tuned sweep: every number is of the chosen trials
        tuned = context["tuning"]
        intro += ["", f"Model selection: {'; '.join(tuned['protocols'])}; {tuned['rule']}."]
        intro += [f"Trials per arm: {tuned['trials']}.", f"Tuning curves: {tuned['curve_method']}."]
    intro += ["", "Findings:", *[f"- {line}" for line in context["findings"]]]
    pages = {
        "Target test accuracy: mean [95% CI] n=runs": tables.accuracy_table(numbers["summary"])
    }
    pages |= context["tuning"]["pages"] if context["tuning"] else {}
    pages |= context["frontier"]["pages"] if context["frontier"] else {}
    for i, head in enumerate(context["setups"]):
        pages[f"Domains {head['group'] or ''}".strip() + f" ({i + 1})"] = domains_frame(head)
    if not numbers["eff"].empty:
        pages["Data efficiency (AULC, IQM, effective data transferred)"] = efficiency_table(
            numbers["eff"]
        )
    pages |= {f"Per-class test accuracy at {p['budget']} per class": p["table"] for p in per_class}
    failures = [f"  {f['run']}: {f['error']}" for f in context["failed"]]
    tail = ["Failed runs:"] + (failures or ["  none"])
    tail += ["", "Varied configuration:"] + [f"  {k} = {v}" for k, v in context["varied"]]
    tail += ["", "Environment:"] + [f"  {k}: {v}" for k, v in context["environment"]]
    return intro, pages, tail
