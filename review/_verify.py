"""`verify`: is the run as it was sealed, and is the review record as it was saved?

Every problem is reported, not just the first:
1. the manifest (pipeline.outputs): outputs altered, missing or added, and its signature
   (`manifest.json.sig`): does it name this manifest, and is it by the key? Its signed addenda
   (pipeline.addenda: files added later, such as notices re-issued after review), and that
   every re-issued notice a review entry names is sealed with the hashes it records
   (review/_reissue.py);
2. the review database, the trail's source of truth: sequence numbers 1, 2, 3...,
   each entry's hash, each `prev` link, each entry's signature, and every signed
   checkpoint stored beside them (does the chain still reach the head it signed?);
3. `trail.jsonl` against the database: every exported entry equals its row. An
   export that is *behind* (a crash between the commit and the append) is a note,
   not a problem: the database holds those reviews, signed.
4. checkpoints archived outside the run (`--checkpoint`): signed by the given key,
   and the trail still holds the entry count and head they signed.

What it proves depends on the key. Given the operator's public key from outside
the run, signatures show that the manifest and every review were made with the
private key, which does not live in the run; archived checkpoints show that no
review up to them was removed or rewritten. Without a public key, only internal
consistency is checked: anyone who can write the run directory can produce a
consistent run with a key of their own. The report says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.checkpoint import Checkpoint, genesis, manifest_digest
from pipeline.signing import PublicKey

from ._reissue import notice_problems
from ._store import DB_FILE, NOTICE_FIELD, RECORD_FIELDS, TRAIL_FILE, ReviewStore, given_db_url, review_dir, run_id_of
from ._trail import Entry, ExportState, Trail, entry_hash, parse_line

# trail.jsonl (the export)
MSG_HASH = "trail entry {seq} (line {line}): content altered (its hash does not match)"
MSG_CHAIN = "trail entry {seq} (line {line}): chain broken (does not follow the entry before it)"
MSG_SEQ = "trail line {line}: sequence number {got}, expected {expected} (an entry is missing, repeated or reordered)"
MSG_ROW_NO_ENTRY = "review {seq} (applicant {applicant}): in the database but missing from the trail"
MSG_ENTRY_NO_ROW = "trail entry {seq} (applicant {applicant}): missing from the database"
MSG_ROW_DIFFERS = "review {seq} (applicant {applicant}): database row differs from the trail in {fields}"
MSG_RUN_ID = "trail entry {seq}: belongs to run {got!r}, not {expected!r}"
MSG_TORN = "trail.jsonl: the last line is not an entry and not the start of the next review in the database"
NOTE_BEHIND = (
    "trail.jsonl is {n} review(s) behind the database ({span}): a write was interrupted after its commit, "
    "or the export was deleted; the database holds them, so nothing is lost (the next review or "
    "`verify --repair` re-exports them)"
)
NOTE_TORN = "trail.jsonl ends in an incomplete line (the start of review {seq}): a write was cut short after its commit"
# the database (the trail's source of truth)
MSG_DB_SEQ = "review {got}: at position {expected} of the database (a review is missing, repeated or reordered)"
MSG_DB_HASH = "review {seq} (applicant {applicant}): content altered in the database (its hash does not match)"
MSG_DB_CHAIN = "review {seq} (applicant {applicant}): chain broken in the database (does not follow the review before it)"
MSG_DB_RUN_ID = "review {seq}: belongs to run {got!r}, not {expected!r}"
MSG_DB_SIGNATURE = (
    "review {seq} (applicant {applicant}): its signature does not verify (written or changed without the "
    "trail's private key)"
)
MSG_DB_UNSIGNED = "review {seq} (applicant {applicant}): not signed, in a trail signed from review {first} on"
MSG_TRAIL_OTHER_KEY = "the review trail is signed with key {got}, not with the given public key {expected}"
MSG_TRAIL_UNSIGNED = "the review trail's {n} review(s) are not signed: nothing proves who wrote them"
NOTE_TRAIL_UNSIGNED = "the review trail is not signed ({n} review(s)): its entries are only checked for consistency"
NOTE_LEGACY = (
    "reviews 1..{last} were written before the trail was signed: they are covered by the signed chain from "
    "review {first} on (their hashes are in it), not by signatures of their own"
)
# checkpoints
MSG_CP_SIGNATURE = "{source}: the checkpoint's signature does not verify with key {key_id}"
MSG_CP_RUN = "{source}: a checkpoint of run {got!r}, not {expected!r}"
MSG_CP_REMOVED = (
    "{source} ({time}) records {count} review(s) with head {head}; the trail now holds {n}: reviews were removed"
)
MSG_CP_REWRITTEN = "{source} ({time}): review {count} is not the review it signed: the trail was rewritten"
MSG_CP_MANIFEST = (
    "{source} ({time}): manifest.json is not the manifest it anchored (the run's outputs were re-sealed or "
    "replaced after it)"
)
MSG_CHECKPOINT_NEEDS_KEY = "a checkpoint can only be checked against the operator's public key: pass --public-key"
NOTE_NO_KEY = (
    "no public key was given: this checked only that the run, its signatures and its trail agree with "
    "themselves and with the key recorded in the run; anyone who can write the run directory could have "
    "produced that. Pass --public-key (and an archived --checkpoint) to verify against the operator's key."
)
NOTE_RUN_UNSIGNED = "the run was sealed without a signing key (no manifest.json.sig)"
MSG_TRAIL_KEY = "the review database's trail key is not a readable Ed25519 public key ({why})"
STORED = "checkpoint of review {count} stored in the run"


@dataclass(frozen=True)
class VerifyReport:
    """What `verify` found; `ok` when no problem (notes are facts, not failures)."""

    run_dir: Path
    run_id: str
    manifest_problems: tuple[str, ...]
    trail_problems: tuple[str, ...]  # the database: chain, signatures, trail key
    export_problems: tuple[str, ...]  # trail.jsonl against the database
    checkpoint_problems: tuple[str, ...]
    notes: tuple[str, ...]
    entries: int  # trail.jsonl lines
    rows: int  # database rows
    head: str  # the trail's head hash (the database's, when it has one)
    run_key_id: str | None  # key of manifest.json.sig
    trail_key_id: str | None  # key the trail is bound to
    trusted_key_id: str | None  # the public key verify was given
    checkpoints_checked: int
    newest_checkpoint: Checkpoint | None  # the newest checkpoint that passed: what --export-checkpoint writes
    export_behind: int = 0
    export_torn: bool = False

    @property
    def problems(self) -> tuple[str, ...]:
        return self.manifest_problems + self.trail_problems + self.export_problems + self.checkpoint_problems

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def against_key(self) -> bool:
        """True when signatures were checked against a key given from outside the run."""
        return self.trusted_key_id is not None


def check_trail(lines: list[str], run_id: str) -> tuple[list[str], dict[int, Entry], str]:
    """Problems, the entries by seq (as parsed) and the head hash of the exported trail lines."""
    problems: list[str] = []
    entries: dict[int, Entry] = {}
    prev: str | None = genesis(run_id)
    for line, text in enumerate(lines, start=1):
        try:
            e = parse_line(text, line)
        except ValueError as exc:
            problems.append(str(exc))
            prev = None
            continue
        if e.seq != line:
            problems.append(MSG_SEQ.format(line=line, got=e.seq, expected=line))
        if entry_hash(e.seq, e.prev, e.record) != e.hash:
            problems.append(MSG_HASH.format(seq=e.seq, line=line))
        elif e.prev != prev:
            problems.append(MSG_CHAIN.format(seq=e.seq, line=line))
        if e.record.get("run_id") != run_id:
            problems.append(MSG_RUN_ID.format(seq=e.seq, got=e.record.get("run_id"), expected=run_id))
        entries.setdefault(e.seq, e)
        prev = e.hash
    return problems, entries, prev or ""


def check_database(
    entries: list[Entry], run_id: str, trail_key: PublicKey | None, trusted: PublicKey | None
) -> tuple[list[str], list[str], str]:
    """Problems and notes of the database's chain and signatures, and its head hash."""
    problems: list[str] = []
    prev = genesis(run_id)
    unsigned: list[int] = []
    first_signed: int | None = None
    for position, e in enumerate(entries, start=1):
        who = {"seq": e.seq, "applicant": e.record.get("applicant_id")}
        if e.seq != position:
            problems.append(MSG_DB_SEQ.format(got=e.seq, expected=position))
        if entry_hash(e.seq, e.prev, e.record) != e.hash:
            problems.append(MSG_DB_HASH.format(**who))
        elif e.prev != prev:
            problems.append(MSG_DB_CHAIN.format(**who))
        if e.record.get("run_id") != run_id:
            problems.append(MSG_DB_RUN_ID.format(seq=e.seq, got=e.record.get("run_id"), expected=run_id))
        if e.signature is None:
            if first_signed is None:
                unsigned.append(e.seq)
            else:
                problems.append(MSG_DB_UNSIGNED.format(first=first_signed, **who))
        else:
            first_signed = first_signed or e.seq
            if trail_key is None or not e.signature_ok(trail_key):
                problems.append(MSG_DB_SIGNATURE.format(**who))
        prev = e.hash
    notes: list[str] = []
    if trusted is not None and trail_key is not None and trail_key.key_id != trusted.key_id:
        problems.append(MSG_TRAIL_OTHER_KEY.format(got=trail_key.key_id, expected=trusted.key_id))
    if entries and first_signed is None:
        if trusted is not None:
            problems.append(MSG_TRAIL_UNSIGNED.format(n=len(entries)))
        else:
            notes.append(NOTE_TRAIL_UNSIGNED.format(n=len(entries)))
    elif unsigned:
        notes.append(NOTE_LEGACY.format(last=unsigned[-1], first=first_signed))
    return problems, notes, prev


