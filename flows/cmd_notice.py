"""`credit-audit notice`: render one applicant's notice (or every declined applicant's) from a finished run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.layout import NOTICES_DIR as NOTICES_SUBDIR

from .exit_codes import BAD_INPUT as EXIT_BAD_INPUT


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "notice", help="render the decision notice of an applicant (any decision) from a finished run")
    p.add_argument("--run", required=True, help="finished run directory (holds audit.json and applicants.parquet)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--id", help="applicant id, as in the ID column of the data")
    who.add_argument("--all-declined", action="store_true", help="every declined applicant of the run")
    p.add_argument("--out", default=None, help=f"output folder (default: RUN/{NOTICES_SUBDIR.as_posix()})")
    p.add_argument("--html", action="store_true", help="also write the notice as HTML (single applicant only)")
    p.add_argument("--workers", type=int, default=2, help="processes for --all-declined (default 2)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import reports

    try:
        result = reports.load_run(args.run)
        out = Path(args.out) if args.out else result.path / NOTICES_SUBDIR
        if args.all_declined:
            paths = reports.render_notices(result, None, out, workers=args.workers)
            print(f"{len(paths)} notices written to {out}")
            return 0
        path = reports.render_notice(result, args.id, out)
        print(path)
        if args.html:
            html_path = path.with_suffix(".html")
            from pipeline import atomic_write_text

            atomic_write_text(html_path, reports.notice_html(result, args.id))
            print(html_path)
    except (FileNotFoundError, ValueError, KeyError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"credit-audit notice: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
