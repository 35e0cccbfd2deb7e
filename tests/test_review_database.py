"""The review database on a server: PostgreSQL started by the tests, many writers at once, and the dialect rules.

The store's own tests (test_review_store, test_trail_signing, test_trail_crash) run on
SQLite and on PostgreSQL through the `review_db` fixture; this file holds what only a
server database raises: reviewers in several processes on several hosts writing at
once, several runs in one database, a server whose default isolation is stricter than
the store expects, ids wider than 32 bits, and URLs that are wrong or unreachable.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from test_review_store import ANA, BO, GOOD_REASON, REPO, make_run

from flows.cli import main as cli_main
from pipeline.run_record import RunRecord
from pipeline.signing import load_public
from review import ReviewStore, _database, seal_run, verify_run
from review._database import (
    MSG_BAD_URL,
    MSG_UNREACHABLE,
    ReviewDatabaseError,
    WriterLockTimeout,
    engine_for,
    lock_writers,
    run_schema,
    schema_of,
)
from review._store import DB_ENV, MSG_OTHER_RUN, TrailKeyRow

HOSTS = 4  # copies of the run directory, as on several app servers: their file locks do not see each other
WRITERS = 8  # reviewer processes, two per host
REVIEWS_EACH = 25

WRITER = """
import sys, time
from pathlib import Path
from review._accounts import Account, Role
from review._store import ReviewStore
run_dir, k, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
store = ReviewStore(run_dir)
store.prepare_writes()
while not go.exists():  # every writer connected and ready: then all start at once
    time.sleep(0.01)
for i in range(n):
    store.save(100 + (k + i) % 20, "approve", "confirm", f"writer {k}, review {i}: checked the statements",
               Account(f"writer{k}", Role.ANALYST))
