"""`credit-audit run`: the whole audit of one data file into one run directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import CreditModel, DataValidationError, load_portfolio
from pipeline.acquire import DatasetUnavailable, locate_dataset
from pipeline.config import load_config
from pipeline.constants import EXPLAIN_CHUNK_ROWS
from pipeline.device import DEVICE_CHOICES, resolve_device
from pipeline.outputs import check_run_dir

from .identity import run_id_for
from .runners import RUNNERS, api_for_workers, with_runner

EXIT_BAD_INPUT = 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="run the full audit flow on a data file")
    p.add_argument("--data", help="CSV file (default: $CREDIT_AUDIT_DATA, then data/UCI_Credit_Card.csv)")
    p.add_argument("--out", help="run directory (default: runs/<run-id>/); a folder holding another run is refused")
    p.add_argument("--replace", action="store_true",
                   help="if --out holds another run, clear it first (only a folder that holds a run)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default=None, help="where tensors run (default: auto)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
    p.add_argument("--config", help="TOML file with [audit] settings (policy, lender, ...)")
    p.add_argument("--model", help="audit this saved model (a run's model/ folder) without retraining")
    p.add_argument("--previous", help="run directory to compare with (default: the newest other run beside --out)")
    p.add_argument("--reproducible", action="store_true",
                   help="byte-identical outputs for the same inputs (creation time from SOURCE_DATE_EPOCH, else the"
                        " data file's modification time; no wall-clock timings in the record)")
    p.add_argument("--notice-limit", type=int, default=None, help="render only the first N notices (dry run)")
    p.add_argument("--explain-chunk-rows", type=int, default=EXPLAIN_CHUNK_ROWS,
                   help=f"applicants per explanation task (default: {EXPLAIN_CHUNK_ROWS})")
    p.add_argument("--runner", choices=RUNNERS, default="local", help="where per-applicant chunks run")
    p.add_argument("--dask-address", help="scheduler address of an existing Dask cluster (with --runner dask)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config).with_overrides(device=args.device, seed=args.seed)
        resolve_device(config.device)
        model_hash = CreditModel.load(args.model).model_hash() if args.model else None  # a missing or altered model
        # Preflight (~1 s): bad input, a missing file or an --out that holds another run fails
        # here with one message, before the orchestrator starts and logs a traceback for a failed task.
        data = locate_dataset(args.data)
        run_id = run_id_for(load_portfolio(data).data_hash, config.to_dict(), model_hash)
        if args.out:
            check_run_dir(Path(args.out), run_id, args.replace)
        from flows.audit import audit_flow  # Prefect import is slow: only when running

        flow = with_runner(audit_flow, args.runner, args.dask_address)
        with api_for_workers(args.runner):
            run_dir = flow(data=str(data), out=args.out, config=config.to_dict(), model_dir=args.model,
                           previous=args.previous, notice_limit=args.notice_limit,
                           explain_chunk_rows=args.explain_chunk_rows, replace=args.replace,
                           reproducible=args.reproducible)
    except (DataValidationError, DatasetUnavailable, ValueError, RuntimeError, OSError) as exc:
        print(f"credit-audit: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"Audit finished. Outputs are in {run_dir}")
    return 0
