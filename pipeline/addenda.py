"""Signed addenda to a sealed run's manifest: files a documented action adds to the run later.

A sealed run's manifest and its signature are never rewritten: re-sealing
would let whoever holds the key vouch for any change, and an archived
checkpoint pins the manifest's hash. Yet some documented actions add files
to a finished run: a notice re-issued after an analyst's review
(review/_reissue.py), or a notice rendered by `credit-audit notice`. Each
such action writes its new files (never over an existing one: `publish_new`)
and then one addendum, `manifest-addendum/NNNN.json` (0001, 0002, ...):

    {"kind", "format", "run_id", "number", "prev_sha256", "files": {path: {"sha256", "bytes"}},
     "why", "time", "key_id", "public_key", "signature"}

`prev_sha256` chains it to what came before (the first addendum to a hash of
the run id, each later one to the file of the addendum before it: rooted in
the run, not in manifest.json, so a run re-sealed to re-judge its gates keeps
its addenda) and `signature` is the operator key's Ed25519 signature of
`DOMAIN + canonical(every other field)`, the key that signs the manifest.

`addenda_problems` (called by `verify`) then finds: a listed file altered or
missing, an addendum edited (its signature), removed from the middle (a gap
in the numbers or a broken chain), signed by another key or not signed in a
signed run, or one that lists a file already sealed with other content (a
sealed file is never replaced). A file in the run that neither the manifest nor an addendum lists
is reported by `pipeline.outputs.verify_manifest`. Removing the *newest*
addendum together with its files leaves a consistent run: what it added is
then bound by the review trail (each re-issue's entry records the new
notice's path and SHA-256, and verify checks that an addendum lists them),
or by a checkpoint archived outside the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from ._io import TEMP_PREFIX, TEMP_SUFFIX, sha256_file
from .checkpoint import MANIFEST_SIG, canonical, manifest_digest, now_iso
from .layout import ADDENDA_DIR, MANIFEST
from .signing import PublicKey, Signer, b64, unb64

KIND = "credit-audit manifest addendum"
FORMAT = 1
DOMAIN = b"credit-audit manifest addendum\n"
_NAME = re.compile(r"^([0-9]{4,9})\.json$")
GENESIS_PREFIX = "credit-audit manifest addenda for run "
_FIELDS = ("run_id", "number", "prev_sha256", "files", "why", "time", "key_id", "public_key", "signature")
WRITE_TRIES = 20

MSG_NOT_SEALED = "{run}: the run is not sealed yet (manifest.json is missing): files cannot be added to it"
MSG_BAD_PATH = "{path}: not a file that an addendum may add to run {run}"
MSG_RUN_KEY = (
    "{run} is sealed with key {key_id}: files are added to it only with that key (this has {got}); "
    "use the keystore that holds it, or write outside the run with --out"
)
MSG_UNREADABLE = "{source}: not a manifest addendum ({why})"
MSG_UNEXPECTED = "{source}: not an addendum (addenda are named NNNN.json)"
MSG_GAP = "{source}: missing, yet addendum {later} follows it: an addendum was removed"
MSG_NUMBER = "{source}: says it is addendum {got}"
MSG_RUN = "{source}: an addendum of run {got!r}, not {expected!r}"
MSG_CHAIN = "{source}: does not follow {what} (edited, reordered or moved from another run)"
MSG_SIGNATURE = "{source}: the signature does not verify with key {key_id} (edited, or written without the private key)"
MSG_OTHER_KEY = "{source}: signed with key {got}, not with {expected}"
MSG_UNSIGNED = "{source}: not signed, in a run sealed with key {key_id}"
MSG_UNSIGNED_TRUSTED = "{source}: not signed: nothing proves who added its files"
MSG_RESEALS = "{source}: lists {path}, which is already sealed with other content (a sealed file is never replaced)"
MSG_LISTED_BAD_PATH = "{source}: lists {path}, which is not a file an addendum may add"
MSG_FILE_MISSING = "{path}: listed in {source} but missing"
MSG_FILE_ALTERED = "{path}: content differs from {source} (altered)"


class AddendumError(ValueError):
    """An addendum that cannot be written or read."""


@dataclass(frozen=True)
class Addendum:
    """One signed addendum; `key_id`, `public_key` and `signature` are None when written unsigned."""

    run_id: str
    number: int
    prev_sha256: str
    files: Mapping[str, Mapping[str, object]]
    why: str
    time: str
    key_id: str | None
    public_key: str | None
    signature: str | None

    def body(self) -> dict:
        fields = {k: v for k, v in asdict(self).items() if k != "signature"}
        fields["files"] = {k: dict(v) for k, v in self.files.items()}
        return {"kind": KIND, "format": FORMAT, **fields}

    def message(self) -> bytes:
        return DOMAIN + canonical(self.body())

    def to_json(self) -> str:
        return json.dumps({**self.body(), "signature": self.signature}, indent=2, sort_keys=True) + "\n"

    def signature_ok(self, key: PublicKey) -> bool:
        try:
            return (self.signature is not None and key.key_id == self.key_id
                    and key.verify(unb64(self.signature), self.message()))
        except ValueError:
            return False

    def self_consistent(self) -> bool:
        """Signed by the public key it carries (says nothing about whose key that is)."""
        try:
            return self.public_key is not None and self.signature_ok(PublicKey.from_b64(self.public_key))
        except ValueError:
            return False

    @classmethod
    def parse(cls, text: str, source: str) -> Addendum:
        """Strictly: kind, format and every field with its type, or AddendumError naming `source`."""
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise AddendumError(MSG_UNREADABLE.format(source=source, why=f"not JSON: {exc}")) from exc
        if not isinstance(raw, dict) or raw.get("kind") != KIND or raw.get("format") != FORMAT:
            raise AddendumError(MSG_UNREADABLE.format(source=source, why=f"kind/format is not {KIND!r}/{FORMAT}"))
        missing = [f for f in _FIELDS if f not in raw]
        if missing:
            raise AddendumError(MSG_UNREADABLE.format(source=source, why=f"missing {', '.join(missing)}"))
        files = raw["files"]
        ok = (
            isinstance(raw["number"], int) and not isinstance(raw["number"], bool)
            and all(isinstance(raw[f], str) for f in ("run_id", "prev_sha256", "why", "time"))
            and all(raw[f] is None or isinstance(raw[f], str) for f in ("key_id", "public_key", "signature"))
            and isinstance(files, dict)
            and all(isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in files.values())
        )
        if not ok:
            raise AddendumError(MSG_UNREADABLE.format(source=source, why="a field has the wrong type"))
        return cls(**{f: raw[f] for f in _FIELDS})


def genesis(run_id: str) -> str:
    """The `prev_sha256` of a run's first addendum: tied to the run id, so addenda cannot move between runs."""
    return hashlib.sha256((GENESIS_PREFIX + run_id).encode()).hexdigest()


