"""Analyst review: the queue of flagged applicants, recorded human decisions, and a tamper-evident trail.

A *review* is a human's decision about one flagged applicant of one run:
confirm the model, override to approve, override to decline, or ask for more
information, always with a written reason and the reviewer's name. Reviews
are append-only rows in a SQLAlchemy database (SQLite beside the run by
default) and every one is also sealed in a hash-chained JSON-lines trail;
`verify_run` recomputes the chain, compares it with the database and checks
the run's manifest, so an altered, missing or added record is reported.

    app = create_app(run_dir, token)             # FastAPI app (queue, applicant page, form, CSV, API)
    serve(run_dir)                               # the same on 127.0.0.1 with uvicorn
    report = verify_run(run_dir)                 # report.ok, report.problems
    review_overrides(run_dir)                    # human overrides, for the next global report
"""

from pipeline import lazy_getattr

from ._export import csv_safe, reviews_csv
from ._store import (
    OUTCOME_LABELS,
    REVIEW_DIR,
    Outcome,
    Review,
    ReviewStore,
    ReviewValidationError,
    review_overrides,
    validate_review,
)
from ._verify import VerifyReport, verify_run

# The app and the run loader import pandas, torch (through pipeline) and FastAPI: loaded on first use,
# so the store, the trail and their writers stay light for other processes and tools.
_LAZY = {
    "create_app": "._app",
    "ReviewRun": "._run",
    "load_review_run": "._run",
    "serve": "._server",
    "check_loopback": "._server",
}

__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "OUTCOME_LABELS",
    "REVIEW_DIR",
    "Outcome",
    "Review",
    "ReviewRun",
    "ReviewStore",
    "ReviewValidationError",
    "VerifyReport",
    "check_loopback",
    "create_app",
    "csv_safe",
    "load_review_run",
    "review_overrides",
    "reviews_csv",
    "serve",
    "validate_review",
    "verify_run",
]
