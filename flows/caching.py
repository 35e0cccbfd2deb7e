"""Resumable steps: Prefect caching keyed on data, configuration and code, holding only file paths.

A killed audit is run again with the same command. Each expensive step writes
its output into the run directory (atomically) and returns the *path*; Prefect
persists that JSON string in `<run>/.cache/` under a key made of the data
hash, the configuration, the code version, the run directory and the step
(chunk) name. A second run finds the key, gets the path back, and skips the
work. No applicant data is ever pickled into Prefect's result store.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect import Task

CACHE_DIR = ".cache"
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


def step_key(step: str, *extra: Any, run_dir: Path, data_hash: str, config: dict) -> str:
    """The cache key of one step (or chunk) of one run."""
    payload = json.dumps(
        [step, str(Path(run_dir).resolve()), data_hash, config, code_version(), *extra], sort_keys=True, default=str
    )
    return f"{step}-{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


def inputs_digest(*parts: Any) -> str:
    """SHA-256 of what a step really reads (record digests, file hashes, table rows), for its cache key.

    A step's key must change whenever its output would: keys made only of names (a chunk's first id,
    a previous run's path) let a rerun keep an output rendered from older inputs.
    """
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _key_from_parameters(_context: object, parameters: dict[str, Any]) -> str:
    return parameters["key"]


def durable(fn_task: Task, run_dir: Path) -> Task:
    """The task, cached by its `key` parameter, result (a path string) persisted as JSON in the run dir."""
    return fn_task.with_options(
        cache_key_fn=_key_from_parameters,
        persist_result=True,
        result_serializer="json",
        result_storage=(Path(run_dir) / CACHE_DIR).resolve(),
    )
