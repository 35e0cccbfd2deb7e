"""The global audit report of a run: one PDF (and the same page as HTML).

The PDF is tagged (PDF/UA-1, WeasyPrint's `pdf_variant="pdf/ua-1"`): a
structure tree of headings, paragraphs, lists and tables with their header
cells, the document's title and language, and each chart as a figure whose
alternative text is its SVG <title> (the view writes one for every chart), so
a screen reader can read the report.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import atomic_write_bytes

from . import _charts as C
from ._audit_view import audit_view
from ._pdf import RENDER_LOCK, engine, inline_css, render_template
from ._run import RunResult

AUDIT_CSS = "audit.css"
PDF_VARIANT = "pdf/ua-1"


def audit_html(run: RunResult, previous: RunResult | None = None, standalone: bool = True) -> str:
    """The audit report as one HTML page; the stylesheet is inlined when standalone."""
    C.reset_svg_ids()
    return render_template("audit.html.j2", r=audit_view(run, previous), css=inline_css(AUDIT_CSS) if standalone else "")


def render_audit_report(run: RunResult, out_pdf: str | Path, previous: RunResult | None = None) -> Path:
    """Write the audit report PDF atomically; `previous` adds "changes since the previous run"."""
    html = audit_html(run, previous, standalone=False)
    with RENDER_LOCK:
        pdf = engine().pdf(html, AUDIT_CSS, pdf_variant=PDF_VARIANT)
    return atomic_write_bytes(Path(out_pdf), pdf)
