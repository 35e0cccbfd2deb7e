"""Atomic file writes, content hashes, and reads of a user's file that cannot hang: a crash never leaves a
half-written output, and a fifo or a device given as an input file is refused instead of read forever."""

from __future__ import annotations

import hashlib
import os
import stat
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


class NotRegularFile(OSError):
    """The path is a directory, a fifo, a device (`/dev/zero`) or a socket, not a file of bytes."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class FileTooLarge(OSError):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (fifo)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file at `path` (symlinks followed), at most `limit` of them (None: no cap).

    Opened without blocking and checked on the open descriptor, so a fifo (which
    would wait for a writer forever), a device such as /dev/zero (endless bytes)
    or a file that grows after its size was checked can neither hang nor exhaust
    memory: NotRegularFile or FileTooLarge instead.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode_size = os.fstat(fd)
        if not stat.S_ISREG(mode_size.st_mode):
            raise NotRegularFile(next((k for test, k in _KINDS if test(mode_size.st_mode)), "not a regular file"))
        if limit is not None and mode_size.st_size > limit:
            raise FileTooLarge(mode_size.st_size)
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read() if limit is None else fh.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise FileTooLarge(len(data))
        return data
    finally:
        os.close(fd)
