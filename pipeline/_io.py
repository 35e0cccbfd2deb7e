"""Atomic file writes and content hashes: a crash never leaves a half-written output."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"  # `.<name>.<random>.tmp`, beside the file it will become


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    `mode` is set on the temporary file before the first byte is written (a private key is
    never readable by others, not even for a moment).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.", suffix=TEMP_SUFFIX)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_temporaries(folder: str | Path, skip: tuple[str, ...] = ()) -> int:
    """Delete temporaries a killed writer left under `folder` (not under the top-level folders in `skip`).

    Only safe when nothing else is writing there (a run's own start). Returns how many went.
    """
    folder = Path(folder)
    stale = [p for p in folder.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}")
             if p.is_file() and p.relative_to(folder).parts[0] not in skip]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()