store.close()
"""


def _head(msg: str) -> str:
    return msg.split("{")[0]


@pytest.fixture
def pg_url(postgres, monkeypatch) -> str:  # noqa: ANN001 - tests/postgres_server.PostgresServer
    """A fresh PostgreSQL database named by $CREDIT_AUDIT_REVIEW_DB; its default isolation is SERIALIZABLE.

    A bank's DBA may set a stricter default than the store expects: the store pins READ COMMITTED
    (review/_database.py), and every test here runs against that stricter default to prove it.
    """
    url = postgres.create_database()
    postgres.execute(f'ALTER DATABASE "{make_url(url).database}" SET default_transaction_isolation = serializable')
    monkeypatch.setenv(DB_ENV, url)
    return url


@pytest.mark.slow
def test_reviewers_on_several_hosts_lose_nothing_and_duplicate_nothing(tmp_path, slice_record, pg_url,
                                                                     signing_keystore, capsys):
    """8 reviewer processes on 4 'hosts' (run copies) write at once; every review lands once, in one chain."""
    run = make_run(tmp_path / "host-0" / "run", slice_record)
    seal_run(run)
    hosts = [run] + [Path(shutil.copytree(run, tmp_path / f"host-{h}" / "run")) for h in range(1, HOSTS)]
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(hosts[k % HOSTS]), str(k), str(REVIEWS_EACH), str(go)],
                              cwd=REPO) for k in range(WRITERS)]
    time.sleep(3)  # let them connect; a late one still writes, only less at once
    start = time.monotonic()
    go.touch()
    assert [p.wait(timeout=600) for p in procs] == [0] * WRITERS
    elapsed = time.monotonic() - start

    store = ReviewStore(run)
    rows, checkpoints = store.rows(), store.checkpoints()
    store.close()
    total = WRITERS * REVIEWS_EACH
    expected = {f"writer {k}, review {i}: checked the statements" for k in range(WRITERS) for i in range(REVIEWS_EACH)}
    reasons = [r.reason for r in rows]
    assert len(reasons) == len(set(reasons)) == total  # nothing duplicated
    assert set(reasons) == expected  # nothing lost
    assert [r.seq for r in rows] == list(range(1, total + 1))  # one chain, no gap
    assert [c.trail_count for c in checkpoints] == list(range(1, total + 1))
    key = load_public(signing_keystore)
    for host in hosts:  # every host's export catches up with the one database, and verifies against the key
        report = verify_run(host, public_key=key)
        assert report.ok, (host, report.problems)
        assert report.rows == total
    pub = tmp_path / "operator.pub"
    pub.write_bytes(key.pem())
    capsys.readouterr()
    assert cli_main(["verify", "--run", str(hosts[-1]), "--public-key", str(pub)]) == 0
    assert f"verified against key {key.key_id}" in capsys.readouterr().out
    print(f"\n{WRITERS} writers on {HOSTS} hosts: {total} reviews in {elapsed:.1f} s "
          f"({total / elapsed:.0f} signed reviews/s) on PostgreSQL")


def test_the_store_reads_committed_whatever_the_server_default(tmp_path, slice_record, pg_url):
    store = ReviewStore(make_run(tmp_path / "run", slice_record))
    with Session(store.engine) as session:
        assert session.execute(text("SHOW default_transaction_isolation")).scalar() == "serializable"
        assert session.execute(text("SHOW transaction_isolation")).scalar() == "read committed"
    store.close()


def test_a_writer_stuck_holding_the_lock_times_out_and_writes_nothing(tmp_path, slice_record, pg_url, monkeypatch):
    """As SQLite gives up after its busy timeout, a PostgreSQL writer gives up waiting for the writers' lock."""
    store = ReviewStore(make_run(tmp_path / "run", slice_record))
    store.save(101, "approve", "confirm", GOOD_REASON, ANA)
    monkeypatch.setattr(_database, "WRITER_LOCK_TIMEOUT_S", 0.5)
    with store.engine.connect() as stuck, stuck.begin():  # another host's writer, stuck mid-transaction
        lock_writers(stuck)
        start = time.monotonic()
        with pytest.raises(WriterLockTimeout, match="held the database's writer lock for more than 0.5 s"):
            store.save(102, "approve", "confirm", GOOD_REASON, BO)
        assert time.monotonic() - start < 10
    assert [r.applicant_id for r in store.all()] == [101]  # nothing half-written
    store.save(102, "approve", "confirm", GOOD_REASON, BO)  # the lock is free again
    assert [r.seq for r in store.all()] == [1, 2]
    store.close()
    assert verify_run(store.run_dir).ok


def test_app_servers_starting_at_once_do_not_collide(tmp_path, slice_record, pg_url, signing_keystore):
    """prepare_writes (an app's start) only checks: it never inserts the trail's key, which the first write does.

    Here another host's first write is in flight, its key row inserted but not committed: an app
    start that flushed the same row would wait for it, then fail on the duplicate key.
    """
    from pipeline.signing import b64, load_signer

    signer = load_signer(signing_keystore)
    store = ReviewStore(make_run(tmp_path / "run", slice_record))
    done: list[object] = []
    with store.engine.connect() as other, other.begin():
        other.execute(insert(TrailKeyRow).values(key_id=signer.key_id, public_key=b64(signer.public.raw), bound="now"))
        thread = threading.Thread(target=lambda: done.append(store.prepare_writes()), daemon=True)
        thread.start()
        thread.join(timeout=20)
        assert not thread.is_alive(), "the app's start waited on another host's uncommitted write"
    assert done and done[0].key_id == signer.key_id
    store.save(101, "approve", "confirm", GOOD_REASON, ANA)
    store.close()


def test_runs_share_one_postgresql_database_each_in_its_own_schema(tmp_path, slice_record, pg_url):
    a = make_run(tmp_path / "run-a", slice_record)
    b = make_run(tmp_path / "run-b", slice_record)
    for run, who in ((a, ANA), (b, BO), (a, ANA)):
        store = ReviewStore(run)
        store.save(101, "approve", "confirm", GOOD_REASON, who)
        store.close()
    for run, n, who in ((a, 2, ANA), (b, 1, BO)):
        store = ReviewStore(run)
        assert [r.reviewer for r in store.all()] == [who.name] * n and schema_of(store.engine) == run_schema(store.run_id)
        store.close()
        report = verify_run(run)
        assert report.ok and report.rows == n, report.problems


