"""When a reviewed decision takes effect, the applicant's notice is re-issued: a new version, sealed, bound to the trail.

The review loop closes here (issue 16, item 4). A review that takes effect
(confirm, override to approve, override to decline; not "needs more
information") makes a new version of the applicant's notice with the same
renderer and regime as the run (`reports.notice_pdf(..., review=...)`): it
states the outcome, that a person reviewed it and when, and how to contest
it; an approval after review reads the approved applicant's text. Then:

1. the new PDF is written beside the run's notices as
   `reports/notices/notice_<id>_v<k>.pdf` (k = 2, 3, ...), never over an
   existing file, so every earlier version is kept unchanged;
2. one signed addendum to the manifest (pipeline.addenda) seals it;
3. the returned dict becomes the review's trail entry field `notice`: the
   new path and SHA-256, the previous version's path and SHA-256 (None when
   the run wrote no notice for this applicant, as for most approvals), the
   version and the addendum. The signed entry binds both files.

The store calls `NoticeReissuer` under the trail's lock, before it commits
the entry (`ReviewStore(on_effect=...)`, one call site). A crash after the
addendum and before the commit leaves a sealed version that no review names:
`verify` notes it, and it is never served (the served notice is the one the
newest review entry names: `served_notice`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline import addenda
from pipeline.layout import NOTICES_DIR
from pipeline.signing import Signer

from ._store import DB_ENV, DB_FILE, NOTICE_FIELD, Outcome, Review, ReviewStore, review_dir

TAKES_EFFECT = (Outcome.CONFIRM, Outcome.OVERRIDE_APPROVE, Outcome.OVERRIDE_DECLINE)
MAX_VERSION_TRIES = 50
MSG_NOT_SEALED = "review {seq} (applicant {applicant}): its re-issued notice {path} is not sealed with the SHA-256 it records"
MSG_PREVIOUS = "review {seq} (applicant {applicant}): the notice it replaced, {path}, is not the sealed file it records"
MSG_PATH = "review {seq} (applicant {applicant}): records its notice at {path}, not where its version belongs"
NOTE_UNNAMED = (
    "{path} is sealed by an addendum but no review names it: a re-issue whose review was not saved "
    "(a failed or interrupted save); it is never served"
)


class ReissueError(RuntimeError):
    """The notice could not be re-issued (the run is not sealed, say); the review is then not saved."""


def _final(record: Mapping) -> str:
    if record["outcome"] == Outcome.OVERRIDE_APPROVE:
        return "approve"
    if record["outcome"] == Outcome.OVERRIDE_DECLINE:
        return "decline"
    return str(record["model_decision"])


def _latest_notice(earlier: Sequence[Review]) -> dict | None:
    return next((r.notice for r in reversed(earlier) if r.notice), None)


class NoticeReissuer:
    """The store's `on_effect` hook over one run: re-issues, seals, and returns the entry's `notice` field."""

    def __init__(self, run) -> None:  # noqa: ANN001 - reports.RunResult (the reports package is loaded lazily)
        self.run = run

    def previous(self, applicant_id: int, earlier: Sequence[Review]) -> tuple[int, str | None, str | None]:
        """(its version, path, date) of the version a re-issue replaces; path None when there is none."""
        import reports

        latest = _latest_notice(earlier)
        if latest is not None:
            when = next(r.created for r in reversed(earlier) if r.notice)
            return int(latest["version"]), str(latest["path"]), when
        rel = (NOTICES_DIR / reports.notice_filename(applicant_id)).as_posix()
        found = (Path(self.run.path) / rel).is_file()
        return 1, rel if found else None, self.run.record.created if found else None

    def __call__(self, record: dict, signer: Signer | None, earlier: Sequence[Review]) -> dict | None:
        if record["outcome"] not in TAKES_EFFECT:
            return None
        import reports

        run_dir = Path(self.run.path)
        applicant = int(record["applicant_id"])
        version, previous, replaces = self.previous(applicant, earlier)
        review = reports.ReviewedDecision(model_decision=str(record["model_decision"]), final_decision=_final(record),
                                          reviewed=str(record["created"]), replaces=replaces, version=version + 1)
        pdf = reports.notice_pdf(self.run, applicant, review=review)
        path = self._publish(run_dir, applicant, version + 1, pdf)
        try:
            sealed = addenda.add_files(run_dir, self.run.run_id, [path], signer=signer,
                                       why=f"notice of applicant {applicant} re-issued after review")
        except addenda.AddendumError as exc:
            path.unlink(missing_ok=True)  # never leave an unsealed file in the run
            raise ReissueError(str(exc)) from exc
        new_version = int(path.stem.rsplit("_v", 1)[1])
        return {
            "version": new_version,
            "path": path.relative_to(run_dir).as_posix(),
            "sha256": addenda.sha256_file(path),
            "previous_path": previous,
            "previous_sha256": addenda.sha256_file(run_dir / previous) if previous else None,
            "replaces": replaces,
            "addendum": sealed.relative_to(run_dir).as_posix(),
        }

    @staticmethod
    def _publish(run_dir: Path, applicant: int, version: int, pdf: bytes) -> Path:
        """Write the new version under the first free version number from `version` on (never over a file)."""
        import reports

        for k in range(version, version + MAX_VERSION_TRIES):
            try:
                return addenda.publish_new(run_dir / NOTICES_DIR / reports.notice_version_filename(applicant, k), pdf)
            except FileExistsError:
                continue  # left by a save that did not commit: kept, and the next number taken
        raise ReissueError(f"applicant {applicant}: no free notice version from {version} to {k}")


def reviewed_decision(review: Review):  # noqa: ANN201 - reports.ReviewedDecision (loaded lazily)
    """The ReviewedDecision a review's re-issued notice states (None when the review re-issued none)."""
    if not review.notice:
        return None
    import reports

    return reports.ReviewedDecision(model_decision=review.model_decision, final_decision=review.final_decision,
                                    reviewed=review.created, replaces=review.notice.get("replaces"),
                                    version=int(review.notice["version"]))


