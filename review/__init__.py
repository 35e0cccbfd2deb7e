"""Analyst review: the queue of flagged applicants, recorded human decisions, and a signed trail.

A *review* is a human's decision about one flagged applicant of one run:
confirm the model, override to approve, override to decline, or ask for more
information, always with a written reason, recorded under the signed-in
account and its role (_accounts.py, _auth.py). An override, or the reversal
of a decision in effect, takes effect only when a second, different person
with the approver role approves it (_decisions.py). The queue (_queue.py)
is ordered by urgency, keeps its filters in the URL and is indexed once per
app; a reviewer claims a case (_claims.py) so that two do not work the same
one, and saves and moves to the next. Reviews
are append-only rows in a SQLAlchemy database (SQLite beside the run by
default); each row is an entry of a hash chain, signed with the operator's
Ed25519 key (pipeline.signing), and committed in one transaction with a
signed checkpoint of the chain head. `trail.jsonl` is exported from the
database. `verify_run` checks the manifest and its signature, the chain,
the signatures, the export and any checkpoint archived outside the run.

    app = create_app(run_dir, accounts)          # FastAPI app (sign-in, queue, applicant page, forms, team, CSV, API)
    serve(run_dir)                               # the same on 127.0.0.1 with uvicorn
    seal_run(run_dir)                            # manifest.json + manifest.json.sig (the run's first checkpoint)
    report = verify_run(run_dir, public_key=key, checkpoints=[(name, cp)])   # report.ok, .problems, .notes
    repair_run(run_dir)                          # re-export what an interrupted write left out; refuses the rest
    review_overrides(run_dir)                    # human overrides, for the next global report

A review that takes effect re-issues the applicant's notice (`NoticeReissuer`, the store's
`on_effect` hook): a new version, sealed by a signed manifest addendum, named in the entry.
"""

from pipeline import lazy_getattr

from ._accounts import (
    Account,
    AccountError,
    AccountStore,
    LockedOut,
    Role,
    check_password,
    normalize_name,
    parse_role,
    users_db_url,
)
from ._decisions import Action, ApplicantState, fold, needs_second_person
from ._export import csv_safe, reviews_csv
from ._reissue import NoticeReissuer, ReissueError, latest_reissue, reviewed_decision, served_notice
from ._store import (
    OUTCOME_LABELS,
    REVIEW_DIR,
    Outcome,
    Review,
    ReviewConflict,
    ReviewRefused,
    ReviewStore,
    ReviewValidationError,
    TrailKeyError,
    review_overrides,
    trail_head,
    validate_review,
)
from ._verify import VerifyReport, verify_run

# The app and the run loader import pandas, torch (through pipeline) and FastAPI: loaded on first use,
# so the store, the trail and their writers stay light for other processes and tools.
_LAZY = {
    "MSG_CHECKPOINT_NEEDS_KEY": "._verify",
    "create_app": "._app",
    "current_user": "._auth",
    "ReviewRun": "._run",
    "load_review_run": "._run",
    "serve": "._server",
    "check_loopback": "._server",
    "seal_run": "._seal",
    "repair_run": "._repair",
    "RepairReport": "._repair",
    "BodyLimit": "._body_limit",
    "MAX_BODY_BYTES": "._body_limit",
}

__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "Account",
    "AccountError",
    "AccountStore",
    "Action",
    "ApplicantState",
    "LockedOut",
    "ReviewConflict",
    "ReviewRefused",
    "Role",
    "check_password",
    "current_user",
    "normalize_name",
    "parse_role",
    "fold",
    "needs_second_person",
    "users_db_url",
    "MSG_CHECKPOINT_NEEDS_KEY",
    "MAX_BODY_BYTES",
    "OUTCOME_LABELS",
    "REVIEW_DIR",
    "BodyLimit",
    "NoticeReissuer",
    "ReissueError",
    "Outcome",
    "RepairReport",
    "Review",
    "ReviewRun",
    "ReviewStore",
    "ReviewValidationError",
    "TrailKeyError",
    "VerifyReport",
    "check_loopback",
    "create_app",
    "csv_safe",
    "latest_reissue",
    "load_review_run",
    "repair_run",
    "review_overrides",
    "reviewed_decision",
    "reviews_csv",
    "seal_run",
    "serve",
    "served_notice",
    "trail_head",
    "validate_review",
    "verify_run",
]
