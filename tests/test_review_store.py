"""Review store and trail: validation, append-only history, concurrent saves, tamper detection, CSV safety."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, update

from flows.cli import main as cli_main
from pipeline import outputs as O
from pipeline.run_record import RunRecord, load_record, write_record
from review import (
    Account,
    Outcome,
    ReviewStore,
    ReviewValidationError,
    csv_safe,
    review_overrides,
    reviews_csv,
    verify_run,
)
from review._accounts import Role
from review._store import MSG_OVERRIDE, MSG_REASON, ReviewRow
from review._trail import genesis

REPO = Path(__file__).resolve().parents[1]
GOOD_REASON = "Checked the statements; the decision stands."
ANA = Account("ana.analyst", Role.ANALYST)  # the store records the account it is given (the app authenticates)
BO = Account("bo.boss", Role.APPROVER)


def make_run(path: Path, record: RunRecord, n: int = 20) -> Path:
    """A small run directory (record, applicants.parquet, manifest) written with the run writers."""
    p = np.linspace(0.05, 0.95, n)
    table = pd.DataFrame(
        {
            "id": np.arange(100, 100 + n, dtype=np.int64),
            "probability": p,
            "decision": np.where(p >= 0.5, "decline", "approve"),
        }
    )
    O.write_parquet(path / O.APPLICANTS, table)
    write_record(path, record.model_copy(update={"run_id": f"test-{path.name}"}))
    O.write_manifest(path)
    return path


def tamper(run_dir: Path, *statements) -> None:  # noqa: ANN002 - SQLAlchemy statements
    """Change the review database behind the store's back, as someone with write access to it would.

    Written with SQLAlchemy Core over the store's own engine, so the same tampering reaches the
    SQLite file or the run's PostgreSQL schema.
    """
    store = ReviewStore(run_dir)
    try:
        with store.engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)
    finally:
        store.close()


@pytest.fixture
def run_dir(tmp_path: Path, slice_record: RunRecord, review_db: str | None) -> Path:  # noqa: ARG001 - sets the DB
    """A small run whose reviews go to SQLite beside it, then to PostgreSQL (the review_db parameter)."""
    return make_run(tmp_path / "run", slice_record)


@pytest.fixture
def store(run_dir: Path):
    s = ReviewStore(run_dir)
    yield s
    s.close()


def test_save_history_latest(store):
    a = store.save(101, "approve", "confirm", GOOD_REASON, ANA)
    b = store.save(101, "approve", "override_decline", "New information: income proof was forged.", ANA)
    c = store.save(115, "decline", "needs_information", "Ask for the last three payslips please.", ANA)
    d = store.approve(b.seq, "Forgery confirmed by the fraud team.", BO)
    assert [r.seq for r in store.history(101)] == [a.seq, b.seq, d.seq] == [1, 2, 4]
    latest = store.latest()
    assert latest[101].outcome == "override_decline" and latest[101].final_decision == "decline"
    assert latest[115].final_decision == "pending" and c.seq == 3
    assert store.all()[0].reason == GOOD_REASON


@pytest.mark.parametrize(
    ("outcome", "reason", "field", "msg"),
    [
        ("approve", GOOD_REASON, "outcome", "outcome must be one of"),
        ("confirm", "too short", "reason", MSG_REASON),
        ("confirm", "   " * 20, "reason", MSG_REASON),
        ("confirm", "x" * 2001, "reason", MSG_REASON),
        ("confirm", "A reason with a \x00 control character", "reason", MSG_REASON),
        ("confirm", "A reason with a \u202e direction override", "reason", MSG_REASON),
        ("override_approve", GOOD_REASON, "outcome", MSG_OVERRIDE.split("{")[0]),
    ],
)
def test_validation(store, outcome, reason, field, msg):
    with pytest.raises(ReviewValidationError) as err:
        store.save(101, "approve", outcome, reason, ANA)
    assert msg in err.value.errors[field]
    assert store.all() == [] and store.trail.lines() == []


def test_reason_keeps_newlines_and_is_trimmed(store):
    r = store.save(101, "approve", "confirm", "  Line one of the reason\r\nline two  ", ANA)
    assert r.reason == "Line one of the reason\nline two" and r.reviewer == "ana.analyst"


def test_trail_chain_and_verify_ok(store, run_dir):
    for i in range(5):
        store.save(100 + i, "approve", "confirm", f"{GOOD_REASON} #{i}", ANA)
    entries = store.trail.entries()
    assert entries[0].prev == genesis(store.run_id)
    assert all(e.prev == p.hash for p, e in zip(entries, entries[1:], strict=False))
    report = verify_run(run_dir)
    assert report.ok, report.problems
    assert report.entries == report.rows == 5 and report.head == entries[-1].hash


def _rewrite_trail(store, change) -> None:  # noqa: ANN001
    lines = store.trail.lines()
    change(lines)
    store.trail.path.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")


def test_altered_trail_row_is_caught(store, run_dir):
    for i in range(3):
        store.save(100 + i, "approve", "confirm", GOOD_REASON, ANA)

    def alter(lines: list[str]) -> None:
        entry = json.loads(lines[1])
        entry["record"]["outcome"] = "override_decline"
        lines[1] = json.dumps(entry)

    _rewrite_trail(store, alter)
    report = verify_run(run_dir)
    assert not report.ok
    assert any("trail entry 2" in p and "altered" in p for p in report.problems)
    assert any("review 2" in p and "outcome" in p for p in report.problems)


def test_rehashed_forgery_breaks_the_chain(store, run_dir):
    """A forger who recomputes the altered entry's own hash still breaks the next link and the database match."""
    from review._trail import Entry, entry_hash

    for i in range(3):
        store.save(100 + i, "approve", "confirm", GOOD_REASON, ANA)

    def forge(lines: list[str]) -> None:
        e = json.loads(lines[0])
        e["record"]["reviewer"] = "Someone Else"
        e["hash"] = entry_hash(e["seq"], e["prev"], e["record"])
        lines[0] = Entry(e["seq"], e["prev"], e["record"], e["hash"]).line()

    _rewrite_trail(store, forge)
    problems = verify_run(run_dir).problems
    assert any("trail entry 2" in p and "chain broken" in p for p in problems)
    assert any("review 1" in p and "reviewer" in p for p in problems)


