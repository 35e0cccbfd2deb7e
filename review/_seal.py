"""Sealing a run: its manifest, then the manifest's signature, which is also the run's first checkpoint.

Called where the audit flow used to write only the manifest. The signer is
resolved *before* anything is written, so a run without a key and without
`unsigned` ends with NoSigningKey and no manifest at all (the same command,
with a key, then resumes from its cache and seals in seconds) rather than
with a manifest that looks sealed and proves nothing.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import outputs as O
from pipeline.checkpoint import Checkpoint
from pipeline.signing import Signer, resolve_signer

from ._store import run_id_of, trail_head


def seal_run(
    run_dir: str | Path,
    signer: Signer | None = None,
    unsigned: bool = False,
    keystore: str | Path | None = None,
    db_url: str | None = None,
    written: list[Path] | None = None,
) -> Checkpoint | None:
    """Write manifest.json and, with a key, manifest.json.sig; returns the signed checkpoint (None: unsigned).

    The checkpoint names the manifest's SHA-256 and the review trail's entry count and head
    at this moment (0 and the run's genesis hash for a new run).
    """
    run_dir = Path(run_dir)
    if signer is None:
        signer = resolve_signer(keystore, unsigned, run_dir)  # NoSigningKey: before anything is written
    O.write_manifest(run_dir, written)  # only the files this run wrote (None: every file)
    if signer is None:
        return None
    count, head = trail_head(run_dir, db_url)
    return O.sign_manifest(run_dir, signer, run_id_of(run_dir), count, head)
