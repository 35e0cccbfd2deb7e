"""`credit-audit schedule --cron "..."`: serve the audit flow on a cron schedule until stopped.

It takes the same options as `run` (one shared set) plus the schedule. The
deployment is served from this process against the Prefect server in
`PREFECT_API_URL` (a team's server); without one, a temporary local server
is started and its address printed, so `prefect deployment run` from another
shell can reach it. SIGTERM (a service manager's stop) and Ctrl-C shut it
down cleanly.
"""

from __future__ import annotations

import argparse
import sys

from .cmd_run import add_audit_options, audit_config, flow_parameters
from .exit_codes import BAD_INPUT as EXIT_BAD_INPUT


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("schedule", help="serve the audit flow on a cron schedule (runs until stopped)")
    p.add_argument("--cron", required=True, help='cron expression, e.g. "0 6 1 * *" (06:00 on the 1st)')
    p.add_argument("--timezone", default="UTC", help="time zone of the cron expression (default: UTC)")
    add_audit_options(p)
    p.set_defaults(handler=schedule)


def schedule(args: argparse.Namespace) -> int:
    from .schedule import audit_deployment, check_schedule

    try:
        # before Prefect starts: a bad file or cron expression is refused at once
        config = audit_config(args)
        check_schedule(args.cron, args.timezone)
    except ValueError as exc:
        print(f"credit-audit: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from .runners import prefect_server
    from .schedule import serve_until_stopped

    parameters = {k: v for k, v in flow_parameters(args, config, args.data).items() if v not in (None, False)}
    with prefect_server() as url:
        deployment = audit_deployment(args.cron, parameters, timezone=args.timezone)
        print(f"Serving 'credit-audit/{deployment.name}' on cron '{args.cron}' ({args.timezone}) against the"
              f" Prefect server at {url}.\nTrigger a run now with:  PREFECT_API_URL={url} prefect deployment run"
              f" 'credit-audit/{deployment.name}'\nStop with Ctrl-C or SIGTERM.", flush=True)
        serve_until_stopped(deployment)
    print("Stopped.")
    return 0