def current_review(history: Sequence[Review]) -> Review | None:
    """The newest review of one applicant that re-issued their notice: what the applicant is now served."""
    return next((r for r in reversed(history) if r.notice), None)


def latest_reissue(run_dir: str | Path, applicant_id: int, db_url: str | None = None) -> Review | None:
    """The newest review that re-issued this applicant's notice, read without creating a store (None: none)."""
    url = db_url or os.environ.get(DB_ENV)
    if url is None and not (review_dir(run_dir) / DB_FILE).exists():
        return None
    store = ReviewStore(run_dir, db_url=url)
    try:
        return current_review(store.history(int(applicant_id)))
    finally:
        store.close()


def version_path(applicant_id: int, version: object) -> str:
    """Where version `version` of an applicant's notice lives, relative to the run (built here, never read)."""
    import reports

    return (NOTICES_DIR / reports.notice_version_filename(int(applicant_id), int(version))).as_posix()


def served_notice(run_dir: str | Path, history: Sequence[Review]) -> Path | None:
    """The applicant's current notice: the newest re-issued version, else None (then the run's own notice).

    The path is built from the applicant id and the version number, never taken from the stored
    string: a database edited to name `../../etc/passwd` serves nothing of the kind.
    """
    review = current_review(history)
    if review is None:
        return None
    path = Path(run_dir) / version_path(review.applicant_id, review.notice["version"])
    return path if path.is_file() else None


def notice_problems(records: Sequence[tuple[int, Mapping]], sealed: Mapping[str, str],
                    added: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Problems and notes of the trail's re-issued notices against what the manifest and its addenda seal.

    `records`: (seq, record) of every trail entry; `sealed`: {path: SHA-256} of the manifest and
    the addenda; `added`: the part of it that addenda added.
    """
    problems: list[str] = []
    named: set[str] = set()
    for seq, record in records:
        notice = record.get(NOTICE_FIELD)
        if not notice:
            continue
        who = {"seq": seq, "applicant": record.get("applicant_id")}
        path = str(notice.get("path"))
        named.add(path)
        try:
            expected = version_path(int(record.get("applicant_id")), notice.get("version"))
        except (TypeError, ValueError):
            expected = None
        if path != expected:
            problems.append(MSG_PATH.format(path=path, **who))
        if sealed.get(path) != notice.get("sha256"):
            problems.append(MSG_NOT_SEALED.format(path=path, **who))
        previous = notice.get("previous_path")
        if previous is not None and sealed.get(str(previous)) != notice.get("previous_sha256"):
            problems.append(MSG_PREVIOUS.format(path=previous, **who))
    prefix = NOTICES_DIR.as_posix() + "/"
    notes = [NOTE_UNNAMED.format(path=p) for p in sorted(added) if p.startswith(prefix) and "_v" in p
             and p not in named]
    return problems, notes
