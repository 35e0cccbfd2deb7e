"""The hash-chained review trail: entries that each seal the one before, and their JSON-lines export.

Every entry is `{"seq", "prev", "record", "hash"}` plus, when signed,
`{"key_id", "signature"}`; `hash` is the SHA-256 of the canonical JSON of
`{"seq", "prev", "record"}`, `prev` is the previous entry's hash (the first
entry's `prev` is derived from the run id, so a trail cannot be moved to
another run unnoticed) and `signature` is the operator key's Ed25519
signature of `ENTRY_DOMAIN + hash`. Changing, removing or reordering any
entry breaks every hash after it; re-computing the hashes breaks the
signatures, which cannot be re-made without the private key.

The review database is the trail's source of truth: an entry and its row
are one database row, committed in one transaction (see _store.py).
`trail.jsonl` is an export of it, appended after each commit. A crash
between the commit and the append leaves the export *behind* (or its last
line cut short), never ahead: the next write, or `verify --repair`, appends
what is missing from the database. `verify` compares the two.

Writers of one run take an exclusive `fcntl.flock` on a lock file beside the
log (and a process-local lock), so two reviewers saving at the same moment
are written one after the other, each chained to the other's entry.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.checkpoint import canonical, genesis
from pipeline.signing import PublicKey, Signer, b64, unb64

ENTRY_DOMAIN = b"credit-audit review entry\n"
MSG_BAD_LINE = "trail line {line}: not a valid entry ({why})"
TAIL_BYTES = 1 << 16  # an entry line is at most ~10 kB (reason <= 2000 characters)
_local_lock = threading.Lock()

__all__ = ["Entry", "Trail", "canonical", "entry_hash", "genesis", "parse_line"]


def entry_hash(seq: int, prev: str, record: dict) -> str:
    return hashlib.sha256(canonical({"seq": seq, "prev": prev, "record": record})).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One sealed trail entry; `signature` and `key_id` are None in an unsigned trail."""

    seq: int
    prev: str
    record: dict
    hash: str
    key_id: str | None = None
    signature: str | None = None

    def line(self) -> str:
        fields = {"seq": self.seq, "prev": self.prev, "record": self.record, "hash": self.hash}
        if self.signature is not None:
            fields |= {"key_id": self.key_id, "signature": self.signature}
        return canonical(fields).decode()

    def signed(self, signer: Signer | None) -> Entry:
        if signer is None:
            return self
        sig = b64(signer.sign(ENTRY_DOMAIN + self.hash.encode()))
        return Entry(self.seq, self.prev, self.record, self.hash, signer.key_id, sig)

    def signature_ok(self, key: PublicKey) -> bool:
        if self.signature is None or self.key_id != key.key_id:
            return False
        try:
            return key.verify(unb64(self.signature), ENTRY_DOMAIN + self.hash.encode())
        except ValueError:
            return False


def seal(seq: int, prev: str, record: dict) -> Entry:
    return Entry(seq=seq, prev=prev, record=record, hash=entry_hash(seq, prev, record))


def parse_line(text: str, line: int) -> Entry:
    try:
        raw = json.loads(text)
        sig = raw.get("signature")
        entry = Entry(
            seq=int(raw["seq"]),
            prev=str(raw["prev"]),
            record=dict(raw["record"]),
            hash=str(raw["hash"]),
            key_id=None if sig is None else str(raw["key_id"]),
            signature=None if sig is None else str(sig),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(MSG_BAD_LINE.format(line=line, why=exc)) from exc
    return entry


@dataclass(frozen=True)
class ExportState:
    """What trail.jsonl holds: its complete lines and an incomplete last one (a write cut short), if any."""

    lines: list[str]
    torn: str | None


class Trail:
    """The export file of one run's reviews and the lock that orders their writers."""

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

    def state(self) -> ExportState:
        """The file's complete lines, and the text after the last newline when a write was cut short."""
        if not self.path.exists():
            return ExportState([], None)
        complete, _, rest = self.path.read_bytes().decode("utf-8", errors="replace").rpartition("\n")
        return ExportState([ln for ln in complete.split("\n") if ln.strip()], rest if rest.strip() else None)

    def lines(self) -> list[str]:
        """Every non-empty line, an incomplete last one included (as the file reads)."""
        state = self.state()
        return state.lines + ([state.torn] if state.torn else [])

    def entries(self) -> list[Entry]:
        return [parse_line(text, i) for i, text in enumerate(self.lines(), start=1)]

    def _tail(self) -> tuple[int | None, int, bytes]:
        """(seq of the last complete line, byte offset after it, the bytes after it). Call under `locked()`.

        The seq is 0 for an export with no complete line and None when the last complete
        line is not a readable entry (then nothing is appended: verify reports it).
        """
        if not self.path.exists():
            return 0, 0, b""
        size = self.path.stat().st_size
        start = max(0, size - TAIL_BYTES)
        with open(self.path, "rb") as fh:
            fh.seek(start)
            chunk = fh.read()
        cut = chunk.rfind(b"\n")
        if cut < 0:
            return (0, 0, chunk) if start == 0 else (None, size, b"")
        head, torn, end = chunk[:cut], chunk[cut + 1 :], start + cut + 1
        if start == 0 and not head.strip():
            return 0, end, torn
        newline = head.rfind(b"\n")
        if newline < 0 and start > 0:
            return None, end, torn
        try:
            return parse_line(head[newline + 1 :].decode("utf-8"), 0).seq, end, torn
        except (ValueError, UnicodeDecodeError):
            return None, end, torn

    def catch_up(self, committed: Callable[[int], list[Entry]]) -> list[str]:
        """Append the committed entries the export lacks; returns what was done. Call under `locked()`.

        `committed(after)` gives the database's entries with seq > after. Only two repairs
        are ever made, both provably safe: an incomplete last line that is the beginning of
        the next committed entry's line is completed (cut, then written whole), and entries
        the database holds beyond the export's last line are appended. An export that does
        not end in a readable entry is left alone (verify reports it).
        """
        last, end, torn = self._tail()
        if last is None:
            return []
        missing = committed(last)
        done: list[str] = []
        if torn.strip():
            if not missing or not missing[0].line().encode().startswith(torn):
                return []  # not a cut-short write of ours: evidence, left for verify
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
            done.append(
                f"removed an incomplete last line of {len(torn)} bytes (the start of review {missing[0].seq}, "
                "cut short by an interrupted write)"
            )
        if missing:
            self.write(missing)
            span = str(missing[0].seq) if len(missing) == 1 else f"{missing[0].seq}..{missing[-1].seq}"
            done.append(f"appended review{'s' if len(missing) > 1 else ''} {span} from the database (the export was behind it)")
        return done

    def write(self, entries: list[Entry]) -> None:
        """Append sealed entries and fsync them. Call under `locked()`."""
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write("".join(e.line() + "\n" for e in entries))
            fh.flush()
            os.fsync(fh.fileno())
