"""Review decisions: validated, stored through SQLAlchemy, and sealed in the hash-chained trail.

A review is never updated or deleted: every save is a new row (and a new
trail entry), and an applicant's current state is their latest review. So
two reviewers saving at once both land, and the history shows who decided
what and when. The database defaults to SQLite beside the run
(`<run>/review/reviews.sqlite`, WAL mode); any SQLAlchemy URL can be given
instead (`--db` or $CREDIT_AUDIT_REVIEW_DB) for a server database.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from sqlalchemy import Engine, Integer, String, Text, create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from pipeline.run_record import load_record

from ._trail import Trail

REVIEW_DIR = "review"
DB_FILE = "reviews.sqlite"
TRAIL_FILE = "trail.jsonl"
DB_ENV = "CREDIT_AUDIT_REVIEW_DB"

REVIEWER_MIN, REVIEWER_MAX = 2, 80
REASON_MIN, REASON_MAX = 10, 2000
MSG_OUTCOME = "outcome must be one of {expected}, got {got!r}"
MSG_REVIEWER = f"reviewer name must be {REVIEWER_MIN} to {REVIEWER_MAX} characters without control characters"
MSG_REASON = f"a written reason of {REASON_MIN} to {REASON_MAX} characters is required"
MSG_OVERRIDE = "an override to {target} only applies when the model decided {opposite}; the model decided {got}"
MSG_NOT_RUN = "{path}: not a run directory (audit.json is missing)"


class Outcome(StrEnum):
    CONFIRM = "confirm"
    OVERRIDE_APPROVE = "override_approve"
    OVERRIDE_DECLINE = "override_decline"
    NEEDS_INFORMATION = "needs_information"


OUTCOME_LABELS: Mapping[str, str] = MappingProxyType(
    {
        Outcome.CONFIRM: "Confirm the model's decision",
        Outcome.OVERRIDE_APPROVE: "Override: approve",
        Outcome.OVERRIDE_DECLINE: "Override: decline",
        Outcome.NEEDS_INFORMATION: "Needs more information",
    }
)


class ReviewValidationError(ValueError):
    """The submitted review is not acceptable; `errors` maps each form field to what is wrong."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class _Base(DeclarativeBase):
    pass


class ReviewRow(_Base):
    """One saved review; `seq` and `entry_hash` tie it to its trail entry."""

    __tablename__ = "reviews"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    run_id: Mapped[str] = mapped_column(String(100))
    applicant_id: Mapped[int] = mapped_column(Integer, index=True)
    model_decision: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(REVIEWER_MAX))
    created: Mapped[str] = mapped_column(String(40))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


RECORD_FIELDS = ("run_id", "applicant_id", "model_decision", "outcome", "reason", "reviewer", "created")


@dataclass(frozen=True)
class Review:
    """A saved review as the app, the export and the report read it."""

    seq: int
    run_id: str
    applicant_id: int
    model_decision: str
    outcome: str
    reason: str
    reviewer: str
    created: str
    entry_hash: str

    @property
    def final_decision(self) -> str:
        """approve / decline after the review, or `pending` while information is awaited."""
        return {
            Outcome.OVERRIDE_APPROVE: "approve",
            Outcome.OVERRIDE_DECLINE: "decline",
            Outcome.NEEDS_INFORMATION: "pending",
        }.get(self.outcome, self.model_decision)

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS.get(self.outcome, self.outcome)

    def record(self) -> dict:
        return {k: getattr(self, k) for k in RECORD_FIELDS}

    @classmethod
    def from_row(cls, row: ReviewRow) -> Review:
        return cls(**{k: getattr(row, k) for k in ("seq", *RECORD_FIELDS, "entry_hash")})


