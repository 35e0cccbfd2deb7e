"""`credit-audit schedule --cron "..."`: serve the audit flow on a cron schedule until stopped."""

from __future__ import annotations

import argparse
import sys

from .exit_codes import BAD_INPUT as EXIT_BAD_INPUT


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("schedule", help="serve the audit flow on a cron schedule (runs until stopped)")
    p.add_argument("--cron", required=True, help='cron expression, e.g. "0 6 1 * *" (06:00 UTC on the 1st)')
    p.add_argument("--data", help="data file each run audits (default: $CREDIT_AUDIT_DATA)")
    p.add_argument("--model", help="audit this saved model every time instead of retraining")
    p.add_argument("--config", help="TOML file with [audit] settings")
    p.add_argument("--timezone", default="UTC")
    p.set_defaults(handler=schedule)


def schedule(args: argparse.Namespace) -> int:
    from pipeline.config import load_config

    try:
        config = load_config(args.config)  # before Prefect starts: a bad file is refused at once
    except ValueError as exc:
        print(f"credit-audit: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from prefect import serve

    from flows.schedule import audit_deployment

    try:
        deployment = audit_deployment(args.cron, args.data, args.model, config, timezone=args.timezone)
    except ValueError as exc:
        print(f"credit-audit: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"Serving '{deployment.name}' on cron '{args.cron}' ({args.timezone}); stop with Ctrl-C.")
    serve(deployment)
    return 0