def check_export(state: ExportState, entries: list[Entry], run_id: str) -> tuple[list[str], list[str], int, bool]:
    """Problems and notes of trail.jsonl against the database; how far behind it is, and whether cut short."""
    problems, by_file, _ = check_trail(state.lines, run_id)
    by_seq = {e.seq: e for e in entries}
    for seq, got in sorted(by_file.items()):
        row = by_seq.get(seq)
        if row is None:
            problems.append(MSG_ENTRY_NO_ROW.format(seq=seq, applicant=got.record.get("applicant_id")))
            continue
        differs = [k for k in (*RECORD_FIELDS, NOTICE_FIELD) if row.record.get(k) != got.record.get(k)]
        differs += [
            k
            for k, a, b in (
                ("entry_hash", row.hash, got.hash),
                ("prev_hash", row.prev, got.prev),
                ("key_id", row.key_id, got.key_id),
                ("signature", row.signature, got.signature),
            )
            if a != b
        ]
        if differs:
            problems.append(MSG_ROW_DIFFERS.format(seq=seq, applicant=row.record.get("applicant_id"),
                                                   fields=", ".join(differs)))
    last = max(by_file, default=0)
    for e in entries:
        if e.seq <= last and e.seq not in by_file:
            problems.append(MSG_ROW_NO_ENTRY.format(seq=e.seq, applicant=e.record.get("applicant_id")))
    behind = [e for e in entries if e.seq > last]
    notes: list[str] = []
    torn = False
    if state.torn is not None:
        if behind and behind[0].line().startswith(state.torn):
            notes.append(NOTE_TORN.format(seq=behind[0].seq))
            torn = True
        else:
            problems.append(MSG_TORN)
    if behind:
        span = str(behind[0].seq) if len(behind) == 1 else f"reviews {behind[0].seq}..{behind[-1].seq}"
        notes.append(NOTE_BEHIND.format(n=len(behind), span=span))
    return problems, notes, len(behind), torn