def test_missing_and_extra_records_are_caught(store, run_dir):
    for i in range(3):
        store.save(100 + i, "approve", "confirm", GOOD_REASON, ANA)
    original = store.trail.lines()
    _rewrite_trail(store, lambda lines: lines.pop())
    report = verify_run(run_dir)  # the database is the source of truth: an export behind it loses nothing
    assert report.ok and any("1 review(s) behind the database (3)" in n for n in report.notes)
    _rewrite_trail(store, lambda lines: lines.pop(0))  # but a gap inside the export is not a crash
    problems = verify_run(run_dir).problems
    assert any("review 1" in p and "missing from the trail" in p for p in problems)
    _rewrite_trail(store, lambda lines: lines.__setitem__(slice(None), original))

    tamper(run_dir, delete(ReviewRow).where(ReviewRow.seq.in_([1, 3])),
           update(ReviewRow).where(ReviewRow.seq == 2).values(reason="edited afterwards"))
    problems = verify_run(run_dir).problems
    assert any("trail entry 1" in p and "missing from the database" in p for p in problems)
    assert any("review 2" in p and "reason" in p for p in problems)


def test_manifest_problems_are_reported(store, run_dir):
    store.save(101, "approve", "confirm", GOOD_REASON, ANA)
    record = load_record(run_dir)
    write_record(run_dir, record.model_copy(update={"seed": 99}))
    report = verify_run(run_dir)
    assert report.manifest_problems and "audit.json" in report.manifest_problems[0]
    assert not report.trail_problems  # the review store itself is not part of the manifest


