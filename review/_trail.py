"""The hash-chained review trail: an append-only JSON-lines log where each entry seals the one before.

Every entry is `{"seq", "prev", "record", "hash"}`; `hash` is the SHA-256 of
the canonical JSON of `{"seq", "prev", "record"}` and `prev` is the previous
entry's hash (the first entry's `prev` is derived from the run id, so a trail
cannot be moved to another run unnoticed). Changing, removing or reordering
any entry breaks every hash after it; the review database stores each
entry's hash too, so dropping the newest entries is caught by comparing the
two.

Appends take an exclusive `fcntl.flock` on a lock file beside the log (and a
process-local lock), so two reviewers saving at the same moment are written
one after the other, each chained to the other's entry: nothing is lost.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS_PREFIX = "credit-audit review trail for run "
MSG_BAD_LINE = "trail line {line}: not a valid entry ({why})"
_local_lock = threading.Lock()


def canonical(value: Any) -> bytes:
    """The one byte form that is hashed: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def genesis(run_id: str) -> str:
    return hashlib.sha256((GENESIS_PREFIX + run_id).encode()).hexdigest()


def entry_hash(seq: int, prev: str, record: dict) -> str:
    return hashlib.sha256(canonical({"seq": seq, "prev": prev, "record": record})).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One sealed trail entry."""

    seq: int
    prev: str
    record: dict
    hash: str

    def line(self) -> str:
        return canonical({"seq": self.seq, "prev": self.prev, "record": self.record, "hash": self.hash}).decode()


def parse_line(text: str, line: int) -> Entry:
    try:
        raw = json.loads(text)
        entry = Entry(seq=int(raw["seq"]), prev=str(raw["prev"]), record=dict(raw["record"]), hash=str(raw["hash"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(MSG_BAD_LINE.format(line=line, why=exc)) from exc
    return entry


class Trail:
    """The log file of one run's reviews; `append` is the only writer."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.lock_path = self.path.with_suffix(".lock")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across threads and processes for the duration of one write."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _local_lock, open(self.lock_path, "a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        return [ln for ln in self.path.read_text(encoding="utf-8").split("\n") if ln.strip()]

    def head(self) -> tuple[int, str]:
        """(last seq, last hash), or (0, genesis) for an empty trail. Call under `locked()` before appending."""
        lines = self.lines()
        if not lines:
            return 0, genesis(self.run_id)
        last = parse_line(lines[-1], len(lines))
        return last.seq, last.hash

    def seal(self, record: dict) -> Entry:
        """The next entry for `record` (not yet written). Call under `locked()`."""
        seq, prev = self.head()
        return Entry(seq=seq + 1, prev=prev, record=record, hash=entry_hash(seq + 1, prev, record))

    def write(self, entry: Entry) -> None:
        """Append one sealed entry and fsync it. Call under `locked()`."""
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(entry.line() + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def entries(self) -> list[Entry]:
        return [parse_line(text, i) for i, text in enumerate(self.lines(), start=1)]
