"""Resumable steps: our own JSON step records, keyed on what each step reads and sealed with a keyed MAC.

A killed audit is run again with the same command. Each expensive step writes
its outputs into the run directory (atomically) and returns the list of files
it wrote; the flow then writes a *step record* in `<run>/.cache/steps/`:
plain JSON holding the step's key, the relative paths of those files with
their SHA-256, and an HMAC-SHA256 over all of it. A second run with the same
key gets the file list back and skips the work.

Why not Prefect's result persistence: a Prefect result record names its own
serializer, so a record rewritten into the `pickle` format would be
unpickled, and run as code, by the next run (the run directory may sit on
storage that every Dask worker shares). Here Prefect persists nothing
(`NO_CACHE`, no result storage), and a step record is trusted only when

- it parses as JSON and has exactly the expected fields (nothing is ever unpickled),
- its MAC verifies under the operator's cache key, which lives outside the
  run (`$CREDIT_AUDIT_KEYSTORE`, default `~/.config/credit-audit/keys/`),
  so whoever can write into the run cannot forge one, and
- every file it lists is inside the run and still has the recorded hash.

Anything else is discarded with a warning and the step is computed again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Task
from prefect.cache_policies import NO_CACHE

from pipeline import atomic_write_text
from pipeline.outputs import sha256_file
from pipeline.signing import default_keystore

from .identity import code_version

CACHE_DIR = ".cache"
STEPS_DIR = Path(CACHE_DIR) / "steps"
STEP_RECORD_FORMAT = 1
CACHE_KEY_FILE = "cache-hmac.key"
CACHE_KEY_BYTES = 32
MSG_DISCARDED = "step record %s discarded (%s); computing the step again"
MSG_BAD_KEY_FILE = "{path}: the cache key must be {n} bytes (delete it to create a new one)"
log = logging.getLogger(__name__)


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


def cache_key() -> bytes:
    """The operator's secret for step-record MACs, created (mode 0600) on first use."""
    path = default_keystore() / CACHE_KEY_FILE  # the operator's key folder, beside the signing key
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another run created it first
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(CACHE_KEY_BYTES))
    secret = path.read_bytes()
    if len(secret) != CACHE_KEY_BYTES:
        raise ValueError(MSG_BAD_KEY_FILE.format(path=path, n=CACHE_KEY_BYTES))
    return secret


