"""Notice rendering benchmark: naive WeasyPrint use vs the reports package, one run.

Renders the notices of a finished run's declined applicants (the full set by
default, ~3,400 on the real data) and prints notices/s, total seconds and the
resident memory of each worker over time (it must stay flat). For comparison,
in the same run and on the same applicants:

- naive: one process, a new FontConfiguration and a freshly parsed stylesheet
  per notice, the whole two-page notice laid out every time (how WeasyPrint is
  usually called);
- package, 1 process: shared font configuration and parsed stylesheets, page 2
  laid out and written once per run and appended to each applicant's page 1
  with pikepdf, a notice-sized user-agent stylesheet, GC-frozen state,
  computed styles and font subsets reused from one notice to the next;
- package, N processes: `reports.render_notices(..., workers=N)`.

A cProfile of the naive render shows where its time goes (layout, styling,
drawing, font subsetting, PDF writing).

    .venv/bin/python bench/reports.py --run RUN_DIR [--workers 2] [--limit N] [--baseline 30] [--out DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import reports  # noqa: E402
from reports import _notice as N  # noqa: E402
from reports._pdf import BASE_URL, stylesheet_text  # noqa: E402

PROFILE_BUCKETS = {
    "font subsetting (pdf/fonts.py)": "weasyprint/pdf/fonts.py",
    "layout": "weasyprint/layout/",
    "styles (css cascade)": "weasyprint/css/",
    "drawing (draw/)": "weasyprint/draw/",
    "html parsing": "tinyhtml5/",
    "text shaping (text/)": "weasyprint/text/",
}


def naive_notice(run: reports.RunResult, applicant_id: int) -> bytes:
    """The obvious way: fresh fonts and CSS, the whole notice as one document, each time."""
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    fonts = FontConfiguration()
    css = CSS(string=stylesheet_text(N.NOTICE_CSS), font_config=fonts)
    html = reports.notice_html(run, applicant_id, standalone=False)
    return HTML(string=html, base_url=BASE_URL).write_pdf(stylesheets=[css], font_config=fonts)


def timed(label: str, fn, ids: list[int]) -> float:  # noqa: ANN001
    start, cpu = time.perf_counter(), time.process_time()
    for i in ids:
        fn(i)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    rate = len(ids) / wall
    print(f"{label:<34} {len(ids):>6} notices  {wall:7.2f} s  {rate:6.2f} notices/s  "
          f"{cpu / len(ids) * 1000:6.1f} ms CPU per notice")
    return rate


def profile_naive(run: reports.RunResult, ids: list[int]) -> None:
    prof = cProfile.Profile()
    prof.enable()
    for i in ids:
        naive_notice(run, i)
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = sum(tt for (_, _, tt, _, _) in stats.values())
    print(f"\nprofile of the naive render ({len(ids)} notices, own time by module, {total:.2f} s profiled):")
    for label, needle in PROFILE_BUCKETS.items():
        own = sum(tt for (file, _, _), (_, _, tt, _, _) in stats.items() if needle in file)
        print(f"  {label:<34} {own / total:6.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="finished run directory")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="render only the first N declined applicants")
    parser.add_argument("--baseline", type=int, default=30, help="applicants for the single-process comparisons")
    parser.add_argument("--out", default=None, help="where to write the notices (default: a temporary folder)")
    args = parser.parse_args()

    run = reports.load_run(args.run)
    ids = run.declined_ids()[: args.limit] if args.limit else run.declined_ids()
    subset = ids[: args.baseline]
    print(f"run {run.run_id}: {len(run.declined_ids()):,} declined applicants; rendering {len(ids):,}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")

    # warm both paths once (imports, fontconfig cache), then time them on the same applicants
    naive_notice(run, subset[0])
    N.notice_pdf(run, subset[0])
    naive_rate = timed("naive WeasyPrint, 1 process", lambda i: naive_notice(run, i), subset)
    gc.collect()
    gc.freeze()
    single_rate = timed("reports.notice_pdf, 1 process", lambda i: N.notice_pdf(run, i), subset)
    gc.unfreeze()
    profile_naive(run, subset[: min(10, len(subset))])

    samples: dict[int, list[tuple[int, int]]] = {}

    def progress(done: int, total: int, pid: int, rss_kib: int) -> None:
        samples.setdefault(pid, []).append((done, rss_kib))

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="notices-"))
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    paths = reports.render_notices(run, ids, out, workers=args.workers, progress=progress)
    total = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (children.ru_utime - children_before.ru_utime) + (children.ru_stime - children_before.ru_stime)
    size = sum(p.stat().st_size for p in paths)
    rate = len(paths) / total
    print(f"\nreports.render_notices, {args.workers} workers: {len(paths):,} notices in {total:.1f} s "
          f"= {rate:.1f} notices/s (worker start-up included); {size / len(paths) / 1024:.0f} KiB per notice; "
          f"load average {os.getloadavg()[0]:.1f} at end")
    per_notice = worker_cpu / len(paths)
    print(f"worker CPU: {worker_cpu:.1f} s in all = {per_notice * 1000:.1f} ms per notice (start-up included); "
          f"on {args.workers} otherwise idle cores that is {args.workers / per_notice:.1f} notices/s")
    print(f"speed-up over naive single process: {rate / naive_rate:.1f}x (package single process: "
          f"{single_rate / naive_rate:.1f}x)")
    print("worker resident memory over time (MiB, after each chunk):")
    for pid, series in samples.items():
        mib = [rss // 1024 for _, rss in series]
        step = max(1, len(mib) // 12)
        print(f"  worker {pid}: first {mib[0]}, last {mib[-1]}, max {max(mib)};  " + " ".join(str(m) for m in mib[::step]))
    print(f"notices written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
