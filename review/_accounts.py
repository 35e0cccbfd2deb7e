"""Reviewer accounts: who may sign in, with which role, and the state of their sign-ins and sessions.

Accounts are made by the operator (`credit-audit users add NAME --role ...`),
never by the app, and they outlive any one run: a bank reviews every run
with the same staff. They live in the *users database*:

1. `--users-db URL` (or $CREDIT_AUDIT_USERS_DB), when given;
2. else the review database, when that is a server database (`--db` or
   $CREDIT_AUDIT_REVIEW_DB, e.g. PostgreSQL): one place for the bank's DBA;
3. else `users.sqlite` in the operator's keystore folder (the same 0700
   folder as the signing key, outside every run directory).

Three tables, plain SQLAlchemy (SQLite and PostgreSQL alike):
`review_accounts` (name, role, argon2id hash, disabled), `review_sessions`
(the SHA-256 of each session token, never the token, with its expiry) and
`review_login_failures` (for the rate limit). Names are folded to lower case
and restricted to `[a-z0-9._-]`, so "Ana" and "ana" are one person.

Sign-in answers the same way, in the same time, for an unknown name, a wrong
password and a disabled account (no user enumeration): an unknown name is
checked against a dummy hash. After `MAX_FAILURES` failures for one name, or
`MAX_ADDRESS_FAILURES` from one client address, within `LOCKOUT`, sign-in is
refused for that name or address until the window has passed.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, DateTime, Engine, Integer, String, create_engine, delete, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from pipeline.signing import keystore_path

USERS_DB_ENV = "CREDIT_AUDIT_USERS_DB"
USERS_FILE = "users.sqlite"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{1,39}")
PASSWORD_MIN, PASSWORD_MAX = 12, 1024
SESSION_TTL = timedelta(hours=8)  # a working day; then sign in again
SESSION_IDLE = timedelta(minutes=30)  # an unattended browser is signed out
SESSION_TOUCH = timedelta(minutes=1)  # the idle clock is written at most this often (a read per request, not a write)
LOCKOUT = timedelta(minutes=15)
MAX_FAILURES = 5  # per account name
MAX_ADDRESS_FAILURES = 20  # per client address (an office behind one NAT address has many honest typos)

MSG_NAME = "account name must be 2 to 40 characters of a-z, 0-9, '.', '_' or '-' (starting with a letter or digit), got {got!r}"
MSG_ROLE = "role must be one of {expected}, got {got!r}"
MSG_PASSWORD = f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"
MSG_EXISTS = "account {name!r} already exists"
MSG_UNKNOWN = "no account named {name!r}"
MSG_SIGN_IN = "sign-in failed: the name or the password is wrong, or the account is disabled"
MSG_LOCKED = "too many failed sign-ins: try again in {minutes} minutes"


class Role(StrEnum):
    """What an account may do: analysts propose, approvers also approve, auditors only read."""

    ANALYST = "analyst"
    APPROVER = "approver"
    AUDITOR = "auditor"


PROPOSERS = frozenset({Role.ANALYST, Role.APPROVER})
APPROVERS = frozenset({Role.APPROVER})


@dataclass(frozen=True)
class Account:
    """An authenticated reviewer as the app and the trail see them (never a password hash)."""

    name: str
    role: Role
    disabled: bool = False
    created: str = ""

    @property
    def can_propose(self) -> bool:
        return self.role in PROPOSERS

    @property
    def can_approve(self) -> bool:
        return self.role in APPROVERS


class AccountError(ValueError):
    """An admin command or a sign-in that cannot be done; the message says why."""


class LockedOut(AccountError):
    """Too many failed sign-ins for this name or this client address."""


class _Base(DeclarativeBase):
    pass


class AccountRow(_Base):
    __tablename__ = "review_accounts"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def account(self) -> Account:
        return Account(self.name, Role(self.role), bool(self.disabled), _utc(self.created).isoformat(timespec="seconds"))


class SessionRow(_Base):
    __tablename__ = "review_sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(40), index=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FailureRow(_Base):
    __tablename__ = "review_login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


def _utc(t: datetime) -> datetime:
    """SQLite gives naive datetimes back: they were written in UTC."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_name(name: object) -> str:
    """The account name as stored (lower case), or AccountError naming what is wrong."""
    folded = str(name or "").strip().lower()
    if not NAME_PATTERN.fullmatch(folded):
        raise AccountError(MSG_NAME.format(got=str(name or "")[:60]))
    return folded


def parse_role(role: object) -> Role:
    try:
        return Role(str(role))
    except ValueError:
        raise AccountError(MSG_ROLE.format(expected=[str(r) for r in Role], got=role)) from None


def check_password(password: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise AccountError(MSG_PASSWORD)
    return password


def users_db_url(users_db: str | None = None, review_db: str | None = None, keystore: str | Path | None = None) -> str:
    """Where accounts live (see the module docstring for the order)."""
    if users_db or os.environ.get(USERS_DB_ENV):
        return users_db or os.environ[USERS_DB_ENV]
    review_db = review_db or os.environ.get("CREDIT_AUDIT_REVIEW_DB")
    if review_db and make_url(review_db).get_backend_name() != "sqlite":
        return review_db
    return f"sqlite:///{(keystore_path(keystore) / USERS_FILE).resolve()}"


def _engine(url: str) -> Engine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    path = make_url(url).database
    if path and path != ":memory:":
        folder = Path(path).parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not Path(path).exists():  # password hashes: readable by the operator only
            Path(path).touch(mode=0o600)
    return create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})


