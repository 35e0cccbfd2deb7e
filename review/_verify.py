"""`verify`: is the run as it was written, and is the review record as it was saved?

Three checks, every problem reported (not just the first):
1. the run's manifest (pipeline.outputs.verify_manifest): outputs altered, missing or added;
2. the trail: each entry's hash matches its content, each `prev` is the previous hash,
   sequence numbers run 1, 2, 3... with none missing or repeated;
3. the database against the trail: every row has its trail entry with the same
   content and hash, and every trail entry has its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._store import DB_FILE, RECORD_FIELDS, TRAIL_FILE, ReviewStore, review_dir, run_id_of
from ._trail import Trail, entry_hash, genesis, parse_line

MSG_HASH = "trail entry {seq} (line {line}): content altered (its hash does not match)"
MSG_CHAIN = "trail entry {seq} (line {line}): chain broken (does not follow the entry before it)"
MSG_SEQ = "trail line {line}: sequence number {got}, expected {expected} (an entry is missing, repeated or reordered)"
MSG_ROW_NO_ENTRY = "review {seq} (applicant {applicant}): in the database but missing from the trail"
MSG_ENTRY_NO_ROW = "trail entry {seq} (applicant {applicant}): missing from the database"
MSG_ROW_DIFFERS = "review {seq} (applicant {applicant}): database row differs from the trail in {fields}"
MSG_RUN_ID = "trail entry {seq}: belongs to run {got!r}, not {expected!r}"


@dataclass(frozen=True)
class VerifyReport:
    """What `verify` found; `ok` when nothing."""

    run_dir: Path
    manifest_problems: tuple[str, ...]
    trail_problems: tuple[str, ...]
    entries: int
    rows: int
    head: str

    @property
    def problems(self) -> tuple[str, ...]:
        return self.manifest_problems + self.trail_problems

    @property
    def ok(self) -> bool:
        return not self.problems


def check_trail(lines: list[str], run_id: str) -> tuple[list[str], dict[int, dict], str]:
    """Problems, the entries by seq (as parsed) and the head hash of the trail lines."""
    problems: list[str] = []
    entries: dict[int, dict] = {}
    prev = genesis(run_id)
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
        entries.setdefault(e.seq, {"record": e.record, "hash": e.hash, "prev": e.prev})
        prev = e.hash
    return problems, entries, prev or ""


def verify_run(run_dir: str | Path, db_url: str | None = None) -> VerifyReport:
    """Check the manifest, the trail and the database of one run."""
    from pipeline.outputs import verify_manifest  # pipeline imports torch: only when verifying

    run_dir = Path(run_dir)
    manifest = tuple(verify_manifest(run_dir))
    has_db = db_url is not None or (review_dir(run_dir) / DB_FILE).exists()
    store = ReviewStore(run_dir, db_url=db_url) if has_db else None
    if store is None:
        run_id = run_id_of(run_dir)
        lines = Trail(review_dir(run_dir) / TRAIL_FILE, run_id).lines()
        rows = []
    else:
        run_id = store.run_id
        lines = store.trail.lines()
        rows = store.rows()
        store.close()
    problems, entries, head = check_trail(lines, run_id)
    seen = set()
    for row in rows:
        seen.add(row.seq)
        entry = entries.get(row.seq)
        if entry is None:
            problems.append(MSG_ROW_NO_ENTRY.format(seq=row.seq, applicant=row.applicant_id))
            continue
        differs = [k for k in RECORD_FIELDS if getattr(row, k) != entry["record"].get(k)]
        differs += [k for k, v in (("entry_hash", entry["hash"]), ("prev_hash", entry["prev"])) if getattr(row, k) != v]
        if differs:
            problems.append(MSG_ROW_DIFFERS.format(seq=row.seq, applicant=row.applicant_id, fields=", ".join(differs)))
    for seq, entry in sorted(entries.items()):
        if seq not in seen:
            problems.append(MSG_ENTRY_NO_ROW.format(seq=seq, applicant=entry["record"].get("applicant_id")))
    return VerifyReport(
        run_dir=run_dir,
        manifest_problems=manifest,
        trail_problems=tuple(problems),
        entries=len(lines),
        rows=len(rows),
        head=head,
    )
