"""Review decisions: validated, signed, and stored with their trail entry and checkpoint in one transaction.

A review is never updated or deleted: every save is a new row (and a new
trail entry) naming the authenticated account and its role, and an
applicant's state is derived from their entries (_decisions.py: a
proposal, an approval by a second person, a rejection). So two reviewers
saving at once both land, and the history shows who decided what and when.
The store records the account it is given: the app and the commands
authenticate (_auth.py, _accounts.py); the store enforces the roles and the
four-eyes rule, inside the write's transaction. The database defaults to
SQLite beside the run (`<run>/review/reviews.sqlite`, WAL mode); a server
database is given by its SQLAlchemy URL (`--db` or $CREDIT_AUDIT_REVIEW_DB),
PostgreSQL through psycopg 3. What differs between the two (schemas, locks,
isolation, integer widths) is in _database.py; the code here is the same for both.

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

from ._accounts import Account
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
from ._decisions import Action, ApplicantState, fold
from ._trail import Entry, Trail, seal

REVIEW_DIR = "review"
DB_FILE = "reviews.sqlite"
TRAIL_FILE = "trail.jsonl"
DB_ENV = "CREDIT_AUDIT_REVIEW_DB"

REVIEWER_MAX = 80
REASON_MIN, REASON_MAX = 10, 2000
MSG_OUTCOME = "outcome must be one of {expected}, got {got!r}"
MSG_NOT_ACCOUNT = "a review is recorded under an authenticated account (review._accounts.Account), got {got!r}"
MSG_CANNOT_PROPOSE = "{name} has the role {role}: only analysts and approvers record reviews"
MSG_CANNOT_APPROVE = "{name} has the role {role}: only approvers approve or reject a proposal"
MSG_SELF_APPROVAL = "four eyes: review #{seq} was proposed by {name}; a second, different approver must approve it"
MSG_NOT_PENDING = "review #{seq} is not a proposal awaiting approval (it is {status})"
MSG_NO_REVIEW = "there is no review #{seq} in this run"
MSG_NEWER = "{n} review(s) of applicant {applicant} were saved since you opened the page (#{seqs}): read them first"
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


class ReviewRefused(PermissionError):
    """The account may not do this (its role, or the four-eyes rule); nothing was written."""


class ReviewConflict(ValueError):
    """The applicant's reviews changed under the writer (or the target is no longer pending); nothing was written."""


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
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    action: Mapped[str | None] = mapped_column(String(16), nullable=True)
    target: Mapped[int | None] = mapped_column(BigId, nullable=True)
    notice: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: the notice re-issued by this review

    def entry(self) -> Entry:
        return Entry(self.seq, self.prev_hash, record_of(self), self.entry_hash, self.key_id, self.signature)


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


BASE_FIELDS = ("run_id", "applicant_id", "model_decision", "outcome", "reason", "reviewer", "created")
# Written since reviewers have accounts; absent (not null) from the hashed record of older entries and of
# proposals (no target), so every entry's hash stays what it was when it was sealed.
AUTH_FIELDS = ("role", "action", "target")
RECORD_FIELDS = BASE_FIELDS + AUTH_FIELDS
NOTICE_FIELD = "notice"  # optional: {version, path, sha256, previous_path, previous_sha256, replaces, addendum}
# Called where a decision takes effect, under the trail's lock, before the commit:
# (record, signer, the applicant's earlier reviews) -> the entry's `notice` field, or None.
EffectHook = Callable[[dict, "Signer | None", "list[Review]"], "dict | None"]


def record_of(obj: object) -> dict:
    """The hashed record of a row or review: the base fields, the account fields that are set, and
    `notice` only when the entry re-issued one (so older entries' hashes hold)."""
    record = {k: getattr(obj, k) for k in BASE_FIELDS}
    record |= {k: v for k in AUTH_FIELDS if (v := getattr(obj, k)) is not None}
    notice = getattr(obj, NOTICE_FIELD)
    if notice is not None:
        record[NOTICE_FIELD] = json.loads(notice) if isinstance(notice, str) else notice
    return record


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
    role: str | None = None
    action: str | None = None  # propose / approve / reject (None: written before accounts, took effect)
    target: int | None = None  # the proposal an approval or a rejection is about
    notice: dict | None = field(default=None, compare=False)

    @property
    def final_decision(self) -> str:
        """approve / decline as proposed, or `pending` while information is awaited (in effect or not: fold)."""
        return {
            Outcome.OVERRIDE_APPROVE: "approve",
            Outcome.OVERRIDE_DECLINE: "decline",
            Outcome.NEEDS_INFORMATION: "pending",
        }.get(self.outcome, self.model_decision)

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS.get(self.outcome, self.outcome)

    def record(self) -> dict:
        return record_of(self)

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


def validate_reason(reason: object) -> str:
    """The cleaned reason, or ReviewValidationError (every action carries a written reason)."""
    try:
        why = _clean(reason, keep_newlines=True)
        if not REASON_MIN <= len(why) <= REASON_MAX:
            raise ValueError("length")
    except ValueError:
        raise ReviewValidationError({"reason": MSG_REASON}) from None
    return why


