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
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import atomic_write_bytes, atomic_write_text, sha256_file
from .layout import (  # noqa: F401 - re-exported: the run layout
    APPLICANTS,
    AUDIT_JSON,
    BACKGROUND,
    FAIRNESS,
    FLAGS,
    MANIFEST,
    MODEL_DIR,
    NOTICES_DIR,
    REPORT_PDF,
)

_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
# Mutable by design (the review store with its own hash-chained log; the resumable-step cache): not in the manifest.
UNTRACKED_DIRS = ("review", ".cache")
# Which run a folder belongs to, written before anything else (a run killed early leaves it too).
OWNER_FILE = Path(".cache") / "run-id"
MSG_OTHER_RUN = (
    "{path} holds another run ({other}), and this audit is run {run_id}: a run folder holds one run."
    " Choose another --out, or add --replace to clear that folder first"
)
MSG_FOREIGN_FOLDER = (
    "{path} is not empty and holds no credit-audit run; choose an empty or new --out"
    " (--replace clears only folders that hold a run)"
)


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


def run_owner(run_dir: Path) -> str | None:
    """The run id a folder belongs to (None: no run has claimed it)."""
    try:
        return (Path(run_dir) / OWNER_FILE).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def check_run_dir(run_dir: Path, run_id: str, replace: bool = False) -> None:
    """Refuse a folder that holds another run, or files of no run at all (nothing is written here)."""
    run_dir = Path(run_dir)
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return
    owner = run_owner(run_dir)
    if owner is None:
        raise ValueError(MSG_FOREIGN_FOLDER.format(path=run_dir))
    if owner != run_id and not replace:
        raise ValueError(MSG_OTHER_RUN.format(path=run_dir, other=owner, run_id=run_id))


def claim_run_dir(run_dir: Path, run_id: str, replace: bool = False) -> Path:
    """Make `run_dir` this run's folder: checked, cleared first when it held another run and `replace`."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir, run_id, replace)
    if replace and run_owner(run_dir) not in (None, run_id):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if run_owner(run_dir) != run_id:
        atomic_write_text(run_dir / OWNER_FILE, run_id)
    return run_dir


def _tracked_files(run_dir: Path) -> list[Path]:
    return [
        p
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
        and p.name != MANIFEST
        and not p.name.endswith(".tmp")
        and p.relative_to(run_dir).parts[0] not in UNTRACKED_DIRS
    ]


def write_manifest(run_dir: Path, written: list[Path] | None = None) -> Path:
    """Hash the run's output files (not the manifest, temporaries or the review store).

    `written`: the files this run wrote; only they are sealed, so a file that someone else put
    in the folder is never vouched for (verify then reports it as not listed). None: every file.
    """
    run_dir = Path(run_dir)
    tracked = _tracked_files(run_dir)
    if written is not None:
        mine = {Path(p).resolve() for p in written}
        tracked = [p for p in tracked if p.resolve() in mine]
    files = {
        p.relative_to(run_dir).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in tracked
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
