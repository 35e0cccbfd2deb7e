"""`credit-audit notice`: render one applicant's notice (or every declined applicant's) from a finished run.

A finished run is sealed, so this command never leaves it failing `verify`:

- with `--out` outside the run, files are written there and the run is not touched;
- into the run (the default, `RUN/reports/notices`, or any `--out` inside it), a file the run
  already seals is never rewritten (its path is printed), a new one is written without
  replacing anything and sealed by a signed addendum to the manifest (pipeline.addenda), with
  the key that sealed the run; a run that is not sealed yet is refused.

An applicant whose notice was re-issued after review is served that version: into the run,
its path is printed; with `--out`, the same reviewed version is rendered there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.layout import MANIFEST
from pipeline.layout import NOTICES_DIR as NOTICES_SUBDIR

from .exit_codes import BAD_INPUT as EXIT_BAD_INPUT

MSG_NOT_SEALED = (
    "{run} is not sealed yet (no {manifest}): a notice written into it would make `verify` fail; "
    "finish the run first, or write elsewhere with --out DIR"
)
MSG_UNSEALED_FILE = (
    "{path} is in the run but not sealed (verify reports it): remove it or write elsewhere with --out DIR"
)
WHY = "notices rendered by `credit-audit notice`"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "notice", help="render the decision notice of an applicant (any decision) from a finished run")
    p.add_argument("--run", required=True, help="finished run directory (holds audit.json and applicants.parquet)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--id", help="applicant id, as in the ID column of the data")
    who.add_argument("--all-declined", action="store_true", help="every declined applicant of the run")
    p.add_argument("--out", default=None,
                   help=f"output folder (default: RUN/{NOTICES_SUBDIR.as_posix()}, sealed by a signed addendum to "
                        "the run's manifest; a folder outside the run leaves the run untouched)")
    p.add_argument("--html", action="store_true", help="also write the notice as HTML (single applicant only)")
    p.add_argument("--workers", type=int, default=2, help="processes for --all-declined (default 2)")
    p.set_defaults(handler=run)


def _inside(path: Path, run_dir: Path) -> bool:
    here, run = path.resolve(), run_dir.resolve()
    return here == run or run in here.parents


class _IntoRun:
    """Writes into a sealed run: sealed files are kept, new ones are sealed by one addendum at the end."""

    def __init__(self, run_dir: Path) -> None:
        from pipeline import addenda
        from pipeline.signing import resolve_signer

        if not (run_dir / MANIFEST).is_file():
            raise ValueError(MSG_NOT_SEALED.format(run=run_dir, manifest=MANIFEST))
        self.addenda, self.run_dir = addenda, run_dir
        self.signer = resolve_signer(None, False, run_dir)
        addenda.check_signer(run_dir, self.signer)  # before anything is written
        self.sealed = addenda.sealed_files(run_dir)
        self.new: list[Path] = []

    def needed(self, path: Path) -> bool:
        """False when the run already seals `path` (it is kept as it is); refuses an unsealed file."""
        rel = self.addenda.relative_in_run(self.run_dir, path)
        if rel in self.sealed:
            print(f"{path} (already sealed in the run; kept as it is)")
            return False
        if path.exists():
            raise ValueError(MSG_UNSEALED_FILE.format(path=path))
        return True

    def write(self, path: Path, data: bytes) -> Path:
        self.new.append(self.addenda.publish_new(path, data))
        print(path)
        return path

    def seal(self, run_id: str) -> None:
        if self.new:
            added = self.addenda.add_files(self.run_dir, run_id, self.new, why=WHY, signer=self.signer)
            print(f"sealed by {added}")


def _reviewed(run_dir: Path, applicant_id: int):  # noqa: ANN202 - review.Review or None
    from review import latest_reissue

    return latest_reissue(run_dir, applicant_id)


def _one(result, args: argparse.Namespace, out: Path, into: _IntoRun | None) -> None:  # noqa: ANN001 - RunResult
    import reports

    applicant = result.applicant(args.id).id  # KeyError for an unknown id, before anything is written
    reviewed = _reviewed(result.path, applicant)
    if reviewed is not None and into is not None:
        print(f"{result.path / reviewed.notice['path']} (re-issued after review {reviewed.seq}: the current version)")
        return
    review = None
    name = reports.notice_filename(applicant)
    if reviewed is not None:
        from review import reviewed_decision

        review = reviewed_decision(reviewed)
        name = reports.notice_version_filename(applicant, review.version)
    path = out / name
    targets = [(path, lambda: reports.notice_pdf(result, applicant, review=review))]
    if args.html:
        targets.append((path.with_suffix(".html"),
                        lambda: reports.notice_html(result, applicant, review=review).encode("utf-8")))
    for target, render in targets:
        if into is None:
            from pipeline import atomic_write_bytes

            print(atomic_write_bytes(target, render()))
        elif into.needed(target):
            into.write(target, render())


def _all_declined(result, args: argparse.Namespace, out: Path, into: _IntoRun | None) -> None:  # noqa: ANN001
    import reports

    ids = result.declined_ids()
    if into is not None:
        ids = [i for i in ids if into.needed(out / reports.notice_filename(i))]
    paths = reports.render_notices(result, ids, out, workers=args.workers)
    if into is not None:
        into.new += paths
    print(f"{len(paths)} notices written to {out}")


def run(args: argparse.Namespace) -> int:
    import reports
    from pipeline.addenda import AddendumError

    into = None
    try:
        result = reports.load_run(args.run)
        out = Path(args.out) if args.out else result.path / NOTICES_SUBDIR
        into = _IntoRun(result.path) if _inside(out, result.path) else None
        try:
            (_all_declined if args.all_declined else _one)(result, args, out, into)
        finally:
            if into is not None:
                into.seal(result.run_id)  # what was written is sealed, even when a later notice failed
    except (FileNotFoundError, ValueError, KeyError, OSError, AddendumError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"credit-audit notice: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
