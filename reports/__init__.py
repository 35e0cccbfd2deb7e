"""Reports: the global audit PDF of a run and a notice for each applicant.

A report is a rendering of a finished run (docs/outputs.md), never of a model
or a raw data file: `load_run` reads the run directory into a read-only
`RunResult`, and every figure printed traces back to a value in it. The
audit report (one PDF per run) serves the compliance officer; a notice (one
PDF per applicant, two pages) tells an applicant what was decided, why, what
would have changed it, the data used and their rights. The same Jinja2
templates render the HTML of the review pages. Sections a run did not compute
are printed as "not computed in this run", never left out silently.

    run = load_run("runs/20261123T062800Z-3e675d9e")
    render_audit_report(run, run.path / "reports/audit_report.pdf", previous=load_run(older_dir))
    render_notices(run, None, run.path / "reports/notices", workers=2)   # every declined applicant
    render_notice(run, 1234, out_dir)                                    # one applicant, any decision
    notice_html(run, 1234)                                               # the same notice for the review app
    notice_pdf(run, 1234, review=ReviewedDecision(...))                  # the notice re-issued after a review

Safety: Jinja2 autoescapes every value and StrictUndefined rejects a missing
one; WeasyPrint fetches only files under `reports/templates/` (fonts come from
fontconfig by family name, DejaVu), so markup in a data value renders as text
and fetches nothing. Files are written atomically, named from a sanitised id.
"""

from pipeline import lazy_getattr

# Name -> submodule, imported on first use (PEP 562): a notice worker imports
# `reports._notice` only, not the audit report's charts (matplotlib) and the
# explanation constants (torch).
_LAZY = {
    "audit_html": "._audit",
    "render_audit_report": "._audit",
    "notice_html": "._notice",
    "notice_pdf": "._notice",
    "render_notice": "._notice",
    "render_notices": "._notice",
    "notice_filename": "._notice_view",
    "notice_version_filename": "._notice_view",
    "ReviewedDecision": "._notice_view",
    "REVIEWER_ROLE": "._notice_view",
    "notice_context": "._notice_view",
    "pdf_engine_patches": "._weasyprint_patches",
    "REPORT_TABLES": "._run",
    "Applicant": "._run",
    "RunResult": "._run",
    "load_run": "._run",
    "parse_applicant_id": "._run",
}

__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "REPORT_TABLES",
    "REVIEWER_ROLE",
    "ReviewedDecision",
    "Applicant",
    "RunResult",
    "audit_html",
    "load_run",
    "notice_context",
    "notice_filename",
    "notice_html",
    "notice_pdf",
    "notice_version_filename",
    "pdf_engine_patches",
    "parse_applicant_id",
    "render_audit_report",
    "render_notice",
    "render_notices",
]