def test_verify_command_exit_codes(store, run_dir, capsys):
    store.save(101, "approve", "confirm", GOOD_REASON, ANA)
    assert cli_main(["verify", "--run", str(run_dir)]) == 0
    assert "verified" in capsys.readouterr().out
    _rewrite_trail(store, lambda lines: lines.__setitem__(0, lines[0].replace("ana.analyst", "ana.analyzt")))
    assert cli_main(["verify", "--run", str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM" in out and "altered" in out
    assert cli_main(["verify", "--run", str(run_dir / "nope")]) == 2


def test_concurrent_saves_from_threads_all_land(run_dir):
    stores = [ReviewStore(run_dir) for _ in range(4)]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(8):
                stores[k].save(100 + i, "approve", "confirm", f"{GOOD_REASON} t{k} i{i}",
                              Account(f"reviewer{k}", Role.ANALYST))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert not errors
    report = verify_run(run_dir)
    assert report.ok, report.problems
    assert report.rows == report.entries == 32


WRITER = """
import sys
from review._accounts import Account, Role
from review._store import ReviewStore
store = ReviewStore(sys.argv[1])
me = Account(f"proc{sys.argv[2]}", Role.ANALYST)
for i in range(int(sys.argv[3])):
    store.save(100 + i % 10, "approve", "confirm", f"process {sys.argv[2]} review {i}", me)
"""


@pytest.mark.slow
def test_concurrent_saves_from_two_processes_all_land(run_dir):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir), str(k), "15"], cwd=REPO) for k in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    report = verify_run(run_dir)
    assert report.ok, report.problems
    assert report.rows == report.entries == 30


def test_review_overrides_lists_overrides_in_effect_only(run_dir):
    assert review_overrides(run_dir) == []
    assert not (run_dir / "review").exists()  # asking does not create a store
    store = ReviewStore(run_dir)
    cy = Account("cy", Role.APPROVER)
    for args in [(101, "approve", "override_decline"), (102, "approve", "override_decline"),
                 (115, "decline", "override_approve")]:
        store.approve(store.save(*args, GOOD_REASON, ANA).seq, "Agreed with the analyst.", BO)
    store.save(116, "decline", "override_approve", GOOD_REASON, ANA)  # proposed, never approved
    reversal = store.save(102, "approve", "confirm", "On second look the model was right.", ANA)
    store.approve(reversal.seq, "Agreed: the model was right.", cy)
    store.close()
    got = review_overrides(run_dir)
    assert [(o["applicant_id"], o["final_decision"]) for o in got] == [(101, "decline"), (115, "approve")]
    assert got[1]["model_decision"] == "decline" and got[1]["reviewer"] == "ana.analyst, approved by bo.boss"


@pytest.mark.parametrize("text", ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x","y")'])
def test_csv_safe_neutralises_formulas(text):
    assert csv_safe(text) == "'" + text
    assert csv_safe("plain text") == "plain text" and csv_safe(-3) == -3


def test_export_is_spreadsheet_safe(store):
    store.save(101, "approve", "confirm", '=HYPERLINK("http://evil.test","click me")', ANA)
    store.save(102, "approve", "confirm", 'plain, with "quotes" and, commas', ANA)
    text = reviews_csv(store.all(), {101: 0.1, 102: 0.2})
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["reason"].startswith("'=HYPERLINK") and rows[0]["reviewer"] == "ana.analyst"
    assert rows[1]["reason"] == 'plain, with "quotes" and, commas'
    assert float(rows[0]["probability"]) == 0.1 and rows[0]["in_effect"] == "approve"
    for row in rows:
        assert not any(str(v).startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values())


def test_outcomes_are_the_four_the_issue_names():
    assert {str(o) for o in Outcome} == {"confirm", "override_approve", "override_decline", "needs_information"}
