"""``report.pdf``: the HTML report printed to PDF, by the best renderer this machine has.

The PDF is the same document as ``index.html`` (same template, print CSS for A4), so a reader
who is handed the PDF sees the setup, findings, tables and figures typeset. In order:
Chromium's headless ``--print-to-pdf`` (what CI installs), WeasyPrint when importable, else a
pure-Python fallback (matplotlib pages: text, typeset tables, figures). ``REGIMEBENCH_PDF``
(``chromium``, ``weasyprint`` or ``matplotlib``) forces one. The report names the renderer.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("regimebench")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
HEADLESS = [  # every headless run (tests/test_browser.py uses them too)
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FLAGS = [*HEADLESS, "--no-pdf-header-footer"]
TIMEOUT_S = 120


class PdfError(RuntimeError):
    """A renderer was found but did not produce a PDF."""


def browser() -> str | None:
    """The first Chromium-like binary on PATH, or None."""
    return next((found for b in BROWSERS if (found := shutil.which(b))), None)


def renderers() -> list[str]:
    """The renderers to try, best first; ``REGIMEBENCH_PDF`` narrows to one."""
    found = []
    if browser() is not None:
        found.append("chromium")
    if importlib.util.find_spec("weasyprint") is not None:
        found.append("weasyprint")
    found.append("matplotlib")
    forced = os.environ.get("REGIMEBENCH_PDF")
    return [forced] if forced in ("chromium", "weasyprint", "matplotlib") else found


def describe(renderer: str) -> str:
    """The renderer as the report names it."""
    if renderer == "chromium":
        return f"headless Chromium's print-to-PDF ({Path(browser() or 'chromium').name})"
    if renderer == "weasyprint":
        return "WeasyPrint"
    return "matplotlib (pure-Python fallback: text, tables and figures, no HTML layout)"


def chromium_pdf(page: Path, out: Path) -> None:
    """Print ``page`` (an HTML file) to ``out`` with headless Chromium.

    Raises:
        PdfError: when the browser exits without writing a PDF.
    """
    binary = browser()
    if binary is None:
        raise PdfError("no chromium binary on PATH")
    with tempfile.TemporaryDirectory(prefix="regimebench-chromium-") as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={out}"]
        proc = subprocess.run(
            [*cmd, page.resolve().as_uri()], capture_output=True, text=True, timeout=TIMEOUT_S
        )
    if not out.exists() or not out.read_bytes().startswith(b"%PDF"):
        raise PdfError(f"chromium wrote no PDF (exit {proc.returncode}): {proc.stderr[-300:]}")


def weasyprint_pdf(page: Path, out: Path) -> None:
    """Print ``page`` to ``out`` with WeasyPrint."""
    import weasyprint  # optional dependency, found by renderers()

    weasyprint.HTML(filename=str(page)).write_pdf(str(out))


def write_pdf(
    out: Path, page_html: Callable[[str], str], fallback: Callable[[Path, str], None]
) -> str:
    """Write ``out`` with the first renderer that works; returns its description.

    ``page_html(description)`` is the report page naming its renderer; ``fallback(out,
    description)`` writes the matplotlib PDF. A failing renderer is logged and the next tried.
    """
    for renderer in renderers():
        what = describe(renderer)
        try:
            if renderer == "matplotlib":
                fallback(out, what)
                return what
            page = out.with_name(f".{out.stem}.print.html")
            page.write_text(page_html(what))
            try:
                (chromium_pdf if renderer == "chromium" else weasyprint_pdf)(page, out)
            finally:
                page.unlink(missing_ok=True)
            return what
        except (PdfError, OSError, subprocess.TimeoutExpired, ImportError) as err:
            log.warning("report.pdf: %s failed (%s); trying the next renderer", renderer, err)
    raise PdfError("no renderer produced report.pdf")
