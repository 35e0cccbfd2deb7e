"""`credit-audit verify`: check a run's manifest and its review trail; non-zero exit on any problem."""

from __future__ import annotations

import argparse
import sys

EXIT_PROBLEMS = 1
EXIT_BAD_INPUT = 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("verify", help="check a run's outputs and its review trail for alteration")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--db", default=None, help="review database URL, when not the default SQLite beside the run")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from review import verify_run

    try:
        report = verify_run(args.run, db_url=args.db)
    except (FileNotFoundError, ValueError, KeyError, OSError) as exc:
        print(f"credit-audit verify: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"run {report.run_dir}")
    print(f"  manifest: {'ok' if not report.manifest_problems else f'{len(report.manifest_problems)} problem(s)'}")
    print(f"  review trail: {report.entries} entries, {report.rows} database rows, head {report.head[:16]}")
    for problem in report.problems:
        print(f"  PROBLEM: {problem}")
    print("verified: no altered or missing record" if report.ok else f"FAILED: {len(report.problems)} problem(s)")
    return 0 if report.ok else EXIT_PROBLEMS
