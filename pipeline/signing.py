"""The operator's Ed25519 signing key: where it lives, how it is made, and when a run may go without it.

A hash chain alone only proves that whoever wrote last was consistent: anyone
who can write the run directory can recompute it. So the run's manifest and
every review are also signed with a private key that lives in the operator's
*keystore*, never in the run directory; the run records only the public key
and its key id (the SHA-256 fingerprint of the raw public key). `verify`,
given the public key from somewhere the run's writers cannot reach, then
tells an honest run from a consistent forgery.

Keystore: `--keystore DIR`, else `$CREDIT_AUDIT_KEYSTORE`, else
`$XDG_CONFIG_HOME/credit-audit/keys` (default `~/.config/credit-audit/keys`).
It holds `signing-key.pem` (PKCS#8, mode 0600; refused when group or others
can read it, as ssh refuses) and `signing-key.pub` (the public key to archive
and hand to auditors).

No key is a deliberate choice, never an accident: `resolve_signer` refuses
(NoSigningKey) unless unsigned work was asked for explicitly (`--unsigned`
or `CREDIT_AUDIT_UNSIGNED=1`). An auditor would rather a run stop at once
than learn months later that nothing in it can be verified.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._io import atomic_write_bytes

KEYSTORE_ENV = "CREDIT_AUDIT_KEYSTORE"
UNSIGNED_ENV = "CREDIT_AUDIT_UNSIGNED"
PRIVATE_FILE = "signing-key.pem"
PUBLIC_FILE = "signing-key.pub"

MSG_NO_KEY = (
    "no signing key in {keystore}: create one with `credit-audit keys init` (runs and reviews are signed with it, "
    "so `verify --public-key` can prove them), or pass --unsigned (or set CREDIT_AUDIT_UNSIGNED=1) to work "
    "unsigned, which `verify` can only check for internal consistency"
)
MSG_KEY_EXISTS = "{path} already exists: pass --force to replace it (runs signed with the old key then verify only with the old public key)"
MSG_KEY_PERMISSIONS = "{path} can be read by other users (mode {mode:o}): run `chmod 600 {path}`; a private key must be private"
MSG_KEY_UNREADABLE = "{path}: not an Ed25519 private key in PEM form ({why})"
MSG_PUBLIC_UNREADABLE = "{path}: not an Ed25519 public key in PEM form ({why})"
MSG_KEY_IN_RUN = "the keystore {keystore} is inside the run directory {run}: the private key must never live in the run"


class NoSigningKey(ValueError):
    """No key in the keystore and unsigned work was not asked for."""


class KeyFileError(ValueError):
    """A key file that cannot be used (unreadable, malformed, too open, already there)."""


def default_keystore() -> Path:
    """`$CREDIT_AUDIT_KEYSTORE`, else the XDG config folder's credit-audit/keys."""
    if env := os.environ.get(KEYSTORE_ENV):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "credit-audit" / "keys"


def keystore_path(keystore: str | Path | None) -> Path:
    return Path(keystore).expanduser() if keystore else default_keystore()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key and its key id (SHA-256 of the 32 raw bytes, hex)."""

    raw: bytes

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when `signature` is this key's signature of `message`."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def pem(self) -> bytes:
        return Ed25519PublicKey.from_public_bytes(self.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_b64(cls, text: str) -> PublicKey:
        raw = unb64(text)
        Ed25519PublicKey.from_public_bytes(raw)  # checks length and form
        return cls(raw)

    @classmethod
    def from_file(cls, path: str | Path) -> PublicKey:
        """A PEM public key file (`signing-key.pub`), or KeyFileError naming the file."""
        path = Path(path)
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise KeyFileError(MSG_PUBLIC_UNREADABLE.format(path=path, why=exc)) from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(MSG_PUBLIC_UNREADABLE.format(path=path, why=f"a {type(key).__name__}"))
        return cls(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


class Signer:
    """The private key, loaded from the keystore: signs; never written anywhere but the keystore."""

    def __init__(self, private: Ed25519PrivateKey, source: Path | None = None) -> None:
        self._private = private
        self.source = source
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = PublicKey(raw)

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:  # never the key itself
        return f"Signer(key_id={self.key_id[:16]}..., source={self.source})"


def _write_private(path: Path, data: bytes) -> None:
    """Write with mode 0600 from the first byte (a temporary file, then renamed over `path`)."""
    atomic_write_bytes(path, data, mode=0o600)


def create_key(keystore: str | Path | None = None, force: bool = False) -> Signer:
    """Make a new key pair in the keystore (folder 0700, private key 0600); refuses to replace one without `force`."""
    folder = keystore_path(keystore)
    private_path, public_path = folder / PRIVATE_FILE, folder / PUBLIC_FILE
    if private_path.exists() and not force:
        raise KeyFileError(MSG_KEY_EXISTS.format(path=private_path))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(private_path, pem)
    signer = Signer(private, private_path)
    tmp = public_path.with_name(f".{public_path.name}.tmp")
    tmp.write_bytes(signer.public.pem())
    os.replace(tmp, public_path)
    return signer


def has_key(keystore: str | Path | None = None) -> bool:
    return (keystore_path(keystore) / PRIVATE_FILE).is_file()


def load_signer(keystore: str | Path | None = None) -> Signer:
    """The keystore's private key; refuses a file that group or others can read."""
    path = keystore_path(keystore) / PRIVATE_FILE
    if not path.is_file():
        raise NoSigningKey(MSG_NO_KEY.format(keystore=path.parent))
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyFileError(MSG_KEY_PERMISSIONS.format(path=path, mode=mode))
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(MSG_KEY_UNREADABLE.format(path=path, why=exc)) from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(MSG_KEY_UNREADABLE.format(path=path, why=f"a {type(private).__name__}"))
    return Signer(private, path)


def load_public(keystore: str | Path | None = None) -> PublicKey:
    return PublicKey.from_file(keystore_path(keystore) / PUBLIC_FILE)


def unsigned_requested(unsigned: bool = False) -> bool:
    """True when unsigned work was asked for: the flag, or CREDIT_AUDIT_UNSIGNED=1."""
    return unsigned or os.environ.get(UNSIGNED_ENV, "").strip().lower() in ("1", "true", "yes")


def resolve_signer(
    keystore: str | Path | None = None, unsigned: bool = False, run_dir: str | Path | None = None
) -> Signer | None:
    """The signer for a run or a review app: the keystore's key; None only when unsigned was asked for.

    Raises NoSigningKey when there is no key and unsigned work was not requested, and
    refuses a keystore that lies inside `run_dir` (the key would travel with the run).
    """
    folder = keystore_path(keystore)
    if run_dir is not None:
        run, here = Path(run_dir).resolve(), folder.resolve()
        if here == run or run in here.parents:
            raise KeyFileError(MSG_KEY_IN_RUN.format(keystore=folder, run=run_dir))
    if unsigned_requested(unsigned):
        return None
    return load_signer(folder)
