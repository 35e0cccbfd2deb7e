"""`credit-audit run`: the whole audit of one data file into one run directory.

Heavy libraries (torch, Prefect) are imported only after the cheap checks of
the user's input passed, so a bad file or setting is refused in about a
second; the choices come from torch- and Prefect-free modules.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.constants import DEVICE_CHOICES, EXPLAIN_CHUNK_ROWS, SEED_MAX

from .exit_codes import BAD_INPUT as EXIT_BAD_INPUT
from .exit_codes import PASSED, POLICY_FAILED, SYSTEM_ERROR
from .runners import RUNNERS

if TYPE_CHECKING:
    from pipeline.config import AuditConfig

MSG_BAD_COUNT = "expected a whole number of at least {minimum}{maximum}, got {value!r}"


def _count(minimum: int, maximum: int | None = None):
    """An argparse type for a bounded whole number: a bad value is a usage error (exit 2), not a traceback."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise argparse.ArgumentTypeError(MSG_BAD_COUNT.format(minimum=minimum, maximum=upper, value=text))
        return value

    return parse


MSG_BAD_FRACTION = "expected a number from 0 to 1, got {value!r}"
NO_SHIFT = "none"


def _fraction(text: str) -> float:
    """An argparse type for a limit between 0 and 1 (a usage error, exit 2, otherwise)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(MSG_BAD_FRACTION.format(value=text))
    return value


def add_audit_options(p: argparse.ArgumentParser) -> None:
    """The options of one audit, shared by `run` and `schedule` (one set, not two copies)."""
    p.add_argument("--data", help="CSV file (default: $CREDIT_AUDIT_DATA, then data/UCI_Credit_Card.csv)")
    p.add_argument("--out", help="run directory (default: runs/<run-id>/); a folder holding another run is refused")
    p.add_argument("--replace", action="store_true",
                   help="if --out holds another run, clear it first (only a folder that holds a run)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default=None, help="where tensors run (default: auto)")
    p.add_argument("--seed", type=_count(0, SEED_MAX), default=None, help="random seed (default: 0)")
    p.add_argument("--config", help="TOML file with [audit] settings (policy, lender, ...)")
    p.add_argument("--model", help="audit this model as is, never retrained: a run's model/ folder, or a lender's model"
                                   " file (ONNX, TorchScript, skops, XGBoost JSON/UBJ, LightGBM text) with its"
                                   " <stem>.card.toml beside it")
    p.add_argument("--schema", help="schema file declaring the data's columns (default: the UCI credit-card layout;"
                                    " `credit-audit init-schema` writes one)")
    p.add_argument("--previous", help="run directory to compare with (default: the newest other run beside --out)")
    p.add_argument("--reproducible", action="store_true",
                   help="byte-identical outputs for the same inputs (creation time from SOURCE_DATE_EPOCH, else the"
                        " data file's modification time; no wall-clock timings in the record)")
    p.add_argument("--unsigned", action="store_true",
                   help="seal without a signing key (verify can then only check internal consistency)")
    p.add_argument("--notice-limit", type=_count(0), default=None, help="render only the first N notices (dry run)")
    p.add_argument("--explain-chunk-rows", type=_count(1), default=EXPLAIN_CHUNK_ROWS,
                   help=f"applicants per explanation task (default: {EXPLAIN_CHUNK_ROWS})")
    p.add_argument("--check-shift", action="append", metavar="SPEC",
                   help="fairness under demographic shift, repeatable: ATTRIBUTE:+0.1 (its least-favoured group), "
                        "ATTRIBUTE:GROUP-0.05, 'all' (every protected attribute +/-0.1, the default of "
                        f"[audit.shift] checks) or '{NO_SHIFT}'")
    p.add_argument("--fail-on-degradation", type=_fraction, metavar="X",
                   help="exit 1 when a fairness figure degrades by more than X under a shift "
                        "([audit.gates] max_shift_degradation)")


def audit_config(args: argparse.Namespace) -> AuditConfig:
    """The configuration file with the command line's settings over it (validated: ConfigError names the key)."""
    from pipeline import schema as S
    from pipeline.config import AuditConfig, load_config

    S.activate(S.read_schema(args.schema)[0])  # first: the configuration may name the schema's attributes
    config = load_config(args.config).with_overrides(device=args.device, seed=args.seed)
    if args.check_shift is None and args.fail_on_degradation is None:
        return config
    settings = config.to_dict()
    if args.check_shift is not None:
        settings["shift"] = {"checks": [] if args.check_shift == [NO_SHIFT] else list(args.check_shift)}
    if args.fail_on_degradation is not None:
        settings["gates"] = {**settings["gates"], "max_shift_degradation": args.fail_on_degradation}
    return AuditConfig.from_dict(settings, source="command line")


def flow_parameters(args: argparse.Namespace, config: AuditConfig, data: str | None) -> dict:
    """The audit flow's parameters from the shared options (plain data: deployments carry them too)."""
    return {"data": data, "out": args.out, "config": config.to_dict(), "model_dir": args.model, "schema_file": args.schema,
            "previous": args.previous, "notice_limit": args.notice_limit,
            "explain_chunk_rows": args.explain_chunk_rows, "replace": args.replace,
            "reproducible": args.reproducible, "unsigned": args.unsigned}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="run the full audit flow on a data file")
    add_audit_options(p)
    p.add_argument("--json", action="store_true",
                   help="print the closing summary (or the error) as JSON on stdout; exit codes as documented")
    p.add_argument("--runner", choices=RUNNERS, default="local", help="where per-applicant chunks run")
    p.add_argument("--dask-address", help="scheduler address of an existing Dask cluster (with --runner dask)")
    p.set_defaults(handler=run)


