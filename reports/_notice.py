"""Per-applicant notices: HTML for the review pages, PDF for the applicant, in bulk.

A notice is two A4 pages: page 1 is about the applicant (decision, reasons,
contributions, what would have changed it, their data), page 2 is the same
for everyone in the run (the logic involved, their rights, the run
reference). The PDF path lays out, draws and writes page 2 once per process
and appends that finished page to each applicant's one-page PDF with pikepdf
(qpdf: about a millisecond, where drawing page 2 again costs WeasyPrint
~20 ms), so only page 1 is laid out and drawn per applicant; when page 1 does
not fit on one page (very long lender details, say), the whole notice is laid
out as one document instead.

Bulk rendering runs in a process pool; each worker loads the run and builds
its font configuration and stylesheets once, and freezes that long-lived
state out of the garbage collector's scans. Each notice reuses the computed
styles and font subsets of the notices made before it in the same process
(`_shared_styles`, `_font_subsets`).
"""

from __future__ import annotations

import gc
import io
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pikepdf
from weasyprint import Document

from pipeline import atomic_write_bytes

from ._notice_view import ReviewedDecision, general_view, letter_view, notice_filename
from ._pdf import RENDER_LOCK, engine, inline_css, render_template
from ._run import RunResult, load_run, parse_applicant_id

NOTICE_CSS = "notice.css"
LETTER_PAGE_CSS = "notice_letter_page.css"
GENERAL_PAGE_CSS = "notice_general_page.css"
NOTICE_UA_CSS = "notice_ua.css"  # the few browser defaults a notice needs (see _pdf.PdfEngine.layout)
CHUNK = 16  # notices per task: about a second of work; small, so that workers finish together

MSG_WORKERS = "workers must be at least 1, got {workers}"

# (run, decision) -> page 2, laid out and written once, opened with pikepdf (per process): a declined
# and an approved applicant read different rights, so each decision has its own page 2.
_GENERAL_PAGES: dict[tuple[str, bool], pikepdf.Pdf] = {}


def notice_html(run: RunResult, applicant_id: object, standalone: bool = True,
                review: ReviewedDecision | None = None) -> str:
    """The whole notice as one HTML page (for the review app); stylesheet inlined when standalone.

    With `review`, the notice as re-issued after that review (the outcome, who reviewed and when).
    """
    letter = letter_view(run, applicant_id, review)
    return render_template("notice.html.j2", n=letter, g=general_view(run, letter["declined"], review),
                           css=inline_css(NOTICE_CSS) if standalone else "")


def _general_pages(run: RunResult, declined: bool = True) -> pikepdf.Pdf:
    key = (f"{run.path.resolve()}::{run.run_id}", declined)
    if key not in _GENERAL_PAGES:
        html = render_template("notice_part.html.j2", part="general", n={}, g=general_view(run, declined), css="",
                               title=f"Your rights - audit run {run.run_id}")
        if any(k[0] != key[0] for k in _GENERAL_PAGES):
            _GENERAL_PAGES.clear()  # another run: its pages will not be asked for again
        document = engine().layout(html, NOTICE_CSS, GENERAL_PAGE_CSS, user_agent=NOTICE_UA_CSS)
        _GENERAL_PAGES[key] = pikepdf.Pdf.open(io.BytesIO(engine().write_notice(document)))
    return _GENERAL_PAGES[key]


def _append_pages(first: bytes, general: pikepdf.Pdf) -> bytes:
    """`first` (one applicant's page 1) followed by the run's finished page 2, bookmarks kept."""
    with pikepdf.Pdf.open(io.BytesIO(first)) as pdf:
        start = len(pdf.pages)
        pdf.pages.extend(general.pages)
        with pdf.open_outline() as outline, general.open_outline() as theirs:
            outline.root.extend(pikepdf.OutlineItem(item.title, start) for item in theirs.root)
        out = io.BytesIO()
        pdf.save(out, compress_streams=True, object_stream_mode=pikepdf.ObjectStreamMode.generate,
                 deterministic_id=True)  # the same notice gives the same bytes (reproducible runs)
        return out.getvalue()


def _letter_html(view: dict) -> str:
    return render_template("notice_part.html.j2", part="letter", n=view, g={}, css="",
                           title=f"Decision on your credit application - reference {view['reference']}")


def letter_html(run: RunResult, applicant_id: object) -> str:
    """Page 1 alone (the applicant's part), as the PDF fast path lays it out."""
    return _letter_html(letter_view(run, applicant_id))


