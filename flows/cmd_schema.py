"""`credit-audit init-schema` and `check-schema`: write a starting schema file for a lender's data, check data against one.

The first two of the three steps that audit a lender's own data (write the
schema, check it, run). Both import the library only inside the handler, so
`--help` stays instant (tests/test_cli.py checks no heavy module is imported
while parsing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .exit_codes import BAD_INPUT

MSG_EXISTS = "{out} exists; choose another --out, or remove it first (a schema being edited is never overwritten)"
MSG_NO_DATA = "{data}: no such data file"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    init = subparsers.add_parser(
        "init-schema", help="write a starting schema file inferred from a data file, every guess marked TODO")
    init.add_argument("--data", required=True, help="the lender's data file (CSV with a header line)")
    init.add_argument("--out", default=None, help="schema file to write (default: print it)")
    init.set_defaults(handler=init_schema)
    check = subparsers.add_parser(
        "check-schema", help="check a schema file, and a data file against it; lists the first problems by line and column")
    check.add_argument("--schema", required=True, help="the schema file (TOML)")
    check.add_argument("--data", default=None, help="a data file to validate against the schema (CSV)")
    check.set_defaults(handler=check_schema)


def _fail(command: str, message: object) -> int:
    print(f"credit-audit {command}: {message}", file=sys.stderr)
    return BAD_INPUT


def init_schema(args: argparse.Namespace) -> int:
    from pipeline.schema_infer import infer_schema

    data = Path(args.data)
    if not data.is_file():
        return _fail("init-schema", MSG_NO_DATA.format(data=data))
    out = Path(args.out) if args.out else None
    if out is not None and out.exists():
        return _fail("init-schema", MSG_EXISTS.format(out=out))
    try:
        text = infer_schema(data)
    except (ValueError, OSError) as exc:  # a DataValidationError names the file itself
        return _fail("init-schema", f"cannot infer a schema: {exc}")
    if out is None:
        sys.stdout.write(text)
        return 0
    from pipeline import atomic_write_text

    atomic_write_text(out, text)
    print(f"{out}: starting schema written; edit every TODO, then run credit-audit check-schema --schema {out}"
          f" --data {data}")
    return 0


def check_schema(args: argparse.Namespace) -> int:
    from pipeline import DataValidationError
    from pipeline.schema_check import check_data
    from pipeline.schema_file import SchemaFileError, load_schema

    try:
        spec = load_schema(args.schema)
    except SchemaFileError as exc:
        return _fail("check-schema", exc)
    if args.data is None:
        print(f"{args.schema}: a valid schema ({len(spec.features)} features)")
        return 0
    data = Path(args.data)
    if not data.is_file():
        return _fail("check-schema", MSG_NO_DATA.format(data=data))
    try:
        report = check_data(spec, data)
    except DataValidationError as exc:
        return _fail("check-schema", exc)
    for finding in report.findings:
        print(f"{data}: note: {finding}")
    if report.ok:
        print(f"{data}: {report.rows:,} rows match {args.schema} ({len(spec.features)} features)")
        return 0
    for problem in report.problems:
        print(problem.text(data), file=sys.stderr)
    more = report.problem_count - len(report.problems)
    print(f"credit-audit check-schema: {report.problem_count:,} problem(s) in {data}"
          + (f" (the first {len(report.problems)} shown, {more:,} more)" if more else ""), file=sys.stderr)
    return BAD_INPUT