def preflight(args: argparse.Namespace) -> tuple[AuditConfig, str]:
    """Every check of the user's input, before the orchestrator starts and before anything is written.

    Configuration, data file and its size for this split, device, model folder, and an --out
    that holds another run: a bad one fails here with one message (file, line, column or key)
    instead of a task traceback mid-run. The order is cheapest first, so hostile input never
    waits for torch to import.
    """
    from pipeline import check_audit_size, load_portfolio
    from pipeline import schema as S
    from pipeline.acquire import locate_dataset
    from pipeline.outputs import check_run_dir
    from pipeline.signing import resolve_signer

    from .identity import run_id_for

    config = audit_config(args)  # activates the schema file
    raw = S.read_schema(args.schema)[1]
    resolve_signer(unsigned=args.unsigned, run_dir=Path(args.out) if args.out else None)  # a key, or --unsigned
    data = locate_dataset(args.data)
    portfolio = load_portfolio(data)
    check_audit_size(portfolio, config.test_fraction)
    _check_shifts(portfolio, config)
    check_previous(args.previous, raw)

    from pipeline import resolve_device

    from .tasks import check_given_model, schema_hash

    resolve_device(config.device)
    model_hash = check_given_model(args.model, portfolio).model_hash() if args.model else None
    if args.out:
        run_id = run_id_for(portfolio.data_hash, config.identity(), model_hash, schema_hash(args.schema, raw))
        check_run_dir(Path(args.out), run_id, args.replace)
    return config, str(data)


def _check_shifts(portfolio, config: AuditConfig) -> None:  # noqa: ANN001 - a Portfolio (imported lazily)
    """Shift checks the held-out split cannot honour (unknown attribute or group, a share out of (0, 1)) fail now."""
    from pipeline.fairness import resolve_shifts
    from pipeline.splitting import split_portfolio

    test = split_portfolio(portfolio, config.test_fraction, config.seed).test
    resolve_shifts(config.shift.checks, portfolio.features.iloc[test], portfolio.labels.iloc[test])


MSG_PREVIOUS_NOT_RUN = "--previous {run}: not a finished run to compare with ({reason})"
MSG_PREVIOUS_SCHEMA = ("--previous {run}: that run read its data with another schema file ({theirs}, SHA-256 {theirs_sha}); "
                       "this run reads {ours}: a run of other columns is not an earlier version of this one")


def check_previous(previous: str | None, raw: bytes) -> None:
    """An explicit --previous is a finished run of the same schema file (as the automatic choice is): otherwise
    'what changed' would compare other columns and the report would render under that run's schema."""
    if previous is None:
        return
    import hashlib

    from pipeline import schema as S
    from pipeline.run_record import RecordError, load_record

    try:
        record = load_record(previous)
    except (RecordError, OSError) as exc:
        raise ValueError(MSG_PREVIOUS_NOT_RUN.format(run=previous, reason=exc)) from None
    theirs = record.schema_file or None
    theirs_sha = theirs.sha256 if theirs else hashlib.sha256(S.read_schema(None)[1]).hexdigest()
    if theirs_sha != hashlib.sha256(raw).hexdigest():
        raise ValueError(MSG_PREVIOUS_SCHEMA.format(run=previous, theirs=theirs.name if theirs else "the default",
                                                    theirs_sha=theirs_sha[:12], ours=S.SPEC.source.name))


def _fail(args: argparse.Namespace, code: int, message: str) -> int:
    if args.json:
        print(json.dumps({"exit_code": code, "error": message}))
    print(f"credit-audit: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Exit codes: flows/exit_codes.py (0 passed, 1 a release gate failed, 2 bad input, 3 system error)."""
    try:
        config, data = preflight(args)
        from flows.audit import audit_flow  # Prefect import is slow: only when running

        from .runners import api_for_workers, with_runner

        flow = with_runner(audit_flow, args.runner, args.dask_address)
        with api_for_workers(args.runner):
            run_dir = flow(**flow_parameters(args, config, data))
    except (ValueError, RuntimeError, OSError) as exc:  # DataValidationError, ConfigError, ModelFileError,
        return _fail(args, EXIT_BAD_INPUT, str(exc))  # DatasetUnavailable, no CUDA, unreadable paths
    except Exception as exc:  # noqa: BLE001 - anything else is ours, not the user's: exit 3, not a traceback
        return _fail(args, SYSTEM_ERROR, f"internal error ({type(exc).__name__}: {exc}); see the log above")
    from pipeline.run_record import load_record

    from .summary import summary, summary_lines

    facts = summary(load_record(run_dir), Path(run_dir))
    code = POLICY_FAILED if facts["passed"] is False else PASSED
    if args.json:
        print(json.dumps({"exit_code": code, **facts}, indent=2))
    else:
        print("\n".join(summary_lines(facts)))
        print(f"Audit finished. Outputs are in {run_dir}")
    return code
