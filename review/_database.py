"""The review database's engine, and everything in it that differs by dialect, in one place.

The store's code (_store.py) is the same on every database; what is not lives here.

- **SQLite**, the embedded default (`<run>/review/reviews.sqlite`, one file per
  run): WAL so the app reads while a review is written, a 30 s busy timeout, and
  `synchronous=FULL` so a committed review survives a power cut. Writers of the
  run are ordered by the trail's file lock (_trail.py).
- **PostgreSQL**, a bank's server (`postgresql+psycopg://...`), shared by many
  runs and reached from several hosts:
  * each run's tables live in a schema of its own (`run_schema`), so one server
    database holds every run and no run chains onto another run's reviews;
  * the writers of one run are ordered across hosts by a transaction-scoped
    advisory lock, taken first in each write (a file lock orders one host only),
    waited for at most 30 s as SQLite waits for its own lock (a host that died
    mid-write over TCP may hold it until the server notices): then the write
    fails with WriterLockTimeout and nothing is written;
  * READ COMMITTED is pinned: under a server default of REPEATABLE READ or
    SERIALIZABLE a writer's snapshot is taken before it waits for that lock,
    so it would chain onto a head that is no longer the head.
- Integer columns are BIGINT except on SQLite, where INTEGER already holds 64
  bits (PostgreSQL's holds 32): an applicant id of 3,000,000,000 is stored on
  both, and an existing SQLite file's tables stay exactly as they were.

Bad URLs and unreachable servers become ReviewDatabaseError (a ValueError, so
the commands exit 2 with one line), never a driver's traceback.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import BigInteger, Connection, Engine, Integer, MetaData, create_engine, event, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateSchema

# The driver this project installs (psycopg 3); a bare `postgresql://` URL would ask SQLAlchemy for psycopg2.
POSTGRES_DRIVER = "postgresql+psycopg"
SCHEMA_PREFIX = "review_"
LOCK_DOMAIN = b"credit-audit review writers\n"
SQLITE_BUSY_TIMEOUT_S = 30
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}", "PRAGMA synchronous=FULL")
WRITER_LOCK_TIMEOUT_S = SQLITE_BUSY_TIMEOUT_S  # PostgreSQL's wait for the writers' lock: the same as SQLite's
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout expires
MSG_BAD_URL = "review database URL {url!r} is not usable ({why}); expected e.g. postgresql+psycopg://user@host/db"
MSG_UNREACHABLE = "review database {url}: cannot connect or create the review tables ({why})"
MSG_LOCK_TIMEOUT = (
    "the review was not saved: another writer of this run held the database's writer lock for more than {s:g} s "
    "(an app server stuck mid-write?); nothing was written, try again"
)

# Ids, counts and sequence numbers: 64-bit everywhere (SQLite's INTEGER already is; its DDL is unchanged).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class ReviewDatabaseError(ValueError):
    """The review database URL is not usable, or its server cannot be reached."""


class WriterLockTimeout(RuntimeError):
    """Another writer of the run held the writers' lock too long; nothing was written (like SQLite's 'locked')."""


def shown(url: str | URL) -> str:
    """The URL as it may be printed: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a database URL>"


def run_schema(run_id: str) -> str:
    """The PostgreSQL schema of one run's tables: readable, and unique through a hash of the exact run id.

    Run ids are checked elsewhere, but never put raw into SQL: only [a-z0-9_] reach the name,
    and the hash keeps `Run-A` and `run_a` apart. At most 52 characters (PostgreSQL allows 63).
    """
    readable = re.sub(r"[^a-z0-9]+", "_", run_id.lower()).strip("_")[:32]
    return f"{SCHEMA_PREFIX}{readable}_{hashlib.sha256(run_id.encode()).hexdigest()[:12]}"


def _url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ReviewDatabaseError(MSG_BAD_URL.format(url=shown(url), why=exc)) from None
    return parsed.set(drivername=POSTGRES_DRIVER) if parsed.drivername == "postgresql" else parsed


def engine_for(url: str, run_id: str) -> Engine:
    """An engine for one run's reviews, with its dialect's settings (see the module docstring)."""
    parsed = _url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        if parsed.get_backend_name() == "postgresql":
            engine = create_engine(parsed, pool_pre_ping=True, isolation_level="READ COMMITTED")
            return engine.execution_options(schema_translate_map={None: run_schema(run_id)})
        return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:  # an unknown dialect or a driver that is not installed
        raise ReviewDatabaseError(MSG_BAD_URL.format(url=shown(parsed), why=exc)) from None


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(conn, _record) -> None:  # noqa: ANN001 - DBAPI connection
        cur = conn.cursor()
        for pragma in SQLITE_PRAGMAS:
            cur.execute(pragma)
        cur.close()

    return engine


def schema_of(engine: Engine) -> str | None:
    """The schema the run's tables live in (None: the database's default, as on SQLite)."""
    return (engine.get_execution_options().get("schema_translate_map") or {}).get(None)


def _lock_key(engine: Engine) -> int:
    digest = hashlib.sha256(LOCK_DOMAIN + (schema_of(engine) or "").encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_writers(session: Session | Connection) -> None:
    """Order this run's writers until the transaction ends (PostgreSQL; a no-op elsewhere).

    Call first in the write's transaction, before the chain head is read.
    """
    bind = session.get_bind() if isinstance(session, Session) else session.engine
    if bind.dialect.name != "postgresql":
        return
    session.execute(text(f"SET LOCAL lock_timeout = {int(WRITER_LOCK_TIMEOUT_S * 1000)}"))
    try:
        session.execute(select(func.pg_advisory_xact_lock(_lock_key(bind))))
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise WriterLockTimeout(MSG_LOCK_TIMEOUT.format(s=WRITER_LOCK_TIMEOUT_S)) from None
        raise


def create_tables(engine: Engine, metadata: MetaData) -> None:
    """Create the run's schema and tables when missing; concurrent openers on other hosts wait, not fail."""
    schema = schema_of(engine)
    with reaching(engine), engine.begin() as conn:
        if schema is not None:
            lock_writers(conn)
            conn.execute(CreateSchema(schema, if_not_exists=True))
        metadata.create_all(conn)


@contextmanager
def reaching(engine: Engine) -> Iterator[None]:
    """Around a store's first use of its database: a server that cannot be reached becomes one clear line."""
    try:
        yield
    except OperationalError as exc:
        raise ReviewDatabaseError(MSG_UNREACHABLE.format(url=shown(engine.url), why=_first_line(exc))) from None


def qualified(engine: Engine, table: str) -> str:
    """A table's name for hand-written SQL (which schema_translate_map does not rewrite)."""
    schema = schema_of(engine)
    quote = engine.dialect.identifier_preparer
    return f"{quote.quote_schema(schema)}.{quote.quote(table)}" if schema else quote.quote(table)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