def check_checkpoint(
    checkpoint: Checkpoint,
    source: str,
    key: PublicKey | None,
    run_id: str,
    entries: list[Entry],
    manifest: str | None = None,
) -> list[str]:
    """Problems of one checkpoint: its signature under `key`, its run, whether the trail still reaches its head.

    `manifest` (the current manifest's digest) is compared only when given: for checkpoints
    archived outside the run, which pin the sealed outputs as they were.
    """
    what = {"source": source, "time": checkpoint.time, "count": checkpoint.trail_count}
    problems = []
    if key is None or not checkpoint.signature_ok(key):
        problems.append(MSG_CP_SIGNATURE.format(source=source, key_id=key.key_id if key else checkpoint.key_id))
    if checkpoint.run_id != run_id:
        problems.append(MSG_CP_RUN.format(source=source, got=checkpoint.run_id, expected=run_id))
        return problems
    count = checkpoint.trail_count
    if count > len(entries):
        problems.append(MSG_CP_REMOVED.format(head=checkpoint.trail_head[:16], n=len(entries), **what))
    elif (entries[count - 1].hash if count else genesis(run_id)) != checkpoint.trail_head:
        problems.append(MSG_CP_REWRITTEN.format(**what))
    if manifest is not None and checkpoint.manifest_sha256 is not None and checkpoint.manifest_sha256 != manifest:
        problems.append(MSG_CP_MANIFEST.format(**what))
    return problems


