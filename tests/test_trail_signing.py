"""The signed trail: keys, the no-key policy, every forgery of issue 15 caught with the public key, checkpoints, repair.

Each forgery is made the way someone who can write the run directory (but
does not hold the operator's private key) would make it: consistently, with
hashes recomputed and files regenerated. Runs are written with the run
writers (test_review_store.make_run) and sealed with review.seal_run.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import delete, insert, text, update
from test_review_store import ANA, BO, GOOD_REASON, make_run, tamper

from flows.cli import main as cli_main
from flows.cmd_verify import MSG_EXPORT_NEEDS_KEY
from pipeline import outputs as O
from pipeline.checkpoint import Checkpoint, CheckpointError
from pipeline.run_record import RunRecord
from pipeline.signing import (
    MSG_KEY_EXISTS,
    MSG_KEY_IN_RUN,
    MSG_KEY_PERMISSIONS,
    PRIVATE_FILE,
    PUBLIC_FILE,
    UNSIGNED_ENV,
    KeyFileError,
    NoSigningKey,
    PublicKey,
    create_key,
    load_public,
    load_signer,
)
from review import ReviewStore, TrailKeyError, repair_run, seal_run, verify_run
from review._database import run_schema
from review._repair import MSG_NOTHING, MSG_REFUSE_DB, MSG_REFUSE_EXPORT, MSG_REFUSE_MANIFEST
from review._store import MSG_OTHER_KEY, MSG_SIGNED_TRAIL, CheckpointRow, ReviewRow, TrailKeyRow
from review._trail import Entry, entry_hash
from review._verify import (
    MSG_CHECKPOINT_NEEDS_KEY,
    MSG_CP_MANIFEST,
    MSG_CP_REMOVED,
    MSG_CP_REWRITTEN,
    MSG_CP_RUN,
    MSG_CP_SIGNATURE,
    MSG_DB_SIGNATURE,
    MSG_TRAIL_OTHER_KEY,
    MSG_TRAIL_UNSIGNED,
    NOTE_LEGACY,
    NOTE_NO_KEY,
    NOTE_RUN_UNSIGNED,
)

REVIEWS = 3


def _head(msg: str) -> str:
    """The fixed text of a message constant before its first placeholder."""
    return msg.split("{")[0]


def _tail(msg: str) -> str:
    """The fixed text of a message constant after its last placeholder."""
    return msg.rsplit("}", 1)[-1]


@pytest.fixture
def key(signing_keystore: Path) -> PublicKey:
    return load_public(signing_keystore)


@pytest.fixture
def forger(tmp_path: Path):
    """Someone else's key: what a forger who can write the run, but lacks the operator's key, can sign with."""
    return create_key(tmp_path / "forger-keys")


@pytest.fixture
def run_dir(tmp_path: Path, slice_record: RunRecord, review_db: str | None) -> Path:  # noqa: ARG001 - sets the DB
    """A sealed run with REVIEWS signed reviews, stored in SQLite, then in PostgreSQL (the review_db parameter)."""
    run = make_run(tmp_path / "run", slice_record)
    seal_run(run)
    store = ReviewStore(run)
    for i in range(REVIEWS):
        store.save(100 + i, "approve", "confirm", f"{GOOD_REASON} #{i}", ANA)
    store.close()
    return run


@pytest.fixture
def archived(run_dir: Path, key: PublicKey, tmp_path: Path) -> tuple[str, Checkpoint]:
    """The checkpoint the operator exported and archived outside the run after the reviews."""
    path = tmp_path / "archive" / "checkpoint.json"
    path.parent.mkdir()
    assert verify_run(run_dir, public_key=key).ok
    assert cli_main(["verify", "--run", str(run_dir), "--public-key", str(_pub(key, tmp_path)),
                     "--export-checkpoint", str(path)]) == 0
    return str(path), Checkpoint.from_json(path.read_text())


def _pub(key: PublicKey, tmp_path: Path) -> Path:
    path = tmp_path / "operator.pub"
    path.write_bytes(key.pem())
    return path


def _legacy_db(run_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(run_dir / "review" / "reviews.sqlite")


def _remove_newest(run_dir: Path) -> None:
    """Delete the newest review and its checkpoint from the database, as a forger without the key would."""
    tamper(run_dir, delete(ReviewRow).where(ReviewRow.seq == REVIEWS),
           delete(CheckpointRow).where(CheckpointRow.trail_count == REVIEWS))


def _trail(run_dir: Path) -> Path:
    return run_dir / "review" / "trail.jsonl"


def _problems(report) -> str:  # noqa: ANN001
    return "\n".join(report.problems)


# ---- keys ----------------------------------------------------------------------------
def test_keys_init_show_and_refuse_to_overwrite(tmp_path, capsys):
    store = tmp_path / "keys"
    assert cli_main(["keys", "init", "--keystore", str(store)]) == 0
    out = capsys.readouterr().out
    key = load_public(store)
    assert key.key_id in out and str(store / PUBLIC_FILE) in out
    assert (store / PRIVATE_FILE).stat().st_mode & 0o777 == 0o600
    assert store.stat().st_mode & 0o777 == 0o700
    assert cli_main(["keys", "init", "--keystore", str(store)]) == 2
    assert MSG_KEY_EXISTS.format(path=store / PRIVATE_FILE) in capsys.readouterr().err
    assert load_public(store) == key  # not replaced
    assert cli_main(["keys", "init", "--keystore", str(store), "--force"]) == 0
    assert load_public(store) != key
    capsys.readouterr()
    assert cli_main(["keys", "show", "--keystore", str(store)]) == 0
    shown = capsys.readouterr().out
    assert load_public(store).key_id in shown and "BEGIN PUBLIC KEY" in shown
    assert cli_main(["keys", "show", "--keystore", str(tmp_path / "none")]) == 2


def test_existing_key_message_and_open_key_refused(tmp_path):
    store = tmp_path / "keys"
    create_key(store)
    with pytest.raises(KeyFileError, match="already exists: pass --force"):
        create_key(store)
    (store / PRIVATE_FILE).chmod(0o644)
    with pytest.raises(KeyFileError) as err:
        load_signer(store)
    assert str(err.value) == MSG_KEY_PERMISSIONS.format(path=store / PRIVATE_FILE, mode=0o644)


# ---- no key: a deliberate choice ---------------------------------------------------
def test_without_a_key_nothing_is_written_unless_unsigned_is_asked_for(tmp_path, slice_record, monkeypatch, review_db):
    run = make_run(tmp_path / "run", slice_record)
    (run / O.MANIFEST).unlink()
    empty = tmp_path / "no-keys"
    with pytest.raises(NoSigningKey, match="credit-audit keys init"):
        seal_run(run, keystore=empty)
    assert not (run / O.MANIFEST).exists()  # refused before writing, not after
    store = ReviewStore(run, keystore=empty)
    with pytest.raises(NoSigningKey):
        store.save(101, "approve", "confirm", GOOD_REASON, ANA)
    assert store.all() == [] and store.trail.lines() == []
    store.close()

    assert seal_run(run, keystore=empty, unsigned=True) is None
    assert (run / O.MANIFEST).exists() and not (run / O.MANIFEST_SIG).exists()
    monkeypatch.setenv(UNSIGNED_ENV, "1")
    store = ReviewStore(run, keystore=empty)
    store.save(101, "approve", "confirm", GOOD_REASON, ANA)
    store.close()
    report = verify_run(run)
    assert report.ok and NOTE_RUN_UNSIGNED in report.notes and NOTE_NO_KEY in report.notes


def test_unsigned_run_fails_against_a_public_key(tmp_path, slice_record, key, review_db):
    run = make_run(tmp_path / "run", slice_record)
    seal_run(run, unsigned=True)
    store = ReviewStore(run, unsigned=True)
    store.save(101, "approve", "confirm", GOOD_REASON, ANA)
    store.close()
    problems = _problems(verify_run(run, public_key=key))
    assert O.MSG_SIG_MISSING in problems and MSG_TRAIL_UNSIGNED.format(n=1) in problems


def test_keystore_inside_the_run_is_refused(tmp_path, slice_record):
    run = make_run(tmp_path / "run", slice_record)
    inside = run / "keys"
    create_key(inside)
    with pytest.raises(KeyFileError) as err:
        seal_run(run, keystore=inside)
    assert str(err.value) == MSG_KEY_IN_RUN.format(keystore=inside, run=run)


def test_a_signed_trail_takes_no_unsigned_or_other_key(run_dir, key, forger):
    unsigned = ReviewStore(run_dir, unsigned=True)
    with pytest.raises(TrailKeyError) as err:
        unsigned.save(101, "approve", "confirm", GOOD_REASON, ANA)
    assert str(err.value) == MSG_SIGNED_TRAIL.format(key_id=key.key_id)
    other = ReviewStore(run_dir, signer=forger)
    with pytest.raises(TrailKeyError, match=_head(MSG_OTHER_KEY)):
        other.prepare_writes()
    assert len(other.all()) == REVIEWS
    unsigned.close()
    other.close()


def test_a_legacy_unsigned_trail_is_adopted_by_the_first_signed_write(tmp_path, slice_record, key, review_db):
    run = make_run(tmp_path / "run", slice_record)
    seal_run(run)
    legacy = ReviewStore(run, unsigned=True)
    legacy.save(101, "approve", "confirm", GOOD_REASON, ANA)
    legacy.save(102, "approve", "confirm", GOOD_REASON, ANA)
    legacy.close()
    signed = ReviewStore(run)
    signed.save(103, "approve", "confirm", GOOD_REASON, ANA)
    signed.close()
    report = verify_run(run, public_key=key)
    assert report.ok, report.problems
    assert NOTE_LEGACY.format(last=2, first=3) in report.notes


def test_a_database_written_before_signing_is_upgraded(tmp_path, slice_record, key):
    run = make_run(tmp_path / "run", slice_record)
    seal_run(run)
    (run / "review").mkdir()
    db = _legacy_db(run)  # only SQLite files predate signing: PostgreSQL came later
    db.execute(
        "CREATE TABLE reviews (seq INTEGER PRIMARY KEY, run_id VARCHAR(100), applicant_id INTEGER, "
        "model_decision VARCHAR(16), outcome VARCHAR(32), reason TEXT, reviewer VARCHAR(80), created VARCHAR(40), "
        "prev_hash VARCHAR(64), entry_hash VARCHAR(64) UNIQUE)"
    )
    db.close()
    store = ReviewStore(run)
    store.save(101, "approve", "confirm", GOOD_REASON, ANA)
    store.close()
    assert verify_run(run, public_key=key).ok


# ---- what verify says ----------------------------------------------------------------
def test_verify_prints_the_keys_and_what_it_proved(run_dir, key, tmp_path, capsys):
    assert cli_main(["verify", "--run", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"run sealed with key: {key.key_id}" in out and "internal consistency only" in out
    assert "NOT verified against a public key" in out
    assert cli_main(["verify", "--run", str(run_dir), "--public-key", str(_pub(key, tmp_path))]) == 0
    out = capsys.readouterr().out
    assert f"verified against key {key.key_id}" in out and "NOTE" not in out


def test_verify_bad_inputs_exit_2(run_dir, key, tmp_path, capsys):
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    assert cli_main(["verify", "--run", str(run_dir), "--public-key", str(bad)]) == 2
    assert "not an Ed25519 public key" in capsys.readouterr().err
    cp = tmp_path / "cp.json"
    cp.write_text("{}")
    assert cli_main(["verify", "--run", str(run_dir), "--checkpoint", str(cp)]) == 2
    assert MSG_CHECKPOINT_NEEDS_KEY in capsys.readouterr().err
    assert cli_main(["verify", "--run", str(run_dir), "--public-key", str(_pub(key, tmp_path)),
                     "--checkpoint", str(cp)]) == 2
    assert "not a credit-audit checkpoint" in capsys.readouterr().err
    assert cli_main(["verify", "--run", str(run_dir), "--export-checkpoint", str(cp)]) == 2
    assert MSG_EXPORT_NEEDS_KEY in capsys.readouterr().err
    with pytest.raises(CheckpointError):
        Checkpoint.from_json(json.dumps({"kind": "credit-audit checkpoint", "format": 1}))


def test_exported_checkpoint_is_the_head_and_verifies(run_dir, key, archived, tmp_path, capsys):
    name, cp = archived
    assert cp.trail_count == REVIEWS and cp.key_id == key.key_id and cp.signature_ok(key)
    assert cp.manifest_sha256 == O.manifest_digest(run_dir)
    store = ReviewStore(run_dir)
    store.save(105, "approve", "confirm", GOOD_REASON, BO)  # the trail grows past the checkpoint
    store.close()
    assert cli_main(["verify", "--run", str(run_dir), "--public-key", str(_pub(key, tmp_path)),
                     "--checkpoint", name]) == 0
    assert "archived checkpoints checked: 1" in capsys.readouterr().out


def test_the_manifest_signature_is_the_runs_first_checkpoint(tmp_path, slice_record, key):
    run = make_run(tmp_path / "run", slice_record)
    sealed = seal_run(run)
    assert sealed.trail_count == 0 and sealed.signature_ok(key)
    archived = Checkpoint.from_json((run / O.MANIFEST_SIG).read_text())
    assert archived == sealed
    assert verify_run(run, public_key=key, checkpoints=[("manifest.json.sig copy", archived)]).ok


# ---- the forgeries of issue 15 ----------------------------------------------------
def test_removing_the_newest_review_everywhere_is_caught_by_the_archived_checkpoint(run_dir, key, archived):
    _remove_newest(run_dir)
    lines = _trail(run_dir).read_text().splitlines(keepends=True)
    _trail(run_dir).write_text("".join(lines[:-1]))
    # Inside the run everything is consistent again: only a record kept elsewhere can tell.
    assert verify_run(run_dir, public_key=key).ok
    report = verify_run(run_dir, public_key=key, checkpoints=[archived])
    assert not report.ok
    assert _tail(MSG_CP_REMOVED) in _problems(report) and f"records {REVIEWS} review(s)" in _problems(report)


def _rewrite_everywhere(run_dir: Path, seq: int, change: dict, signer=None) -> None:  # noqa: ANN001
    """Change one review's record and recompute every hash after it, in the database and in trail.jsonl.

    With `signer`, also re-sign every entry and checkpoint and put its key in the database: a forger's best.
    """
    from pipeline.signing import b64

    store = ReviewStore(run_dir)
    rows = store.rows()
    store.close()
    prev = rows[0].prev_hash
    entries = []
    for r in rows:
        record = {**r.entry().record, **(change if r.seq == seq else {})}
        e = Entry(r.seq, prev, record, entry_hash(r.seq, prev, record), r.key_id, r.signature)
        if signer is not None:
            e = Entry(e.seq, e.prev, e.record, e.hash).signed(signer)
        entries.append(e)
        prev = e.hash
    statements = [
        update(ReviewRow).where(ReviewRow.seq == e.seq).values(
            reason=e.record["reason"], outcome=e.record["outcome"], reviewer=e.record["reviewer"], prev_hash=e.prev,
            entry_hash=e.hash, key_id=e.key_id, signature=e.signature)
        for e in entries
    ]
    if signer is not None:
        run_id = entries[0].record["run_id"]
        statements += [delete(CheckpointRow), delete(TrailKeyRow),
                       insert(TrailKeyRow).values(key_id=signer.key_id, public_key=b64(signer.public.raw), bound="now")]
        for e in entries:
            cp = Checkpoint.sign(signer, run_id, O.manifest_digest(run_dir), e.seq, e.hash)
            statements.append(insert(CheckpointRow).values(
                trail_count=cp.trail_count, trail_head=cp.trail_head, manifest_sha256=cp.manifest_sha256,
                time=cp.time, key_id=cp.key_id, public_key=cp.public_key, signature=cp.signature))
    tamper(run_dir, *statements)
    _trail(run_dir).write_text("".join(e.line() + "\n" for e in entries))


def test_a_recomputed_chain_fails_its_signatures(run_dir, key):
    _rewrite_everywhere(run_dir, 2, {"outcome": "override_decline", "reason": "Forged after the fact, quietly."})
    for report in (verify_run(run_dir), verify_run(run_dir, public_key=key)):  # caught even without the key
        problems = _problems(report)
        assert not report.ok
        assert _tail(MSG_DB_SIGNATURE) in problems and "review 2 (applicant 101)" in problems
        assert "review 3 (applicant 102)" in problems  # every later hash changed, so every later signature fails
        assert "chain broken" not in problems  # the chain itself is consistent: only the key tells


def test_a_chain_resigned_with_another_key_fails_against_the_public_key(run_dir, key, forger, archived):
    _rewrite_everywhere(run_dir, 2, {"reviewer": "Someone Else"}, signer=forger)
    assert verify_run(run_dir).ok  # consistent with itself and the key it now records
    report = verify_run(run_dir, public_key=key)
    assert MSG_TRAIL_OTHER_KEY.format(got=forger.key_id, expected=key.key_id) in report.problems
    report = verify_run(run_dir, public_key=key, checkpoints=[archived])
    assert _tail(MSG_CP_REWRITTEN) in _problems(report)


@pytest.mark.parametrize("how", ["delete rows", "delete review/"])
def test_wiping_the_reviews_is_caught_by_the_archived_checkpoint(run_dir, key, archived, how, review_db):
    if how == "delete rows":
        tamper(run_dir, delete(ReviewRow), delete(CheckpointRow), delete(TrailKeyRow))
        _trail(run_dir).write_text("")
    else:  # on PostgreSQL the run's reviews are its schema: dropped with the folder
        if review_db is not None:
            tamper(run_dir, text(f'DROP SCHEMA "{run_schema(verify_run(run_dir).run_id)}" CASCADE'))
        shutil.rmtree(run_dir / "review")
    assert verify_run(run_dir, public_key=key).ok  # nothing inside the run remembers the reviews
    report = verify_run(run_dir, public_key=key, checkpoints=[archived])
    assert not report.ok and f"records {REVIEWS} review(s)" in _problems(report)
    assert "the trail now holds 0: reviews were removed" in _problems(report)


def _edit_applicants(run_dir: Path) -> None:
    table = pd.read_parquet(run_dir / O.APPLICANTS)
    table.loc[0, "decision"] = "approve" if table.loc[0, "decision"] == "decline" else "decline"
    O.write_parquet(run_dir / O.APPLICANTS, table)


def test_edited_outputs_with_a_regenerated_manifest_are_caught(run_dir, key, forger, archived):
    sig = (run_dir / O.MANIFEST_SIG).read_bytes()
    _edit_applicants(run_dir)
    O.write_manifest(run_dir)  # the forger regenerates the manifest: it verifies against the files again
    assert O.verify_manifest(run_dir) == []
    assert O.MSG_SIG_MISSING in verify_run(run_dir, public_key=key).problems

    (run_dir / O.MANIFEST_SIG).write_bytes(sig)  # keeps the old signature
    for report in (verify_run(run_dir), verify_run(run_dir, public_key=key)):
        assert O.MSG_SIG_DIGEST in report.problems

    O.sign_manifest(run_dir, forger, verify_run(run_dir).run_id, REVIEWS, "x")  # signs with a key of their own
    report = verify_run(run_dir, public_key=key)
    assert O.MSG_SIG_OTHER_KEY.format(got=forger.key_id, expected=key.key_id) in report.problems
    report = verify_run(run_dir, public_key=key, checkpoints=[archived])
    assert _tail(MSG_CP_MANIFEST) in _problems(report)


def test_a_reseal_by_the_key_holder_is_caught_by_an_older_checkpoint(run_dir, key, archived):
    _edit_applicants(run_dir)
    seal_run(run_dir)  # with the operator's own key: signatures alone cannot object
    assert verify_run(run_dir, public_key=key).ok
    report = verify_run(run_dir, public_key=key, checkpoints=[archived])
    assert _tail(MSG_CP_MANIFEST) in _problems(report)


def test_checkpoints_of_another_key_or_run_are_refused(run_dir, key, forger, archived, tmp_path, slice_record):
    _, cp = archived
    fake = Checkpoint.sign(forger, cp.run_id, cp.manifest_sha256, 0, cp.trail_head)
    report = verify_run(run_dir, public_key=key, checkpoints=[("fake", fake)])
    assert MSG_CP_SIGNATURE.format(source="fake", key_id=key.key_id) in report.problems
    other = make_run(tmp_path / "other", slice_record)
    other_cp = seal_run(other)
    report = verify_run(run_dir, public_key=key, checkpoints=[("other run", other_cp)])
    assert MSG_CP_RUN.format(source="other run", got=other_cp.run_id, expected=cp.run_id) in report.problems


# ---- repair ------------------------------------------------------------------------
def test_repair_completes_an_export_cut_short(run_dir, key, capsys, tmp_path):
    whole = _trail(run_dir).read_bytes()
    _trail(run_dir).write_bytes(whole[: whole.rfind(b"\n", 0, len(whole) - 1) + 41])  # last line cut mid-way
    report = verify_run(run_dir, public_key=key)
    assert report.ok and report.export_torn and report.export_behind == 1
    assert cli_main(["verify", "--run", str(run_dir), "--repair", "--public-key", str(_pub(key, tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "REPAIRED: trail.jsonl: removed an incomplete last line of 40 bytes (the start of review 3" in out
    assert "REPAIRED: trail.jsonl: appended review 3 from the database" in out
    assert _trail(run_dir).read_bytes() == whole
    assert not verify_run(run_dir, public_key=key).notes


def test_repair_reexports_a_deleted_export(run_dir, key):
    whole = _trail(run_dir).read_bytes()
    _trail(run_dir).unlink()
    result = repair_run(run_dir, public_key=key)
    assert result.done == (f"trail.jsonl: appended reviews 1..{REVIEWS} from the database (the export was behind it)",)
    assert _trail(run_dir).read_bytes() == whole and result.after.ok and not result.after.notes
    assert repair_run(run_dir, public_key=key).done == (MSG_NOTHING,)


def test_repair_refuses_what_it_cannot_prove(run_dir, key):
    # An entry in the export that the database lacks: a crash of the old store, or a removed review?
    _remove_newest(run_dir)
    before = _trail(run_dir).read_bytes()
    result = repair_run(run_dir, public_key=key)
    assert result.done == () and result.refused == (MSG_REFUSE_EXPORT.format(n=1),)
    assert _trail(run_dir).read_bytes() == before and not result.after.ok

    _rewrite_everywhere(run_dir, 1, {"reason": "Forged reason, rehashed."})
    result = repair_run(run_dir, public_key=key)
    assert any(r.startswith(_head(MSG_REFUSE_DB)) for r in result.refused) and not result.after.ok

    _edit_applicants(run_dir)
    assert MSG_REFUSE_MANIFEST.format(n=1) in repair_run(run_dir, public_key=key).refused


# ---- the flow's seal ---------------------------------------------------------------
def test_seal_and_publish_puts_the_checkpoint_in_an_artifact(tmp_path, slice_record, key, monkeypatch):
    import logging

    import flows.sealing as sealing

    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(sealing, "create_markdown_artifact", lambda markdown, **kw: calls.append((markdown, kw)))
    monkeypatch.setattr(sealing, "get_run_logger", lambda: logging.getLogger("test"))
    run = make_run(tmp_path / "run", slice_record)
    sealed = sealing.seal_and_publish(run)
    markdown, kw = calls[0]
    assert kw["key"] == sealing.ARTIFACT_KEY
    published = Checkpoint.from_json(markdown.split("```json\n", 1)[1].split("```", 1)[0])
    assert published == sealed and published.signature_ok(key) and f"--run {run.resolve()}" in markdown
    assert verify_run(run, public_key=key, checkpoints=[("artifact", published)]).ok

    assert sealing.seal_and_publish(run, unsigned=True) is None
    assert calls[1][0].startswith("**UNSIGNED RUN.**") and not (run / O.MANIFEST_SIG).exists()