def _canonical(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


class StepRecords:
    """The run's step records: written after a step finished, trusted only after every check."""

    def __init__(self, run_dir: str | Path, secret: bytes) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.folder = self.run_dir / STEPS_DIR
        self._secret = secret

    def _path(self, key: str) -> Path:
        # keys are made by step_key (`name-<hex>`); hash them anyway so no key can name a path
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"

    def _mac(self, body: dict) -> str:
        return hmac.new(self._secret, _canonical(body), hashlib.sha256).hexdigest()

    def save(self, key: str, files: list[str]) -> None:
        outputs = {}
        for f in files:
            rel = Path(f).resolve().relative_to(self.run_dir).as_posix()
            outputs[rel] = sha256_file(self.run_dir / rel)
        body = {"format": STEP_RECORD_FORMAT, "key": key, "outputs": outputs}
        atomic_write_text(self._path(key), json.dumps({**body, "mac": self._mac(body)}, indent=1))

    def load(self, key: str) -> list[str] | None:
        """The recorded files when the record passes every check; None (and a warning) otherwise."""
        path = self._path(key)
        if not path.exists():
            return None
        try:
            files = self._checked(path, key)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(MSG_DISCARDED, path.name, exc)
            path.unlink(missing_ok=True)
            return None
        return files

    def _checked(self, path: Path, key: str) -> list[str]:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or set(record) != {"format", "key", "outputs", "mac"}:
            raise ValueError("not a step record")
        body = {k: record[k] for k in ("format", "key", "outputs")}
        if not hmac.compare_digest(str(record["mac"]), self._mac(body)):
            raise ValueError("its MAC does not verify under this operator's cache key")
        if record["format"] != STEP_RECORD_FORMAT or record["key"] != key:
            raise ValueError("it belongs to another step or format")
        files = []
        for rel, digest in dict(record["outputs"]).items():
            target = (self.run_dir / rel).resolve()
            if not target.is_relative_to(self.run_dir):
                raise ValueError(f"{rel} is outside the run")
            if not target.is_file() or sha256_file(target) != digest:
                raise ValueError(f"{rel} is missing or changed since the step wrote it")
            files.append(str(target))
        return files


class ItemJournal:
    """Per-item progress of one step (a notice chunk), so a killed step resumes at its first unwritten item.

    One JSON line per finished item: its id, the file written and its SHA-256, with a MAC under the
    operator's cache key. On resume an item is skipped only when its line verifies and its file still
    has the recorded hash; a bad line is ignored (the item is rendered again), never trusted.
    """

    def __init__(self, records: StepRecords, key: str) -> None:
        self.records = records
        self.path = records._path(key).with_suffix(".items.jsonl")
        self.key = key

    def add(self, items: list[tuple[int, str]]) -> None:
        lines = []
        for item, file in items:
            rel = Path(file).resolve().relative_to(self.records.run_dir).as_posix()
            body = {"key": self.key, "item": int(item), "file": rel, "sha256": sha256_file(self.records.run_dir / rel)}
            lines.append(json.dumps({**body, "mac": self.records._mac(body)}) + "\n")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:  # whole lines; a torn last line fails to parse
            fh.write("".join(lines))
            fh.flush()
            os.fsync(fh.fileno())

    def finished(self) -> dict[int, str]:
        """Items whose line verifies and whose file is unchanged: item -> absolute path."""
        if not self.path.exists():
            return {}
        done: dict[int, str] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                body = {k: entry[k] for k in ("key", "item", "file", "sha256")}
                target = (self.records.run_dir / body["file"]).resolve()
                if (hmac.compare_digest(str(entry["mac"]), self.records._mac(body)) and body["key"] == self.key
                        and target.is_relative_to(self.records.run_dir) and target.is_file()
                        and sha256_file(target) == body["sha256"]):
                    done[int(body["item"])] = str(target)
            except (ValueError, KeyError, TypeError):
                continue
        return done


def item_journal(run_dir: str | Path, key: str) -> ItemJournal:
    """The per-item journal of the step `key` of the run in `run_dir`."""
    return ItemJournal(StepRecords(run_dir, cache_key()), key)


@dataclass(frozen=True)
class _Done:
    """A finished step, shaped like a Prefect future."""

    files: list[str]

    def result(self) -> list[str]:
        return self.files


@dataclass(frozen=True)
class _Pending:
    """A submitted step whose record is written when its result is first taken."""

    future: Any
    on_done: Callable[[list[str]], None]

    def result(self) -> list[str]:
        files = [str(f) for f in self.future.result()]
        self.on_done(files)
        return files


class DurableStep:
    """A Prefect task that runs only when no trusted step record holds its outputs (see module docstring)."""

    def __init__(self, fn_task: Task, run_dir: str | Path) -> None:
        self.task = fn_task.with_options(cache_policy=NO_CACHE, persist_result=False)
        self.records = StepRecords(run_dir, cache_key())

    def submit(self, *args: Any, key: str, **kwargs: Any) -> _Done | _Pending:
        if (files := self.records.load(key)) is not None:
            return _Done(files)
        future = self.task.submit(*args, key=key, **kwargs)
        return _Pending(future, lambda files: self.records.save(key, files))

    def __call__(self, *args: Any, key: str, **kwargs: Any) -> list[str]:
        if (files := self.records.load(key)) is not None:
            return files
        files = [str(f) for f in self.task(*args, key=key, **kwargs)]
        self.records.save(key, files)
        return files


def durable(fn_task: Task, run_dir: str | Path) -> DurableStep:
    """The task as a resumable step of the run in `run_dir` (its `key` parameter names the step)."""
    return DurableStep(fn_task, run_dir)
