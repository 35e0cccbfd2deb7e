"""`verify --repair`: finish what an interrupted write left undone, and refuse everything else.

With the database as the trail's source of truth, the only damage a crash can
do is to the export: trail.jsonl left behind the database, or its last line
cut short. Both repairs are provably safe, because they add only what the
database holds and the database has just been verified: the missing entries
are appended, and an incomplete last line is replaced only when it is the
beginning of the very entry that belongs there.

Everything else is refused, with the reason: a database that fails its own
checks, an export that disagrees with it (an entry in trail.jsonl that the
database lacks cannot be told apart from a removed review), a checkpoint the
trail no longer reaches, or outputs that differ from their sealed manifest.
Making any of those pass would turn evidence of tampering into a clean report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.checkpoint import Checkpoint
from pipeline.signing import PublicKey

from ._store import ReviewStore
from ._verify import VerifyReport, verify_run

MSG_REFUSE_DB = (
    "not repaired: the review database fails its own checks ({n} problem(s)); no repair of it can be proven "
    "safe, so nothing was changed"
)
MSG_REFUSE_CHECKPOINT = (
    "not repaired: {n} checkpoint(s) no longer match the trail; the removed or rewritten reviews cannot be "
    "restored from the run, so nothing was changed"
)
MSG_REFUSE_EXPORT = (
    "not repaired: trail.jsonl disagrees with the database ({n} problem(s)); it may be the evidence of a removed "
    "or altered review (an entry the database lacks cannot be told apart from a deleted one), so it was left as it is"
)
MSG_REFUSE_MANIFEST = (
    "not repaired: the run's outputs or their signature fail verification ({n} problem(s)); a sealed run is never "
    "re-sealed by repair (run the audit again to produce a new one)"
)
MSG_NOTHING = "nothing to repair"
EXPORT = "trail.jsonl: {what}"


@dataclass(frozen=True)
class RepairReport:
    """What repair did, what it refused and why, and the verification after it."""

    done: tuple[str, ...]
    refused: tuple[str, ...]
    after: VerifyReport


def repair_run(
    run_dir: str | Path,
    db_url: str | None = None,
    public_key: PublicKey | None = None,
    checkpoints: Sequence[tuple[str, Checkpoint]] = (),
) -> RepairReport:
    """Verify; re-export what the database holds and trail.jsonl lacks when that is all that is wrong."""
    before = verify_run(run_dir, db_url=db_url, public_key=public_key, checkpoints=checkpoints)
    refused: list[str] = []
    if before.manifest_problems:
        refused.append(MSG_REFUSE_MANIFEST.format(n=len(before.manifest_problems)))
    if before.trail_problems:
        refused.append(MSG_REFUSE_DB.format(n=len(before.trail_problems)))
    if before.checkpoint_problems:
        refused.append(MSG_REFUSE_CHECKPOINT.format(n=len(before.checkpoint_problems)))
    if before.export_problems:
        refused.append(MSG_REFUSE_EXPORT.format(n=len(before.export_problems)))
    done: list[str] = []
    safe = not (before.trail_problems or before.checkpoint_problems or before.export_problems)
    if safe and (before.export_behind or before.export_torn):
        store = ReviewStore(run_dir, db_url=db_url, run_id=before.run_id)
        try:
            with store.trail.locked():
                done = [EXPORT.format(what=w) for w in store.trail.catch_up(store.entries_after)]
        finally:
            store.close()
    after = verify_run(run_dir, db_url=db_url, public_key=public_key, checkpoints=checkpoints) if done else before
    if not done and not refused:
        done.append(MSG_NOTHING)
    return RepairReport(done=tuple(done), refused=tuple(refused), after=after)