def _clean(text: object, keep_newlines: bool) -> str:
    s = str(text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    allowed = {"\n", "\t"} if keep_newlines else set()
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") and ch not in allowed for ch in s):
        raise ValueError("control characters")
    return s


def validate_review(outcome: object, reason: object, reviewer: object, model_decision: str) -> dict[str, str]:
    """The cleaned fields, or ReviewValidationError naming every bad field."""
    errors: dict[str, str] = {}
    clean: dict[str, str] = {}
    if outcome not in set(Outcome):
        errors["outcome"] = MSG_OUTCOME.format(expected=[str(o) for o in Outcome], got=outcome)
    else:
        clean["outcome"] = str(outcome)
        target = {Outcome.OVERRIDE_APPROVE: "approve", Outcome.OVERRIDE_DECLINE: "decline"}.get(outcome)
        if target is not None and model_decision == target:
            opposite = "decline" if target == "approve" else "approve"
            errors["outcome"] = MSG_OVERRIDE.format(target=target, opposite=opposite, got=model_decision)
    try:
        name = _clean(reviewer, keep_newlines=False)
        if not REVIEWER_MIN <= len(name) <= REVIEWER_MAX:
            raise ValueError("length")
        clean["reviewer"] = name
    except ValueError:
        errors["reviewer"] = MSG_REVIEWER
    try:
        why = _clean(reason, keep_newlines=True)
        if not REASON_MIN <= len(why) <= REASON_MAX:
            raise ValueError("length")
        clean["reason"] = why
    except ValueError:
        errors["reason"] = MSG_REASON
    if errors:
        raise ReviewValidationError(errors)
    return clean


def review_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / REVIEW_DIR


def default_db_url(run_dir: str | Path) -> str:
    return os.environ.get(DB_ENV) or f"sqlite:///{(review_dir(run_dir) / DB_FILE).resolve()}"


def run_id_of(run_dir: str | Path) -> str:
    audit = Path(run_dir) / "audit.json"
    if not audit.is_file():
        raise FileNotFoundError(MSG_NOT_RUN.format(path=run_dir))
    return load_record(run_dir).run_id


def _engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(conn, _record) -> None:  # noqa: ANN001 - DBAPI connection
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    return engine


class ReviewStore:
    """The reviews of one run: the database plus the trail, written together under one lock."""

    def __init__(self, run_dir: str | Path, db_url: str | None = None, run_id: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.run_id = run_id or run_id_of(self.run_dir)
        review_dir(self.run_dir).mkdir(parents=True, exist_ok=True)
        self.db_url = db_url or default_db_url(self.run_dir)
        self.engine = _engine(self.db_url)
        self.trail = Trail(review_dir(self.run_dir) / TRAIL_FILE, self.run_id)
        with self.trail.locked():  # two reviewers opening a new store at once would both CREATE TABLE
            _Base.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def save(
        self,
        applicant_id: int,
        model_decision: str,
        outcome: object,
        reason: object,
        reviewer: object,
        now: datetime | None = None,
    ) -> Review:
        """Validate, then append to the trail and insert the row in one locked step; returns the saved review."""
        clean = validate_review(outcome, reason, reviewer, model_decision)
        record = {
            "run_id": self.run_id,
            "applicant_id": int(applicant_id),
            "model_decision": str(model_decision),
            "outcome": clean["outcome"],
            "reason": clean["reason"],
            "reviewer": clean["reviewer"],
            "created": (now or datetime.now(UTC)).isoformat(timespec="microseconds"),
        }
        with self.trail.locked():
            entry = self.trail.seal(record)
            with Session(self.engine) as session, session.begin():
                session.add(ReviewRow(seq=entry.seq, prev_hash=entry.prev, entry_hash=entry.hash, **record))
                session.flush()  # a database refusal stops here, before the trail is written
                self.trail.write(entry)
        return Review(seq=entry.seq, entry_hash=entry.hash, **record)

    def _select(self, *where) -> list[Review]:  # noqa: ANN002 - SQLAlchemy clauses
        with Session(self.engine) as session:
            rows = session.scalars(select(ReviewRow).where(*where).order_by(ReviewRow.seq)).all()
            return [Review.from_row(r) for r in rows]

    def all(self) -> list[Review]:
        return self._select()

    def history(self, applicant_id: int) -> list[Review]:
        return self._select(ReviewRow.applicant_id == int(applicant_id))

    def latest(self) -> dict[int, Review]:
        """Each reviewed applicant's current (newest) review."""
        return {r.applicant_id: r for r in self.all()}

    def rows(self) -> list[ReviewRow]:
        """Raw rows, with their stored prev/entry hashes, for verification."""
        with Session(self.engine) as session:
            rows = session.scalars(select(ReviewRow).order_by(ReviewRow.seq)).all()
            session.expunge_all()
            return list(rows)


def review_overrides(run_dir: str | Path, db_url: str | None = None) -> list[dict]:
    """Applicants whose current review overrides the model, for the next global report.

    Each item: applicant_id, model_decision, final_decision, outcome, outcome_label,
    reviewer, reason, created, seq. Empty when the run has no reviews yet.
    """
    url = db_url or os.environ.get(DB_ENV)
    if url is None and not (review_dir(run_dir) / DB_FILE).exists():
        return []
    store = ReviewStore(run_dir, db_url=url)
    try:
        latest = store.latest()
    finally:
        store.close()
    overrides = (Outcome.OVERRIDE_APPROVE, Outcome.OVERRIDE_DECLINE)
    return [
        {
            "applicant_id": r.applicant_id,
            "model_decision": r.model_decision,
            "final_decision": r.final_decision,
            "outcome": r.outcome,
            "outcome_label": r.outcome_label,
            "reviewer": r.reviewer,
            "reason": r.reason,
            "created": r.created,
            "seq": r.seq,
        }
        for r in sorted(latest.values(), key=lambda r: r.applicant_id)
        if r.outcome in overrides
    ]
