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
                   "flows.cmd_keys", "flows.cmd_schema", "flows.cmd_users"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="credit-audit", description="Credit-risk model audit and compliance pipeline")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


# Settings Prefect reads from the environment, set unless the operator set them. An audit handles credit
# data: neither the embedded server nor the Prefect client may report usage anywhere (Prefect's SDK
# telemetry honours the DO_NOT_TRACK convention). The embedded server needs ~15 s to start on 2 busy
# cores; Prefect's default of 20 s is too tight.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}


def main(argv: list[str] | None = None) -> int:
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
