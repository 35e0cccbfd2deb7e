"""The `credit-audit` console command: one subcommand per module in COMMAND_MODULES.

Each command module exposes `add_parser(subparsers)`, registering its
subcommand with `set_defaults(handler=fn)` where `fn(args) -> int`. Expected
failures (bad data, missing file, no CUDA) end in one clear message and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMAND_MODULES = ["flows.cmd_run", "flows.cmd_review", "flows.cmd_verify", "flows.cmd_notice", "flows.cmd_schedule",
                   "flows.cmd_keys", "flows.cmd_users"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="credit-audit", description="Credit-risk model audit and compliance pipeline")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The embedded server needs ~15 s to start on 2 busy cores; the default 20 s is too tight.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
