"""A run's identity: the code version and the run id, computed without importing Prefect.

The command line checks `--out` against the run id before the orchestrator
starts (Prefect's import alone takes seconds), so these live apart from the
flow.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from pipeline import outputs as O

# Every package of the project; the templates are package data inside reports/ and review/.
# A change in any of them can change an output.
_CODE_PACKAGES = ("pipeline", "flows", "reports", "review")
_CODE_SUFFIXES = (".py", ".html", ".css", ".j2", ".txt", ".toml", ".json", ".ttf")


def _package_dir(name: str) -> Path:
    """Where a package is installed (the checkout or site-packages), found without importing it.

    find_spec of a top-level package reads no code, so the CLI's preflight stays free of
    the review store's and the reports' imports.
    """
    return Path(importlib.util.find_spec(name).submodule_search_locations[0])


@lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 over the project's own source and templates: a code change invalidates the cache.

    Paths are hashed relative to the packages' parent folder, so the checkout and an installed
    wheel of the same code give the same version.
    """
    h = hashlib.sha256()
    for package in _CODE_PACKAGES:
        root = _package_dir(package)
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix in _CODE_SUFFIXES:
                h.update(f"{package}/{p.relative_to(root).as_posix()}".encode())
                h.update(p.read_bytes())
    return h.hexdigest()


SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"  # the reproducible-builds convention
MSG_BAD_EPOCH = "SOURCE_DATE_EPOCH must be a whole number of seconds since 1970, got {value!r}"


def fixed_time(data: str | Path, reproducible: bool) -> str | None:
    """The run's creation time when outputs must be byte-reproducible, else None (use the clock).

    `SOURCE_DATE_EPOCH` wins; `--reproducible` without it takes the data file's modification
    time, so the same inputs on the same machine give the same bytes.
    """
    value = os.environ.get(SOURCE_DATE_EPOCH)
    if value is None and not reproducible:
        return None
    if value is None:
        seconds = int(Path(data).stat().st_mtime)
    elif value.strip().isdigit():
        seconds = int(value)
    else:
        raise ValueError(MSG_BAD_EPOCH.format(value=value))
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def run_id_for(data_hash: str, config: dict, model_hash: str | None = None, schema_hash: str | None = None) -> str:
    """Deterministic: the same data, configuration, model, schema file and code give the same run (and resume it).

    `schema_hash` is a lender's schema file's SHA-256 (None for the default, so runs of the default
    keep their ids): its labels and reason wording are in every notice.
    """
    parts = [config, model_hash, code_version(), *([schema_hash] if schema_hash else [])]
    payload = json.dumps(parts, sort_keys=True).encode()
    return O.check_run_id(f"run-{data_hash[:10]}-{hashlib.sha256(payload).hexdigest()[:10]}")
