"""`credit-audit verify`: check a run's sealed outputs and its review trail; exit 1 on any problem, 2 on bad input.

With `--public-key` (the operator's `signing-key.pub`, kept outside the run)
the signatures prove who sealed the run and wrote the reviews; with
`--checkpoint` (a checkpoint archived outside the run) they also prove that
no review up to it was removed. Without a key, only internal consistency is
checked, and the output says so. `--export-checkpoint FILE` writes the newest
verified checkpoint for the operator to archive; `--repair` finishes what an
interrupted write left undone and refuses everything else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_PROBLEMS = 1
EXIT_BAD_INPUT = 2
MSG_EXPORT_NEEDS_KEY = "--export-checkpoint needs --public-key: only a checkpoint verified against the operator's key is worth archiving"
MSG_NOT_EXPORTED = "checkpoint NOT exported: the run does not verify"
MSG_NO_CHECKPOINT = "checkpoint NOT exported: the run holds no signed checkpoint (it was sealed without a key)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("verify", help="check a run's outputs and its review trail for alteration")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--db", default=None, help="review database URL, when not the default SQLite beside the run")
    p.add_argument("--public-key", default=None, metavar="FILE",
                   help="the operator's public key (signing-key.pub from `credit-audit keys init`), kept outside the run")
    p.add_argument("--checkpoint", action="append", default=[], metavar="FILE",
                   help="a checkpoint archived outside the run (repeatable); needs --public-key")
    p.add_argument("--export-checkpoint", default=None, metavar="FILE",
                   help="write the newest verified checkpoint to FILE, to archive outside the run; needs --public-key")
    p.add_argument("--repair", action="store_true",
                   help="re-export reviews an interrupted write left out of trail.jsonl; refuses any other change")
    p.set_defaults(handler=run)


def _inputs(args: argparse.Namespace) -> tuple[object, list]:
    from pipeline.checkpoint import Checkpoint
    from pipeline.signing import PublicKey
    from review import MSG_CHECKPOINT_NEEDS_KEY

    if args.export_checkpoint and not args.public_key:
        raise ValueError(MSG_EXPORT_NEEDS_KEY)
    if args.checkpoint and not args.public_key:
        raise ValueError(MSG_CHECKPOINT_NEEDS_KEY)
    key = PublicKey.from_file(args.public_key) if args.public_key else None
    checkpoints = [(path, Checkpoint.from_json(Path(path).read_text(encoding="utf-8"), source=path))
                   for path in args.checkpoint]
    return key, checkpoints


def _print(report, key_file: str | None) -> None:  # noqa: ANN001 - review.VerifyReport (imported lazily)
    print(f"run {report.run_dir} (run id {report.run_id})")
    print(f"  run sealed with key: {report.run_key_id or 'none (unsigned)'}")
    print(f"  review trail signed with key: {report.trail_key_id or 'none (unsigned or no reviews)'}")
    if key_file:
        print(f"  public key given: {key_file} (key id {report.trusted_key_id})")
    else:
        print("  public key given: none: internal consistency only")
    print(f"  manifest: {'ok' if not report.manifest_problems else f'{len(report.manifest_problems)} problem(s)'}")
    print(f"  review trail: {report.rows} reviews in the database, {report.entries} lines in trail.jsonl, "
          f"head {report.head[:16]}")
    if report.checkpoints_checked:
        print(f"  archived checkpoints checked: {report.checkpoints_checked}")
    for note in report.notes:
        print(f"  NOTE: {note}")
    for problem in report.problems:
        print(f"  PROBLEM: {problem}")
    if not report.ok:
        print(f"FAILED: {len(report.problems)} problem(s)")
    elif report.against_key:
        print(f"verified against key {report.trusted_key_id}: no altered, missing or removed record")
    else:
        print("consistent, but NOT verified against a public key (see the note above)")


def _export(report, path: str) -> bool:  # noqa: ANN001 - review.VerifyReport
    from pipeline import atomic_write_text

    if not report.ok:
        print(MSG_NOT_EXPORTED)
        return False
    cp = report.newest_checkpoint
    if cp is None:
        print(MSG_NO_CHECKPOINT)
        return False
    atomic_write_text(path, cp.to_json())
    print(f"exported checkpoint: {path} ({cp.trail_count} reviews, head {cp.trail_head[:16]}, signed {cp.time}); "
          "archive it outside the run")
    return True


def run(args: argparse.Namespace) -> int:
    from review import repair_run, verify_run

    try:
        key, checkpoints = _inputs(args)
        if args.repair:
            repaired = repair_run(args.run, db_url=args.db, public_key=key, checkpoints=checkpoints)
            report = repaired.after
        else:
            report = verify_run(args.run, db_url=args.db, public_key=key, checkpoints=checkpoints)
    except (FileNotFoundError, ValueError, KeyError, OSError) as exc:
        print(f"credit-audit verify: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.repair:
        for line in repaired.done:
            print(f"REPAIRED: {line}")
        for line in repaired.refused:
            print(f"REFUSED: {line}")
    _print(report, args.public_key)
    if args.export_checkpoint and not _export(report, args.export_checkpoint):
        return EXIT_PROBLEMS
    return 0 if report.ok else EXIT_PROBLEMS
