"""Review decisions: validated, signed, and stored with their trail entry and checkpoint in one transaction.

A review is never updated or deleted: every save is a new row (and a new
trail entry), and an applicant's current state is their latest review. So
two reviewers saving at once both land, and the history shows who decided
what and when. The database defaults to SQLite beside the run
(`<run>/review/reviews.sqlite`, WAL mode); a server database is given by its
SQLAlchemy URL (`--db` or $CREDIT_AUDIT_REVIEW_DB), PostgreSQL through psycopg 3.
What differs between the two (schemas, locks, isolation, integer widths) is in
_database.py; the code here is the same for both.

The database row *is* the trail entry (seq, prev hash, entry hash,
signature), and the signed checkpoint of the new chain head is inserted in
the same transaction: a crash leaves both or neither, never one without the
other. `trail.jsonl` is exported from the database after the commit (see
_trail.py). The first signed write binds the trail to its key
(`trail_key`); a write with another key, or unsigned, is then refused.

Where a decision takes effect, the store calls its `on_effect` hook (the
review app passes review/_reissue.py's NoticeReissuer) under the trail's lock
before the commit; what it returns (the re-issued notice's path and hashes)
is the entry's optional `notice` field, so the signed entry binds the files.
"""

from __future__ import annotations

import json
import logging
import os
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from sqlalchemy import Engine, String, Text, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from pipeline.checkpoint import Checkpoint, genesis, manifest_digest
from pipeline.run_record import load_record
from pipeline.signing import PublicKey, Signer, b64, resolve_signer

from ._database import (
    BigId,
    ReviewDatabaseError,
    create_tables,
    engine_for,
    lock_writers,
    qualified,
    reaching,
    schema_of,
    shown,
)
from ._trail import Entry, Trail, seal

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
MSG_SIGNED_TRAIL = (
    "this run's review trail is signed with key {key_id}: an unsigned review cannot be added to it "
    "(start the review app with that key's keystore)"
)
MSG_OTHER_KEY = "this run's review trail is signed with key {bound}, not with key {given}: use the keystore that holds it"
MSG_OTHER_RUN = (
    "the review database {url} holds the reviews of run {other}, not of run {run}: give each run its own SQLite "
    "file (on PostgreSQL each run has a schema of its own)"
)
MSG_SEQ_TAKEN = "the review was not saved: {tries} times in a row another writer took the next sequence number; try again"
WRITE_TRIES = 5
log = logging.getLogger(__name__)


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
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    run_id: Mapped[str] = mapped_column(String(100))
    applicant_id: Mapped[int] = mapped_column(BigId, index=True)
    model_decision: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(REVIEWER_MAX))
    created: Mapped[str] = mapped_column(String(40))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    signature: Mapped[str | None] = mapped_column(Text, nullable=True)
    notice: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: the notice re-issued by this review

    def record(self) -> dict:
        """The trail record: the fields, and `notice` only when this review re-issued one (older hashes hold)."""
        record = {k: getattr(self, k) for k in RECORD_FIELDS}
        if self.notice is not None:
            record[NOTICE_FIELD] = json.loads(self.notice)
        return record

    def entry(self) -> Entry:
        return Entry(self.seq, self.prev_hash, self.record(), self.entry_hash, self.key_id, self.signature)


class CheckpointRow(_Base):
    """The signed checkpoint of the chain head after each write (pipeline.checkpoint)."""

    __tablename__ = "checkpoints"
    trail_count: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    trail_head: Mapped[str] = mapped_column(String(64))
    manifest_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    time: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)

    def checkpoint(self, run_id: str) -> Checkpoint:
        return Checkpoint(
            run_id=run_id, manifest_sha256=self.manifest_sha256, trail_count=self.trail_count,
            trail_head=self.trail_head, time=self.time, key_id=self.key_id, public_key=self.public_key,
            signature=self.signature,
        )


class TrailKeyRow(_Base):
    """The public key the trail was bound to by its first signed write."""

    __tablename__ = "trail_key"
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))
    bound: Mapped[str] = mapped_column(String(40))


class TrailKeyError(ValueError):
    """A write whose signing (or lack of it) does not match the key the trail is bound to."""


RECORD_FIELDS = ("run_id", "applicant_id", "model_decision", "outcome", "reason", "reviewer", "created")
NOTICE_FIELD = "notice"  # optional: {version, path, sha256, previous_path, previous_sha256, replaces, addendum}
# Called where a decision takes effect, under the trail's lock, before the commit:
# (record, signer, the applicant's earlier reviews) -> the entry's `notice` field, or None.
EffectHook = Callable[[dict, "Signer | None", "list[Review]"], "dict | None"]


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
    notice: dict | None = field(default=None, compare=False)

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
        record = {k: getattr(self, k) for k in RECORD_FIELDS}
        return record if self.notice is None else {**record, NOTICE_FIELD: self.notice}

    @classmethod
    def from_row(cls, row: ReviewRow) -> Review:
        return cls(**{k: getattr(row, k) for k in ("seq", *RECORD_FIELDS, "entry_hash")},
                   notice=None if row.notice is None else json.loads(row.notice))


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
    return given_db_url() or f"sqlite:///{(review_dir(run_dir) / DB_FILE).resolve()}"


