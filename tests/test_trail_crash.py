"""Crash safety of review writes: writers killed with SIGKILL at random moments never leave the trail unverifiable.

Each round starts several writer processes on one run, kills each of them
at a random moment while they save reviews as fast as they can, then runs
`verify` with the operator's public key and a checkpoint archived before the
first round; on SQLite, then on PostgreSQL (where a killed client's open
transaction, and its writer lock, die with its connection). The database
row, its signature and its checkpoint commit in one transaction, so a kill
can only leave trail.jsonl behind or cut short
(a note, which the next write or `verify --repair` completes), never a row
without its entry. The same run is used for every round, so each round's
writers also start from whatever the last kills left.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
from test_review_store import make_run

from pipeline.run_record import RunRecord
from pipeline.signing import load_public
from review import Account, ReviewStore, Role, repair_run, seal_run, verify_run

ROUNDS = 20
WRITERS = 3
KILL_WINDOW = (0.05, 0.5)  # seconds after the writers are all writing
SEED = int(os.environ.get("CRASH_TEST_SEED", "15"))


def _write_forever(run_dir: str, run_id: str, db_url: str | None, k: int, ready) -> None:  # noqa: ANN001 - Event
    """A child process: save reviews until killed (the database is passed: the forkserver keeps its first env)."""
    store = ReviewStore(run_dir, db_url=db_url, run_id=run_id)
    me = Account(f"writer{k}", Role.ANALYST)
    store.save(100 + k, "approve", "confirm", f"writer {k} starts writing reviews", me)
    ready.set()
    i = 0
    while True:
        i += 1
        store.save(100 + i % 10, "approve", "confirm", f"writer {k}, review {i}: checked the statements", me)


@pytest.fixture
def run_dir(tmp_path: Path, slice_record: RunRecord, review_db: str | None) -> Path:  # noqa: ARG001 - sets the DB
    run = make_run(tmp_path / "run", slice_record)
    seal_run(run)
    return run


def test_killed_writers_never_break_the_trail(run_dir, signing_keystore, review_db):
    key = load_public(signing_keystore)
    archived = ("checkpoint archived before the kills", seal_run(run_dir))
    rng = random.Random(SEED)
    # forkserver: writers fork from one clean single-threaded process (this one may hold Prefect's threads)
    fork = multiprocessing.get_context("forkserver")
    fork.set_forkserver_preload(["review._store", "test_trail_crash"])
    passed, behind, torn, rows = 0, 0, 0, 0
    for round_no in range(ROUNDS):
        events = [fork.Event() for _ in range(WRITERS)]
        procs = [fork.Process(target=_write_forever, args=(str(run_dir), archived[1].run_id, review_db, k, e), daemon=True)
                 for k, e in enumerate(events)]
        for p in procs:
            p.start()
        for e in events:
            assert e.wait(timeout=120), "a writer did not start"
        start = time.monotonic()
        for p in rng.sample(procs, len(procs)):  # each killed at its own random moment, in random order
            time.sleep(max(0.0, start + rng.uniform(*KILL_WINDOW) - time.monotonic()))
            os.kill(p.pid, signal.SIGKILL)
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == -signal.SIGKILL
        report = verify_run(run_dir, public_key=key, checkpoints=[archived])
        assert report.ok, f"round {round_no} (seed {SEED}): {report.problems}"
        assert report.rows > rows  # every round stored reviews, and none was lost
        passed, rows = passed + 1, report.rows
        behind += report.export_behind > 0
        torn += report.export_torn
    print(f"\nkill test: {passed} of {ROUNDS} rounds verified; {rows} reviews; the export was behind after "
          f"{behind} round(s), cut mid-line after {torn} (seed {SEED})")
    assert passed == ROUNDS

    repaired = repair_run(run_dir, public_key=key, checkpoints=[archived])
    assert repaired.after.ok and repaired.after.export_behind == 0 and not repaired.after.export_torn
    assert not repaired.refused