def addendum_path(run_dir: str | Path, number: int) -> Path:
    return Path(run_dir) / ADDENDA_DIR / f"{number:04d}.json"


def _source(path: Path) -> str:
    return f"{ADDENDA_DIR}/{path.name}"


def addendum_files(run_dir: str | Path) -> tuple[dict[int, Path], list[str]]:
    """{number: path} of the addenda in the run, and a problem for each other file in their folder."""
    folder = Path(run_dir) / ADDENDA_DIR
    found: dict[int, Path] = {}
    problems: list[str] = []
    if not folder.is_dir():
        return found, problems
    for p in sorted(folder.iterdir()):
        if p.name.startswith(TEMP_PREFIX) and p.name.endswith(TEMP_SUFFIX):
            continue  # a writer's temporary (or one a killed writer left): never read
        m = _NAME.match(p.name)
        if m is None or not p.is_file():
            problems.append(MSG_UNEXPECTED.format(source=_source(p)))
        else:
            found[int(m.group(1))] = p
    return found, problems


def _manifest_files(run_dir: Path) -> dict[str, dict]:
    return dict(json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))["files"])


def sealed_files(run_dir: str | Path) -> dict[str, str]:
    """{path: SHA-256} of every file the manifest or an addendum lists (as written; `verify` checks them)."""
    run_dir = Path(run_dir)
    if not (run_dir / MANIFEST).is_file():
        return {}
    out = {rel: str(v["sha256"]) for rel, v in _manifest_files(run_dir).items()}
    found, _ = addendum_files(run_dir)
    for number in sorted(found):
        try:
            addendum = Addendum.parse(found[number].read_text(encoding="utf-8"), _source(found[number]))
        except (AddendumError, OSError, UnicodeDecodeError):
            continue
        out.update({rel: str(v["sha256"]) for rel, v in addendum.files.items() if rel not in out})
    return out