def run_id_of(run_dir: str | Path) -> str:
    audit = Path(run_dir) / "audit.json"
    if not audit.is_file():
        raise FileNotFoundError(MSG_NOT_RUN.format(path=run_dir))
    return load_record(run_dir).run_id


def given_db_url(db_url: str | None = None) -> str | None:
    """The database URL asked for (`--db`, then $CREDIT_AUDIT_REVIEW_DB); None means the SQLite file beside the run."""
    return db_url or os.environ.get(DB_ENV) or None


def _upgrade(engine: Engine) -> None:
    """Add the signature columns to a reviews table written before reviews were signed."""
    have = {c["name"] for c in inspect(engine).get_columns(ReviewRow.__tablename__, schema=schema_of(engine))}
    with engine.begin() as conn:
        for name, ddl in (("key_id", "VARCHAR(64)"), ("signature", "TEXT"), ("notice", "TEXT")):
            if name not in have:
                conn.execute(text(f"ALTER TABLE {qualified(engine, ReviewRow.__tablename__)} ADD COLUMN {name} {ddl}"))


class ReviewStore:
    """The reviews of one run: rows, trail entries and checkpoints in the database, exported to trail.jsonl.

    `signer` signs every write; without one, the keystore's key is used (pipeline.signing's
    policy: NoSigningKey unless `unsigned`). Reading needs no key.
    """

    def __init__(
        self,
        run_dir: str | Path,
        db_url: str | None = None,
        run_id: str | None = None,
        signer: Signer | None = None,
        unsigned: bool = False,
        keystore: str | Path | None = None,
        on_effect: EffectHook | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.on_effect = on_effect
        self.run_id = run_id or run_id_of(self.run_dir)
        review_dir(self.run_dir).mkdir(parents=True, exist_ok=True)
        self.db_url = db_url or default_db_url(self.run_dir)
        self.engine = engine_for(self.db_url, self.run_id)
        self.trail = Trail(review_dir(self.run_dir) / TRAIL_FILE, self.run_id)
        self._signer, self._unsigned, self._keystore = signer, unsigned, keystore
        self._resolved = signer is not None
        with self.trail.locked():  # two reviewers opening a new store at once would both CREATE TABLE
            create_tables(self.engine, _Base.metadata)
            _upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def signer(self) -> Signer | None:
        """The key writes are signed with (resolved once; raises NoSigningKey under the keystore policy)."""
        if not self._resolved:
            self._signer = resolve_signer(self._keystore, self._unsigned, self.run_dir)
            self._resolved = True
        return self._signer

    def prepare_writes(self) -> Signer | None:
        """Resolve the signer and check it against the trail's key now, so an app refuses to start, not to save."""
        signer = self.signer()
        with Session(self.engine) as session, session.no_autoflush:  # checks only: the key row is added by a write
            self._check_run(self._last(session))
            self._check_key(session, signer)
        return signer

    def _last(self, session: Session) -> ReviewRow | None:
        return session.scalars(select(ReviewRow).order_by(ReviewRow.seq.desc()).limit(1)).first()

    def _check_run(self, last: ReviewRow | None) -> None:
        """Refuse to chain onto another run's trail (one database URL given to several runs)."""
        if last is not None and last.run_id != self.run_id:
            raise ReviewDatabaseError(MSG_OTHER_RUN.format(url=shown(self.db_url), other=last.run_id, run=self.run_id))

    def _check_key(self, session: Session, signer: Signer | None) -> None:
        bound = session.scalars(select(TrailKeyRow)).first()
        if bound is None:
            if signer is not None:
                session.add(TrailKeyRow(key_id=signer.key_id, public_key=b64(signer.public.raw), bound=_now()))
        elif signer is None:
            raise TrailKeyError(MSG_SIGNED_TRAIL.format(key_id=bound.key_id))
        elif bound.key_id != signer.key_id:
            raise TrailKeyError(MSG_OTHER_KEY.format(bound=bound.key_id, given=signer.key_id))

    def save(
        self,
        applicant_id: int,
        model_decision: str,
        outcome: object,
        reason: object,
        reviewer: object,
        now: datetime | None = None,
    ) -> Review:
        """Validate; commit the signed entry row and its checkpoint in one transaction; export; return the review.

        Writers of one run are ordered by the trail's lock on one host and, on PostgreSQL, by an
        advisory lock across hosts; on any other server the primary key on `seq` decides (a lost
        race is retried).
        """
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
        signer = self.signer()  # before anything is written: no key, no write (unless unsigned was asked for)
        for _ in range(WRITE_TRIES):
            with self.trail.locked():
                if self.on_effect is not None and NOTICE_FIELD not in record:  # once, even when a commit is retried
                    notice = self.on_effect(record, signer, self.history(applicant_id))
                    record = record if notice is None else {**record, NOTICE_FIELD: notice}
                try:
                    entry = self._commit(record, signer)
                except IntegrityError:  # another host's writer took this seq (a server database): next one
                    continue
                self._export()
            return Review(seq=entry.seq, entry_hash=entry.hash, **{k: record[k] for k in RECORD_FIELDS},
                          notice=record.get(NOTICE_FIELD))
        raise RuntimeError(MSG_SEQ_TAKEN.format(tries=WRITE_TRIES))

    def _commit(self, record: dict, signer: Signer | None) -> Entry:
        """One transaction: the next chained (signed) entry as a row, and the signed checkpoint of the new head."""
        with Session(self.engine) as session, session.begin():
            lock_writers(session)  # PostgreSQL: this run's writers on every host, one after the other
            self._check_key(session, signer)
            last = self._last(session)
            self._check_run(last)
            seq, prev = (last.seq, last.entry_hash) if last else (0, genesis(self.run_id))
            entry = seal(seq + 1, prev, record).signed(signer)
            notice = record.get(NOTICE_FIELD)
            session.add(
                ReviewRow(seq=entry.seq, prev_hash=entry.prev, entry_hash=entry.hash, key_id=entry.key_id,
                          signature=entry.signature, notice=None if notice is None else json.dumps(notice),
                          **{k: record[k] for k in RECORD_FIELDS})
            )
            if signer is not None:
                cp = Checkpoint.sign(signer, self.run_id, manifest_digest(self.run_dir), entry.seq, entry.hash,
                                     time=record["created"])
                session.add(
                    CheckpointRow(trail_count=cp.trail_count, trail_head=cp.trail_head,
                                  manifest_sha256=cp.manifest_sha256, time=cp.time, key_id=cp.key_id,
                                  public_key=cp.public_key, signature=cp.signature)
                )
        return entry

    def _export(self) -> list[str]:
        """Bring trail.jsonl up to the database (after a commit, under the lock); never fails the write."""
        try:
            return self.trail.catch_up(self.entries_after)
        except (OSError, ValueError) as exc:
            log.warning("review committed, but trail.jsonl could not be updated (verify --repair will): %s", exc)
            return []

    def entries_after(self, seq: int) -> list[Entry]:
        """The database's trail entries with a higher sequence number, in order."""
        with Session(self.engine) as session:
            rows = session.scalars(select(ReviewRow).where(ReviewRow.seq > seq).order_by(ReviewRow.seq)).all()
            return [r.entry() for r in rows]

    def entries(self) -> list[Entry]:
        return self.entries_after(0)

    def checkpoints(self) -> list[Checkpoint]:
        """Every stored checkpoint, oldest first."""
        with Session(self.engine) as session:
            rows = session.scalars(select(CheckpointRow).order_by(CheckpointRow.trail_count)).all()
            return [r.checkpoint(self.run_id) for r in rows]

    def trail_key(self) -> PublicKey | None:
        """The public key the trail is bound to, None for an unsigned trail."""
        with Session(self.engine) as session:
            bound = session.scalars(select(TrailKeyRow)).first()
            return PublicKey.from_b64(bound.public_key) if bound else None

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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def trail_head(run_dir: str | Path, db_url: str | None = None) -> tuple[int, str]:
    """(entry count, head hash) of the run's trail, (0, genesis) when it has none; creates nothing."""
    run_id = run_id_of(run_dir)
    url = given_db_url(db_url)
    if url is None and not (review_dir(run_dir) / DB_FILE).exists():
        return 0, genesis(run_id)
    engine = engine_for(url or default_db_url(run_dir), run_id)
    try:
        with reaching(engine):
            if not inspect(engine).has_table(ReviewRow.__tablename__, schema=schema_of(engine)):
                return 0, genesis(run_id)
            with Session(engine) as session:
                last = session.scalars(select(ReviewRow).order_by(ReviewRow.seq.desc()).limit(1)).first()
                return (last.seq, last.entry_hash) if last else (0, genesis(run_id))
    finally:
        engine.dispose()


def review_overrides(run_dir: str | Path, db_url: str | None = None) -> list[dict]:
    """Applicants whose current review overrides the model, for the next global report.

    Each item: applicant_id, model_decision, final_decision, outcome, outcome_label,
    reviewer, reason, created, seq. Empty when the run has no reviews yet.
    """
    url = given_db_url(db_url)
    if trail_head(run_dir, url)[0] == 0:  # no reviews: asked without creating a store (file, schema or folder)
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