class AccountStore:
    """The accounts, sessions and sign-in failures in the users database."""

    def __init__(self, url: str, hasher: PasswordHasher | None = None) -> None:
        self.url = url
        self.engine = _engine(url)
        self.hasher = hasher or PasswordHasher()
        _Base.metadata.create_all(self.engine)
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))  # checked for unknown names: same time

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine) as session, session.begin():
            yield session

    # ---- admin ---------------------------------------------------------------------
    def add(self, name: object, role: object, password: str) -> Account:
        name, role, password = normalize_name(name), parse_role(role), check_password(password)
        with self._session() as s:
            if s.get(AccountRow, name) is not None:
                raise AccountError(MSG_EXISTS.format(name=name))
            row = AccountRow(name=name, role=str(role), password_hash=self.hasher.hash(password), disabled=False,
                             created=_now())
            s.add(row)
            return row.account()

    def list(self) -> list[Account]:
        with Session(self.engine) as s:
            return [r.account() for r in s.scalars(select(AccountRow).order_by(AccountRow.name))]

    def get(self, name: str) -> Account | None:
        with Session(self.engine) as s:
            row = s.get(AccountRow, name)
            return row.account() if row else None

    def _existing(self, s: Session, name: object) -> AccountRow:
        name = normalize_name(name)
        row = s.get(AccountRow, name)
        if row is None:
            raise AccountError(MSG_UNKNOWN.format(name=name))
        return row

    def disable(self, name: object) -> Account:
        """Refuse the account's sign-ins from now on and end its open sessions."""
        with self._session() as s:
            row = self._existing(s, name)
            row.disabled = True
            s.execute(delete(SessionRow).where(SessionRow.name == row.name))
            return row.account()

    def set_password(self, name: object, password: str) -> Account:
        """A new password; every open session of the account ends."""
        check_password(password)
        with self._session() as s:
            row = self._existing(s, name)
            row.password_hash = self.hasher.hash(password)
            s.execute(delete(SessionRow).where(SessionRow.name == row.name))
            return row.account()

    # ---- sign-in -------------------------------------------------------------------
    def _failures(self, s: Session, column, value: str, now: datetime) -> int:  # noqa: ANN001 - a column
        since = now - LOCKOUT
        return s.scalar(select(func.count()).select_from(FailureRow).where(column == value, FailureRow.time > since))

    def authenticate(self, name: object, password: str, address: str, now: datetime | None = None) -> Account:
        """The account, or AccountError(MSG_SIGN_IN) / LockedOut; every failure counts toward the lockout."""
        now = now or _now()
        typed = str(name or "").strip().lower()[:200]
        with self._session() as s:
            if (self._failures(s, FailureRow.name, typed, now) >= MAX_FAILURES
                    or self._failures(s, FailureRow.address, address, now) >= MAX_ADDRESS_FAILURES):
                raise LockedOut(MSG_LOCKED.format(minutes=int(LOCKOUT.total_seconds() // 60)))
            row = s.get(AccountRow, typed) if NAME_PATTERN.fullmatch(typed) else None
            ok = self._verify(row.password_hash if row else self._dummy, password) and row is not None
            if not ok or row.disabled:
                s.add(FailureRow(name=typed, address=address[:64], time=now))  # committed: the raise comes after
                s.execute(delete(FailureRow).where(FailureRow.time <= now - LOCKOUT))  # only the window is kept
                account = None
            else:
                if self.hasher.check_needs_rehash(row.password_hash):
                    row.password_hash = self.hasher.hash(password)
                s.execute(delete(FailureRow).where(FailureRow.name == typed))
                account = row.account()
        if account is None:
            raise AccountError(MSG_SIGN_IN)
        return account

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password[:PASSWORD_MAX])
        except (VerificationError, InvalidHashError):
            return False

    # ---- sessions ------------------------------------------------------------------
    def open_session(self, account: Account, now: datetime | None = None) -> str:
        """A new random session token for the cookie; only its SHA-256 is stored."""
        now = now or _now()
        token = secrets.token_urlsafe(32)
        with self._session() as s:
            s.add(SessionRow(token_sha256=_token_digest(token), name=account.name, created=now, last_seen=now))
            s.execute(delete(SessionRow).where(SessionRow.created < now - SESSION_TTL))  # housekeeping
        return token

    def session_account(self, token: str | None, now: datetime | None = None) -> Account | None:
        """The signed-in, enabled account of a live session (its idle clock restarts), else None."""
        if not token or len(token) > 200:
            return None
        now = now or _now()
        with self._session() as s:
            row = s.get(SessionRow, _token_digest(token))
            if row is None:
                return None
            if _utc(row.created) + SESSION_TTL <= now or _utc(row.last_seen) + SESSION_IDLE <= now:
                s.delete(row)
                return None
            account = s.get(AccountRow, row.name)
            if account is None or account.disabled:
                s.delete(row)
                return None
            if now - _utc(row.last_seen) >= SESSION_TOUCH:
                row.last_seen = now
            return account.account()

    def close_session(self, token: str | None) -> None:
        if token and len(token) <= 200:
            with self._session() as s:
                s.execute(delete(SessionRow).where(SessionRow.token_sha256 == _token_digest(token)))

    def enabled_account(self, name: str) -> Account | None:
        """The enabled account of that name (for identities asserted by a trusted proxy)."""
        try:
            account = self.get(normalize_name(name))
        except AccountError:
            return None
        return account if account and not account.disabled else None