def _safe_rel(rel: str) -> bool:
    """A path an addendum may add: relative, inside the run, not in a folder that is never sealed."""
    from .outputs import UNTRACKED_DIRS  # pandas: only when adding or verifying

    p = PurePosixPath(rel)
    return (
        bool(rel) and not p.is_absolute() and ".." not in p.parts and p.as_posix() == rel
        and p.parts[0] not in UNTRACKED_DIRS and p.name not in (MANIFEST, MANIFEST_SIG)
    )


def relative_in_run(run_dir: str | Path, path: str | Path) -> str:
    """`path` relative to the run, or AddendumError when an addendum may not add it (checked before writing)."""
    run_dir = Path(run_dir)
    try:
        rel = Path(path).resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        raise AddendumError(MSG_BAD_PATH.format(path=path, run=run_dir)) from None
    if not _safe_rel(rel):
        raise AddendumError(MSG_BAD_PATH.format(path=rel, run=run_dir))
    return rel


def check_signer(run_dir: str | Path, signer: Signer | None) -> None:
    """Refuse to add to a signed run without its key, or with another one (verify would then fail)."""
    sig = Path(run_dir) / MANIFEST_SIG
    if not sig.is_file():
        return
    key_id = json.loads(sig.read_text(encoding="utf-8")).get("key_id")
    if signer is None or signer.key_id != key_id:
        got = "no key" if signer is None else f"key {signer.key_id}"
        raise AddendumError(MSG_RUN_KEY.format(run=run_dir, key_id=key_id, got=got))


