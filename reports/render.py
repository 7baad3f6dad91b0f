"""HTML (jinja2, one self-contained page) and PDF (matplotlib PdfPages) from built tables.

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


def _text_page(lines: list[str]) -> Figure:
    fig = Figure(figsize=(8.27, 11.69))
    y = 0.95
    for line in lines:
        for part in textwrap.wrap(line, 95) or [""]:
            fig.text(0.06, y, part, fontsize=9, family="monospace", va="top")
            y -= 0.018
    return fig


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
        pages.savefig(_text_page(intro))
        for fig in figures:
            pages.savefig(fig)
        for title, table in tables.items():
            pages.savefig(_table_page(title, table))
        pages.savefig(_text_page(tail))