def layout_letter(html: str) -> Document:
    """Lay out page 1's HTML with the notice stylesheets."""
    return engine().layout(html, NOTICE_CSS, LETTER_PAGE_CSS, user_agent=NOTICE_UA_CSS)


def notice_pdf(run: RunResult, applicant_id: object, review: ReviewedDecision | None = None) -> bytes:
    """One applicant's notice as PDF bytes (page 2 reused from this process's cache).

    With `review`, the notice re-issued after it: laid out as one document (its page 2 names
    the review, so the run's cached page 2 does not apply; one notice at a time, so no loss).
    """
    if review is not None:
        with RENDER_LOCK:
            html = notice_html(run, applicant_id, standalone=False, review=review)
            return engine().pdf(html, NOTICE_CSS, user_agent=NOTICE_UA_CSS)
    view = letter_view(run, applicant_id)
    html = _letter_html(view)
    with RENDER_LOCK:
        pdf = engine()
        general = _general_pages(run, view["declined"])
        letter = layout_letter(html)
        if len(letter.pages) == 1 and len(general.pages) == 1:
            return _append_pages(pdf.write_notice(letter), general)
        return pdf.pdf(notice_html(run, applicant_id, standalone=False), NOTICE_CSS, user_agent=NOTICE_UA_CSS)


def render_notice(run: RunResult, applicant_id: object, out_dir: str | Path) -> Path:
    """Write `notice_<sanitised id>.pdf` under out_dir (atomically); returns its path."""
    pdf = notice_pdf(run, applicant_id)  # raises first for an unknown id; nothing is written then
    return atomic_write_bytes(Path(out_dir) / notice_filename(parse_applicant_id(applicant_id)), pdf)


# ---- bulk ---------------------------------------------------------------------------
_WORKER_RUN: RunResult | None = None


def _init_worker(run_dir: str) -> None:
    """Once per worker: load the run, build the PDF engine and page 2, then freeze them for the GC."""
    global _WORKER_RUN
    _WORKER_RUN = load_run(run_dir)
    engine()
    _general_pages(_WORKER_RUN)
    gc.collect()
    gc.freeze()


def resident_kib() -> int:
    """This process's current resident memory (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        return 0


def _render_chunk(ids: list[int], out_dir: str) -> tuple[list[tuple[int, str]], int, int]:
    """Render a chunk in a worker; returns ((id, path) per notice, worker pid, its resident KiB after)."""
    assert _WORKER_RUN is not None
    done = [(i, str(render_notice(_WORKER_RUN, i, out_dir))) for i in ids]
    return done, os.getpid(), resident_kib()


def render_notices(run: RunResult, ids: list[object] | None, out_dir: str | Path, workers: int = 2,
                   progress=None, written=None) -> list[Path]:  # noqa: ANN001 - callbacks below
    """Render many notices (default: every declined applicant) with `workers` processes.

    Workers are started with `spawn` (safe next to Prefect's and uvicorn's
    threads) and each reads the run from `run.path`; results keep the order of
    `ids`. `progress(done, total, worker_pid, resident_kib)`, when given, is
    called after each finished chunk; `written([(id, path), ...])` with the
    notices that chunk wrote (a resumable caller journals them).
    """
    if workers < 1:
        raise ValueError(MSG_WORKERS.format(workers=workers))
    wanted = [run.applicant(i).id for i in (run.declined_ids() if ids is None else ids)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if workers == 1 or len(wanted) <= 1:
        paths = []
        for k, i in enumerate(wanted, 1):
            paths.append(render_notice(run, i, out_dir))
            if written:
                written([(i, paths[-1])])
            if progress:
                progress(k, len(wanted), os.getpid(), resident_kib())
        return paths
    chunk = max(1, min(CHUNK, len(wanted) // (workers * 4) or 1))
    chunks = [wanted[k : k + chunk] for k in range(0, len(wanted), chunk)]
    by_id: dict[int, Path] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(os.fspath(run.path),)) as pool:
        for done, pid, rss in pool.map(_render_chunk, chunks, [os.fspath(out_dir)] * len(chunks)):
            by_id.update((i, Path(p)) for i, p in done)
            if written:
                written([(i, Path(p)) for i, p in done])
            if progress:
                progress(len(by_id), len(wanted), pid, rss)
    return [by_id[i] for i in wanted]