def validate_review(outcome: object, reason: object, model_decision: str) -> dict[str, str]:
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
        clean["reason"] = validate_reason(reason)
    except ReviewValidationError as exc:
        errors |= exc.errors
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
    """Add the signature, account and notice columns to a reviews table written before reviews had them."""
    have = {c["name"] for c in inspect(engine).get_columns(ReviewRow.__tablename__, schema=schema_of(engine))}
    with engine.begin() as conn:
        for name, ddl in (("key_id", "VARCHAR(64)"), ("signature", "TEXT"), ("role", "VARCHAR(16)"),
                          ("action", "VARCHAR(16)"), ("target", "INTEGER"), ("notice", "TEXT")):
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
        by: Account,
        seen_seq: int | None = None,
        now: datetime | None = None,
    ) -> Review:
        """Record `by`'s proposal for one applicant; it takes effect at once unless it needs a second person.

        `seen_seq` is the newest entry of this applicant the writer has seen (the page it read):
        if newer entries exist, ReviewConflict and nothing is written, so a review is never
        saved blind over another one. ReviewRefused for an account that may not propose.
        """
        _account(by)
        if not by.can_propose:
            raise ReviewRefused(MSG_CANNOT_PROPOSE.format(name=by.name, role=by.role))
        clean = validate_review(outcome, reason, model_decision)
        record = {
            "run_id": self.run_id,
            "applicant_id": int(applicant_id),
            "model_decision": str(model_decision),
            "outcome": clean["outcome"],
            "reason": clean["reason"],
            "reviewer": by.name,
            "created": _now(now),
            "role": str(by.role),
            "action": str(Action.PROPOSE),
        }

        def checked(session: Session) -> dict:
            if seen_seq is not None:
                newer = _applicant_rows(session, record["applicant_id"], after=seen_seq)
                if newer:
                    raise ReviewConflict(MSG_NEWER.format(n=len(newer), applicant=record["applicant_id"],
                                                          seqs=", #".join(str(r.seq) for r in newer)))
            return record

        return self._write(checked)

    def approve(self, seq: int, reason: object, by: Account, now: datetime | None = None) -> Review:
        """A second approver puts proposal `seq` in effect (ReviewRefused for the proposer or a non-approver)."""
        return self._decide(Action.APPROVE, seq, reason, by, now)

    def reject(self, seq: int, reason: object, by: Account, now: datetime | None = None) -> Review:
        """An approver turns proposal `seq` down; what was in effect stays in effect."""
        return self._decide(Action.REJECT, seq, reason, by, now)

    def _decide(self, action: Action, seq: int, reason: object, by: Account, now: datetime | None) -> Review:
        _account(by)
        if not by.can_approve:
            raise ReviewRefused(MSG_CANNOT_APPROVE.format(name=by.name, role=by.role))
        why = validate_reason(reason)

        def checked(session: Session) -> dict:
            target = session.get(ReviewRow, int(seq))
            if target is None:
                raise ReviewConflict(MSG_NO_REVIEW.format(seq=seq))
            state = fold(Review.from_row(r) for r in _applicant_rows(session, target.applicant_id))[target.applicant_id]
            if target.seq not in state.pending:
                status = state.status.get(target.seq, "not a proposal")
                raise ReviewConflict(MSG_NOT_PENDING.format(seq=target.seq, status=status))
            if action == Action.APPROVE and target.reviewer == by.name:
                raise ReviewRefused(MSG_SELF_APPROVAL.format(seq=target.seq, name=target.reviewer))
            return {
                "run_id": self.run_id, "applicant_id": target.applicant_id, "model_decision": target.model_decision,
                "outcome": target.outcome, "reason": why, "reviewer": by.name, "created": _now(now),
                "role": str(by.role), "action": str(action), "target": target.seq,
            }

        return self._write(checked)

    def _write(self, make_record: Callable[[Session], dict]) -> Review:
        """Commit the signed entry row and its checkpoint in one transaction; export; report a decision in effect.

        `make_record` builds (and checks) the record inside the transaction, against the
        entries as they are then. Writers of one run are ordered by the trail's lock; on a
        server database shared by several hosts the primary key on `seq` orders them (a
        lost race is retried, the checks included).
        """
        signer = self.signer()  # before anything is written: no key, no write (unless unsigned was asked for)
        reissued: dict = {}  # the notice this entry re-issued: once, even when a commit is retried
        for _ in range(WRITE_TRIES):
            with self.trail.locked():
                try:
                    entry = self._commit(make_record, signer, reissued)
                except IntegrityError:  # another host's writer took this seq (a server database): next one
                    continue
                self._export()
                saved = Review(seq=entry.seq, entry_hash=entry.hash, **entry.record)
                state = self.state(saved.applicant_id)  # as this entry left it, before any later writer
            if state.took_effect_at is not None and state.took_effect_at.seq == saved.seq:
                self.effective_decision_taken(state)
            return saved
        raise RuntimeError(MSG_SEQ_TAKEN.format(tries=WRITE_TRIES))

    def effective_decision_taken(self, state: ApplicantState) -> None:
        """THE point where a reviewed decision takes effect (called once per such entry, after its commit).

        `state.in_effect` is the proposal now in effect, `state.approval` the second person's
        approval (None when it took effect directly), `state.final_decision` the decision.
        What must be bound into the entry itself (the re-issued notice's hashes) is done before
        the commit, by `_with_notice` under the same rule (`took_effect_at` is this entry);
        anything that may follow the commit hangs here.
        """
        log.info("review #%s of applicant %s in effect: %s", state.took_effect_at.seq, state.applicant_id,
                 state.final_decision)

    def _with_notice(self, session: Session, record: dict, seq: int, signer: Signer | None,
                     reissued: dict) -> dict:
        """The record with its `notice` when entry `seq` puts a decision in effect (else as it is).

        The notice is re-issued before the commit, inside the write's transaction, so the signed
        entry binds the new file's hash; a proposal that waits for a second person re-issues
        nothing, its approval does.
        """
        if self.on_effect is None:
            return record
        earlier = [Review.from_row(r) for r in _applicant_rows(session, record["applicant_id"])]
        state = fold([*earlier, Review(seq=seq, entry_hash="", **record)])[record["applicant_id"]]
        if state.took_effect_at is None or state.took_effect_at.seq != seq:
            return record
        if "notice" not in reissued:
            reissued["notice"] = self.on_effect(record, signer, earlier)
        notice = reissued["notice"]
        return record if notice is None else {**record, NOTICE_FIELD: notice}

    def _commit(self, make_record: Callable[[Session], dict], signer: Signer | None, reissued: dict) -> Entry:
        """One transaction: the next chained (signed) entry as a row, and the signed checkpoint of the new head."""
        with Session(self.engine) as session, session.begin():
            lock_writers(session)  # PostgreSQL: this run's writers on every host, one after the other
            self._check_key(session, signer)
            record = make_record(session)
            last = self._last(session)
            self._check_run(last)
            seq, prev = (last.seq, last.entry_hash) if last else (0, genesis(self.run_id))
            record = self._with_notice(session, record, seq + 1, signer, reissued)
            entry = seal(seq + 1, prev, record).signed(signer)
            notice = record.get(NOTICE_FIELD)
            session.add(
                ReviewRow(seq=entry.seq, prev_hash=entry.prev, entry_hash=entry.hash, key_id=entry.key_id,
                          signature=entry.signature, notice=None if notice is None else json.dumps(notice),
                          **{k: record.get(k) for k in RECORD_FIELDS})
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

    def review(self, seq: int) -> Review | None:
        """One entry by its sequence number (an approval form names the proposal it decides)."""
        found = self._select(ReviewRow.seq == int(seq))
        return found[0] if found else None

    def all(self) -> list[Review]:
        return self._select()

    def history(self, applicant_id: int) -> list[Review]:
        return self._select(ReviewRow.applicant_id == int(applicant_id))

    def latest(self) -> dict[int, ApplicantState]:
        """Each reviewed applicant's state: the review in effect and the proposals awaiting approval."""
        return fold(self.all())

    def state(self, applicant_id: int) -> ApplicantState:
        """One applicant's state (an empty one when never reviewed)."""
        states = fold(self.history(applicant_id))
        return states.get(int(applicant_id)) or ApplicantState(int(applicant_id), "")

    def rows(self) -> list[ReviewRow]:
        """Raw rows, with their stored prev/entry hashes, for verification."""
        with Session(self.engine) as session:
            rows = session.scalars(select(ReviewRow).order_by(ReviewRow.seq)).all()
            session.expunge_all()
            return list(rows)


def _now(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="microseconds")


def _account(by: object) -> Account:
    if not isinstance(by, Account):  # a typed name is not an identity
        raise TypeError(MSG_NOT_ACCOUNT.format(got=by))
    return by


def _applicant_rows(session: Session, applicant_id: int, after: int = 0) -> list[ReviewRow]:
    where = (ReviewRow.applicant_id == int(applicant_id), ReviewRow.seq > after)
    return list(session.scalars(select(ReviewRow).where(*where).order_by(ReviewRow.seq)))


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
    """Applicants whose override of the model is in effect (approved by a second person), for the next report.

    Each item: applicant_id, model_decision, final_decision, outcome, outcome_label,
    reviewer ("proposer, approved by approver"), reason (the proposal's), created (when it
    took effect), seq (the proposal). Pending and rejected overrides are not listed.
    Empty when the run has no reviews yet.
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
            "applicant_id": s.applicant_id,
            "model_decision": s.in_effect.model_decision,
            "final_decision": s.in_effect.final_decision,
            "outcome": s.in_effect.outcome,
            "outcome_label": s.in_effect.outcome_label,
            "reviewer": s.reviewer,
            "reason": s.in_effect.reason,
            "created": s.took_effect_at.created,
            "seq": s.in_effect.seq,
        }
        for s in sorted(latest.values(), key=lambda s: s.applicant_id)
        if s.in_effect is not None and s.in_effect.outcome in overrides
    ]