def publish_new(path: str | Path, data: bytes) -> Path:
    """Write `path` atomically, never over an existing file (FileExistsError): an issued file is never replaced.

    The bytes go to a temporary file that is fsynced and then hard-linked to `path`; the link
    fails when `path` exists, so two writers can never both publish the same name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def add_files(run_dir: str | Path, run_id: str, files: Collection[Path], why: str,
              signer: Signer | None) -> Path:
    """Seal `files` (already written in the run) with the next addendum, signed by `signer`; returns its path.

    Writers never overwrite one another's addendum: the number is taken with `publish_new`
    and a writer that lost the race takes the next one.
    """
    run_dir = Path(run_dir)
    if manifest_digest(run_dir) is None:
        raise AddendumError(MSG_NOT_SEALED.format(run=run_dir))
    check_signer(run_dir, signer)
    listed = {relative_in_run(run_dir, f): {"sha256": sha256_file(f), "bytes": Path(f).stat().st_size} for f in files}
    for _ in range(WRITE_TRIES):
        found, _problems = addendum_files(run_dir)
        number = max(found, default=0) + 1
        prev = sha256_file(found[number - 1]) if number > 1 else genesis(run_id)
        unsigned = Addendum(run_id=run_id, number=number, prev_sha256=prev, files=listed, why=why,
                            time=now_iso(), key_id=None, public_key=None, signature=None)
        addendum = unsigned
        if signer is not None:
            signed = Addendum(**{**asdict(unsigned), "key_id": signer.key_id, "public_key": b64(signer.public.raw)})
            addendum = Addendum(**{**asdict(signed), "signature": b64(signer.sign(signed.message()))})
        try:
            return publish_new(addendum_path(run_dir, number), addendum.to_json().encode("utf-8"))
        except FileExistsError:
            continue
    raise AddendumError(f"{run_dir}: {WRITE_TRIES} writers in a row took the next addendum number; try again")


def _signature_problem(addendum: Addendum, source: str, trusted: PublicKey | None,
                       run_key_id: str | None) -> str | None:
    if addendum.signature is None:
        if trusted is not None:
            return MSG_UNSIGNED_TRUSTED.format(source=source)
        return MSG_UNSIGNED.format(source=source, key_id=run_key_id) if run_key_id else None
    expected = trusted.key_id if trusted is not None else run_key_id
    if expected is not None and addendum.key_id != expected:
        return MSG_OTHER_KEY.format(source=source, got=addendum.key_id, expected=expected)
    ok = addendum.signature_ok(trusted) if trusted is not None else addendum.self_consistent()
    return None if ok else MSG_SIGNATURE.format(source=source, key_id=addendum.key_id)


def _file_problems(run_dir: Path, addendum: Addendum, source: str, sealed: Mapping[str, str]) -> list[str]:
    problems = []
    for rel, entry in addendum.files.items():
        if not _safe_rel(rel):
            problems.append(MSG_LISTED_BAD_PATH.format(source=source, path=rel))
        elif rel in sealed and sealed[rel] != entry["sha256"]:
            problems.append(MSG_RESEALS.format(source=source, path=rel))
        elif not (run_dir / rel).is_file():
            problems.append(MSG_FILE_MISSING.format(path=rel, source=source))
        elif sha256_file(run_dir / rel) != entry["sha256"]:
            problems.append(MSG_FILE_ALTERED.format(path=rel, source=source))
    return problems


def addenda_problems(run_dir: str | Path, run_id: str, trusted: PublicKey | None = None,
                     run_key_id: str | None = None) -> tuple[list[str], dict[str, str]]:
    """Every problem of the run's addenda, and {path: SHA-256} of the files they add.

    `trusted`: the operator's public key from outside the run (each addendum must be signed
    by it); without it, `run_key_id` (the key of manifest.json.sig, when the run is signed)
    is the key each addendum must carry, checked for internal consistency only.
    """
    run_dir = Path(run_dir)
    found, problems = addendum_files(run_dir)
    added: dict[str, str] = {}
    if not found:
        return problems, added
    if not (run_dir / MANIFEST).is_file():
        return [*problems, MSG_NOT_SEALED.format(run=run_dir)], added
    sealed = {rel: str(v["sha256"]) for rel, v in _manifest_files(run_dir).items()}
    prev, what = genesis(run_id), f"the start of run {run_id}'s addenda"
    for number in range(1, max(found) + 1):
        path = addendum_path(run_dir, number)
        source = _source(path)
        if number not in found:
            problems.append(MSG_GAP.format(source=source, later=min(n for n in found if n > number)))
            prev, what = None, source
            continue
        try:
            addendum = Addendum.parse(found[number].read_text(encoding="utf-8"), source)
        except (AddendumError, OSError, UnicodeDecodeError) as exc:
            problems.append(str(exc))
            prev, what = sha256_file(found[number]), source
            continue
        if addendum.number != number:
            problems.append(MSG_NUMBER.format(source=source, got=addendum.number))
        if addendum.run_id != run_id:
            problems.append(MSG_RUN.format(source=source, got=addendum.run_id, expected=run_id))
        if prev is not None and addendum.prev_sha256 != prev:
            problems.append(MSG_CHAIN.format(source=source, what=what))
        signature = _signature_problem(addendum, source, trusted, run_key_id)
        problems += [signature] if signature else []
        problems += _file_problems(run_dir, addendum, source, {**sealed, **added})
        added.update({rel: str(v["sha256"]) for rel, v in addendum.files.items() if rel not in sealed and rel not in added})
        prev, what = sha256_file(found[number]), source
    return problems, added