def test_one_sqlite_file_for_two_runs_is_refused(tmp_path, slice_record, monkeypatch):
    monkeypatch.setenv(DB_ENV, f"sqlite:///{tmp_path / 'shared.sqlite'}")
    a = make_run(tmp_path / "run-a", slice_record)
    b = make_run(tmp_path / "run-b", slice_record)
    store = ReviewStore(a)
    store.save(101, "approve", "confirm", GOOD_REASON, ANA)
    store.close()
    other = ReviewStore(b)
    with pytest.raises(ReviewDatabaseError, match="holds the reviews of run test-run-a, not of run test-run-b"):
        other.save(101, "approve", "confirm", GOOD_REASON, BO)
    with pytest.raises(ReviewDatabaseError, match=_head(MSG_OTHER_RUN)):
        other.prepare_writes()  # the app refuses to start, rather than to save
    other.close()
    assert verify_run(a).ok


def test_applicant_ids_beyond_32_bits_are_stored(run_dir, review_db):  # noqa: ARG001 - both backends
    big = 3_000_000_000  # PostgreSQL's INTEGER stops at 2,147,483,647; SQLite's holds 64 bits
    store = ReviewStore(run_dir)
    store.save(big, "approve", "confirm", GOOD_REASON, ANA)
    assert store.history(big)[0].applicant_id == big
    store.close()
    assert verify_run(run_dir).ok


@pytest.fixture
def run_dir(tmp_path: Path, slice_record: RunRecord, review_db: str | None) -> Path:  # noqa: ARG001 - sets the DB
    return make_run(tmp_path / "run", slice_record)


def test_a_sqlite_file_keeps_its_integer_columns(run_dir, review_db):
    """BIGINT is for servers: SQLite's DDL is what it always was (INTEGER, 64 bits there)."""
    if review_db is not None:
        pytest.skip("the SQLite half of this check")
    store = ReviewStore(run_dir)
    with store.engine.connect() as conn:
        ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'reviews'")).scalar()
    store.close()
    assert "seq INTEGER NOT NULL" in ddl and "applicant_id INTEGER" in ddl and "BIGINT" not in ddl


def test_a_bare_postgresql_url_uses_psycopg_3():
    engine = engine_for("postgresql://reviewer@db.bank.test/reviews", "run-1")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_schema_names_are_safe_and_distinct():
    names = {run_schema(r) for r in ("Run-A", "run_a", "run-a", 'x"; DROP TABLE reviews; --', "r" * 80)}
    assert len(names) == 5
    assert all(len(n) <= 63 and n.replace("_", "").isalnum() and n == n.lower() for n in names)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", _head(MSG_BAD_URL)),
        ("nosuchdb://x/y", _head(MSG_BAD_URL)),
        ("postgresql+psycopg://ana:s3cret@/nope?host=/nonexistent-socket-dir&port=1", "review database "
         "postgresql+psycopg://ana:***@/nope"),
    ],
)
@pytest.mark.parametrize("command", ["verify", "review"])
def test_a_bad_or_unreachable_database_is_one_line_and_exit_2(tmp_path, slice_record, capsys, monkeypatch, url,
                                                            expected, command):
    monkeypatch.delenv(DB_ENV, raising=False)
    run = make_run(tmp_path / "run", slice_record)
    capsys.readouterr()
    assert cli_main([command, "--run", str(run), "--db", url]) == 2
    err = capsys.readouterr().err
    assert expected in err and "s3cret" not in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    if "psycopg" in url:
        assert _tail_of(MSG_UNREACHABLE) in err


def _tail_of(msg: str) -> str:
    return msg.split("}", 1)[1].split("{")[0]
