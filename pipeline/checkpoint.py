"""Signed checkpoints: "run R had manifest M and a review trail of N entries with head H", signed.

As Certificate Transparency's signed tree heads do for a log, a checkpoint
pins the whole history up to that point with one signature: the trail head H
is the hash of the N-th entry, which chains back to the first, so a later
trail that dropped, changed or reordered any of those N entries no longer
reaches H. A checkpoint archived outside the run therefore catches what no
check inside the run can: the newest reviews removed together with their
rows and signatures, or the whole review store wiped.

The run's manifest signature (`manifest.json.sig`) is itself a checkpoint
(taken when the run was sealed); the review store signs a new one with every
review it writes. All of them are one JSON document:

    {"kind", "format", "run_id", "manifest_sha256", "trail_count", "trail_head",
     "time", "key_id", "public_key", "signature"}

`signature` is Ed25519 over the canonical JSON of every other field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._io import sha256_file
from .layout import MANIFEST
from .signing import PublicKey, Signer, b64, unb64

MANIFEST_SIG = "manifest.json.sig"
KIND = "credit-audit checkpoint"
FORMAT = 1
GENESIS_PREFIX = "credit-audit review trail for run "
MSG_BAD_CHECKPOINT = "{source}: not a credit-audit checkpoint ({why})"
_FIELDS = ("run_id", "manifest_sha256", "trail_count", "trail_head", "time", "key_id", "public_key", "signature")


def canonical(value: Any) -> bytes:
    """The one byte form that is hashed and signed: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def genesis(run_id: str) -> str:
    """The `prev` of a run's first trail entry (and the head of an empty trail): tied to the run id."""
    return hashlib.sha256((GENESIS_PREFIX + run_id).encode()).hexdigest()


def manifest_digest(run_dir: str | Path) -> str | None:
    """SHA-256 of the run's manifest.json as written, or None when the run has none (yet)."""
    path = Path(run_dir) / MANIFEST
    return sha256_file(path) if path.is_file() else None


class CheckpointError(ValueError):
    """A checkpoint document that cannot be read."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement of a run's state; see the module docstring."""

    run_id: str
    manifest_sha256: str | None
    trail_count: int
    trail_head: str
    time: str
    key_id: str
    public_key: str  # base64 of the 32 raw bytes
    signature: str  # base64

    def body(self) -> dict:
        fields = asdict(self)
        fields.pop("signature")
        return {"kind": KIND, "format": FORMAT, **fields}

    def message(self) -> bytes:
        return canonical(self.body())

    def to_json(self) -> str:
        return json.dumps({**self.body(), "signature": self.signature}, indent=2, sort_keys=True) + "\n"

    def signature_ok(self, key: PublicKey) -> bool:
        """True when `key` is the key this checkpoint names and its signature verifies under it."""
        try:
            return key.key_id == self.key_id and key.verify(unb64(self.signature), self.message())
        except ValueError:
            return False

    def self_consistent(self) -> bool:
        """Signed by the public key it carries (says nothing about whose key that is)."""
        try:
            return self.signature_ok(PublicKey.from_b64(self.public_key))
        except ValueError:
            return False

    @classmethod
    def sign(
        cls,
        signer: Signer,
        run_id: str,
        manifest_sha256: str | None,
        trail_count: int,
        trail_head: str,
        time: str | None = None,
    ) -> Checkpoint:
        unsigned = cls(
            run_id=run_id,
            manifest_sha256=manifest_sha256,
            trail_count=int(trail_count),
            trail_head=trail_head,
            time=time or now_iso(),
            key_id=signer.key_id,
            public_key=b64(signer.public.raw),
            signature="",
        )
        return cls(**{**asdict(unsigned), "signature": b64(signer.sign(unsigned.message()))})

    @classmethod
    def from_json(cls, text: str, source: str = "checkpoint") -> Checkpoint:
        """Parse strictly: the kind, format and every field with its type, or CheckpointError naming `source`."""
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise CheckpointError(MSG_BAD_CHECKPOINT.format(source=source, why=f"not JSON: {exc}")) from exc
        if not isinstance(raw, dict) or raw.get("kind") != KIND or raw.get("format") != FORMAT:
            raise CheckpointError(MSG_BAD_CHECKPOINT.format(source=source, why=f"kind/format is not {KIND!r}/{FORMAT}"))
        missing = [f for f in _FIELDS if f not in raw]
        if missing:
            raise CheckpointError(MSG_BAD_CHECKPOINT.format(source=source, why=f"missing {', '.join(missing)}"))
        count = raw["trail_count"]
        texts = [raw[f] for f in _FIELDS if f not in ("trail_count", "manifest_sha256")]
        if (
            not isinstance(count, int)
            or isinstance(count, bool)
            or count < 0
            or not all(isinstance(t, str) for t in texts)
            or not (raw["manifest_sha256"] is None or isinstance(raw["manifest_sha256"], str))
        ):
            raise CheckpointError(MSG_BAD_CHECKPOINT.format(source=source, why="a field has the wrong type"))
        return cls(**{f: raw[f] for f in _FIELDS})