@dataclass(frozen=True)
class StoreContents:
    """What the review store holds, as read for verification."""

    entries: list[Entry]
    checkpoints: list[Checkpoint]
    trail_key: PublicKey | None
    export: ExportState
    problems: list[str]


def read_store(run_dir: Path, db_url: str | None, run_id: str) -> StoreContents:
    """The database's entries, checkpoints and trail key, and the export file (no database: empty)."""
    db_url = given_db_url(db_url)  # $CREDIT_AUDIT_REVIEW_DB too: a server's reviews are never read as "none"
    has_db = db_url is not None or (review_dir(run_dir) / DB_FILE).exists()
    if not has_db:
        return StoreContents([], [], None, Trail(review_dir(run_dir) / TRAIL_FILE, run_id).state(), [])
    store = ReviewStore(run_dir, db_url=db_url, run_id=run_id)
    try:
        problems, key = [], None
        try:
            key = store.trail_key()
        except ValueError as exc:
            problems.append(MSG_TRAIL_KEY.format(why=exc))
        return StoreContents(store.entries(), store.checkpoints(), key, store.trail.state(), problems)
    finally:
        store.close()


def verify_run(
    run_dir: str | Path,
    db_url: str | None = None,
    public_key: PublicKey | None = None,
    checkpoints: Sequence[tuple[str, Checkpoint]] = (),
) -> VerifyReport:
    """Check the manifest and its signature, the trail and its database, and any archived checkpoints.

    `public_key` is the operator's key from outside the run; `checkpoints` are (name, checkpoint)
    pairs archived outside the run (they need `public_key`: ValueError otherwise).
    """
    from pipeline.addenda import addenda_problems, sealed_files
    from pipeline.outputs import manifest_signature_problems, verify_manifest  # pandas: only when verifying

    if checkpoints and public_key is None:
        raise ValueError(MSG_CHECKPOINT_NEEDS_KEY)
    run_dir = Path(run_dir)
    run_id = run_id_of(run_dir)
    signature_problems, sealed = manifest_signature_problems(run_dir, run_id, public_key)
    added_problems, added = addenda_problems(run_dir, run_id, public_key, sealed.key_id if sealed else None)
    manifest = [*verify_manifest(run_dir, also_sealed=added), *signature_problems, *added_problems]
    notes = [] if sealed is not None or public_key is not None else [NOTE_RUN_UNSIGNED]

    store = read_store(run_dir, db_url, run_id)
    entries, stored, trail_key, export = store.entries, store.checkpoints, store.trail_key, store.export
    trail, db_notes, head = check_database(entries, run_id, trail_key, public_key)
    trail = store.problems + trail
    reissued, reissue_notes = notice_problems([(e.seq, e.record) for e in entries], sealed_files(run_dir), added)
    manifest += reissued
    notes += reissue_notes
    export_problems, export_notes, behind, torn = check_export(export, entries, run_id)
    notes += db_notes + export_notes

    cp_problems: list[str] = []
    passed: list[Checkpoint] = []
    for cp in stored:
        found = check_checkpoint(cp, STORED.format(count=cp.trail_count), trail_key, run_id, entries)
        cp_problems += found
        passed += [] if found else [cp]
    if sealed is not None and not signature_problems:
        found = check_checkpoint(sealed, "manifest.json.sig", PublicKey.from_b64(sealed.public_key), run_id, entries)
        cp_problems += found
        passed += [] if found else [sealed]
    digest = manifest_digest(run_dir)
    for source, cp in checkpoints:
        cp_problems += check_checkpoint(cp, source, public_key, run_id, entries, manifest=digest)
    if public_key is None:
        notes.append(NOTE_NO_KEY)
    newest = max(passed, key=lambda c: (c.trail_count, c.manifest_sha256 == digest, c.time), default=None)
    return VerifyReport(
        run_dir=run_dir,
        run_id=run_id,
        manifest_problems=tuple(manifest),
        trail_problems=tuple(trail),
        export_problems=tuple(export_problems),
        checkpoint_problems=tuple(cp_problems),
        notes=tuple(notes),
        entries=len(export.lines) + (1 if export.torn else 0),
        rows=len(entries),
        head=head,
        run_key_id=sealed.key_id if sealed else None,
        trail_key_id=trail_key.key_id if trail_key else None,
        trusted_key_id=public_key.key_id if public_key else None,
        checkpoints_checked=len(checkpoints),
        newest_checkpoint=newest,
        export_behind=behind,
        export_torn=torn,
    )
