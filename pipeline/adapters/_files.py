"""What a model file is, read from its bytes before any library parses it: its hash and whether it is a pickle.

A pickle runs code while it loads, so a pickled model is refused from its
name and its first bytes alone; nothing here calls a loader. The other
checks only tell a file that is plainly of another kind from the one the
card declares, so the message can say so instead of a library's traceback.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from .._io import FileTooLarge, NotRegularFile, read_regular
from ._errors import (
    MSG_NO_MODEL,
    MSG_NOT_REGULAR,
    MSG_PICKLE,
    MSG_TOO_LARGE,
    MSG_UNREADABLE,
    MSG_ZIP_BOMB,
    WHY_PROTOCOL,
    WHY_SUFFIX,
    WHY_TORCH_SAVE,
    ModelFileError,
)

PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".pt", ".pth"})
TORCH_SUFFIXES = frozenset({".pt", ".pth"})  # torch.jit.save's examples name TorchScript files .pt
PICKLE_PROTOCOL_BYTE = 0x80  # pickle protocols 2 and later open with PROTO 0x80
MAX_MODEL_BYTES = 1 << 30  # credit models are kilobytes to megabytes; the file is held in memory once
MAX_UNPACKED_BYTES = 1 << 30  # an archive's members unpacked; deflate packs ~1000:1, so a 4 MB zip can hold 4 GB


def read_model(path: Path) -> bytes:
    """The model file's bytes, read once: they are hashed, sniffed and loaded, so what was checked is what runs."""
    try:
        return read_regular(path, MAX_MODEL_BYTES)
    except FileNotFoundError:
        raise ModelFileError(MSG_NO_MODEL.format(file=path)) from None
    except NotRegularFile as exc:
        raise ModelFileError(MSG_NOT_REGULAR.format(file=path, what="model file", kind=exc.kind)) from None
    except FileTooLarge as exc:
        raise ModelFileError(MSG_TOO_LARGE.format(file=path, size=exc.size, limit=MAX_MODEL_BYTES)) from None
    except OSError as exc:
        raise ModelFileError(MSG_UNREADABLE.format(file=path, reason=exc.strerror or exc)) from None


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def folder_sha256(folder: Path) -> str:
    """SHA-256 over a model folder's files: each relative name and length, then its bytes, sorted by name."""
    h = hashlib.sha256()
    files = sorted((f for f in folder.rglob("*") if f.is_file()), key=lambda f: f.relative_to(folder).as_posix())
    for file in files:
        name = file.relative_to(folder).as_posix().encode()
        data = file.read_bytes()
        h.update(len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def identity_sha256(model_sha256: str, card_bytes: bytes) -> str:
    """One hash for model and card together: changing the file, or how the card reads it, changes the audit."""
    h = hashlib.sha256(b"credit-audit model and card\n")
    h.update(bytes.fromhex(model_sha256))
    h.update(hashlib.sha256(card_bytes).digest())
    return h.hexdigest()


def zip_names(data: bytes) -> list[str] | None:
    """The member names of a zip archive, or None when the bytes are not one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def refuse_zip_bomb(path: Path, data: bytes) -> None:
    """ModelFileError when a zip's members would unpack to more than MAX_UNPACKED_BYTES (a zip bomb).

    skops and torch unpack members into memory; zipfile never reads past a member's
    declared size, so the sizes the archive declares bound what a loader can unpack.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    if unpacked > MAX_UNPACKED_BYTES:
        raise ModelFileError(MSG_ZIP_BOMB.format(file=path, size=unpacked, packed=len(data), limit=MAX_UNPACKED_BYTES))


def is_torchscript(names: list[str] | None) -> bool:
    """A TorchScript archive holds its module's code (`<root>/code/...`); a torch.save archive does not."""
    return bool(names) and any(n.split("/")[1:2] == ["code"] for n in names)  # type: ignore[union-attr]


def refuse_pickle(path: Path, data: bytes) -> None:
    """ModelFileError when the file is a pickle by its suffix or its bytes; nothing is loaded to find out.

    A TorchScript archive (a `.pt` / `.pth` one too) is not refused here: torch.jit.load
    reads no Python pickle globals, and no other adapter unpickles anything, so a
    TorchScript file under another card type fails as "not that format" instead.
    """
    names = zip_names(data)
    suffix = path.suffix.lower()
    torchscript = is_torchscript(names)
    if suffix in PICKLE_SUFFIXES and not (suffix in TORCH_SUFFIXES and torchscript):
        raise ModelFileError(MSG_PICKLE.format(file=path, why=WHY_SUFFIX.format(suffix=suffix)))
    if data[:1] == bytes([PICKLE_PROTOCOL_BYTE]):
        raise ModelFileError(MSG_PICKLE.format(file=path, why=WHY_PROTOCOL))
    pickled = [n for n in names or () if n.rsplit("/", 1)[-1] == "data.pkl"]
    if pickled and not torchscript:
        raise ModelFileError(MSG_PICKLE.format(file=path, why=WHY_TORCH_SAVE.format(member=pickled[0])))
