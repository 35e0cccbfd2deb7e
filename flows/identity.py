"""A run's identity: the code version and the run id, computed without importing Prefect.

The command line checks `--out` against the run id before the orchestrator
starts (Prefect's import alone takes seconds), so these live apart from the
flow.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from pipeline import outputs as O

# Every package of the project and the templates: a change in any of them can change an output.
_CODE_DIRS = ("pipeline", "flows", "reports", "review", "templates")
_ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 over the project's own source and templates: a code change invalidates the cache."""
    h = hashlib.sha256()
    for folder in _CODE_DIRS:
        for p in sorted((_ROOT / folder).rglob("*")):
            if p.is_file() and p.suffix in (".py", ".html", ".css", ".j2", ".txt", ".toml", ".json", ".ttf"):
                h.update(p.relative_to(_ROOT).as_posix().encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def run_id_for(data_hash: str, config: dict, model_hash: str | None = None) -> str:
    """Deterministic: the same data, configuration, model and code give the same run (and resume it)."""
    payload = json.dumps([config, model_hash, code_version()], sort_keys=True).encode()
    return O.check_run_id(f"run-{data_hash[:10]}-{hashlib.sha256(payload).hexdigest()[:10]}")
