"""The run directory: atomic writes of JSON/Parquet outputs and the SHA-256 manifest.

Every file is written to a temporary name and renamed, so a reader (or a run
that was killed) never sees half a file; the manifest is written last and
lists every file with its hash, so `verify` can tell an altered or missing
output from a good one.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import atomic_write_bytes, atomic_write_text, sha256_file

MANIFEST = "manifest.json"
AUDIT_JSON = "audit.json"
APPLICANTS = "applicants.parquet"
MODEL_DIR = "model"
_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
# Mutable by design (the review store with its own hash-chained log; the resumable-step cache): not in the manifest.
UNTRACKED_DIRS = ("review", ".cache")


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def write_json(path: Path, data: dict) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, default=_json_default, allow_nan=False))


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return atomic_write_bytes(path, buf.getvalue())


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def check_run_id(run_id: str) -> str:
    """Run ids become folder names: only a safe character set is allowed."""
    if not _SAFE_RUN_ID.match(run_id):
        raise ValueError(f"run id must match {_SAFE_RUN_ID.pattern}, got {run_id!r}")
    return run_id


def _tracked_files(run_dir: Path) -> list[Path]:
    return [
        p
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
        and p.name != MANIFEST
        and not p.name.endswith(".tmp")
        and p.relative_to(run_dir).parts[0] not in UNTRACKED_DIRS
    ]


def write_manifest(run_dir: Path) -> Path:
    """Hash every output file under run_dir (not the manifest, temporaries or the review store)."""
    run_dir = Path(run_dir)
    files = {
        p.relative_to(run_dir).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in _tracked_files(run_dir)
    }
    return write_json(run_dir / MANIFEST, {"format": 1, "files": files})


def verify_manifest(run_dir: Path) -> list[str]:
    """Problems found (empty list = every listed file present and unaltered, nothing unlisted)."""
    run_dir = Path(run_dir)
    if not (run_dir / MANIFEST).exists():
        return [f"{run_dir / MANIFEST}: missing"]
    listed = read_json(run_dir / MANIFEST)["files"]
    problems = []
    for rel, entry in listed.items():
        p = run_dir / rel
        if not p.exists():
            problems.append(f"{rel}: listed in the manifest but missing")
        elif sha256_file(p) != entry["sha256"]:
            problems.append(f"{rel}: content differs from the manifest (altered)")
    for p in _tracked_files(run_dir):
        rel = p.relative_to(run_dir).as_posix()
        if rel not in listed:
            problems.append(f"{rel}: not listed in the manifest")
    return problems
