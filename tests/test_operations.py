"""Operations: resume after a real kill, Dask scale-out, audit of an existing model.

Every run goes through the real command (`python -m flows.cli run`) on a
1,500-row slice of the real file written to tmp_path, with explanation chunks
of 500 rows so the mapped explanation tasks really are several. Each run starts
Prefect and the whole flow in its own process, so small slices keep these
tests to a minute or so each.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

from flows.caching import STEPS_DIR
from pipeline import CreditModel
from pipeline import outputs as O
from pipeline import schema as S
from pipeline.columns import LIME, SHAP, SHAP_BASE, SHAP_GROUP, columns_of
from pipeline.run_record import load_record

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

SMALL_ROWS = 1500
CHUNK_ROWS = 500
RESUME_NOTICES = 60  # the kill lands after the first batches; the rest are rendered by the second run
KILL_AFTER_NOTICES = 20  # more than one batch of each worker, so some are journalled when the kill lands
FEW_NOTICES = 10
TRAINING_LINE = "training epoch"
RUN_TIMEOUT_S = 420
COMM_TIMEOUT = "300s"


@pytest.fixture(scope="module")
def env(prefect_api) -> dict:
    """The commands report to the session's Prefect server (no embedded server each)."""
    return {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": prefect_api}


def _command(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "run", "--data", str(data), "--out", str(out), "--device", "cpu",
            "--seed", "0", "--explain-chunk-rows", str(CHUNK_ROWS), *extra]


@pytest.fixture(scope="module")
def code(tmp_path_factory) -> Path:
    """A frozen copy of the project's code to run the command from.

    The cache key holds the code version (a hash of the sources), so an edit to the
    checkout between the killed run and its resume would rightly invalidate every
    step; on a machine shared with other engineers that makes the test flaky. The
    copy is the same code, imported first because it is the working directory.
    """
    snapshot = tmp_path_factory.mktemp("code") / "repo"
    shutil.copytree(REPO, snapshot, ignore=shutil.ignore_patterns(
        ".venv", ".git", "runs", "data", "node_modules", "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache"))
    return snapshot


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    """Run to completion; returns the combined log (fails the test with it on a non-zero exit)."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    return log


def _notices(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "reports" / "notices").glob("*.pdf"))


def _declined_ids(run_dir: Path, limit: int) -> list[int]:
    table = pd.read_parquet(run_dir / O.APPLICANTS)
    return table.loc[table["decision"] == "decline", "id"].astype(int).tolist()[:limit]


def _mtimes(folder: Path, pattern: str) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob(pattern))}


@pytest.fixture(scope="module")
def slices(data_path, tmp_path_factory) -> tuple[Path, Path]:
    """Two different small slices of the real file (never committed: written here)."""
    folder = tmp_path_factory.mktemp("data")
    frame = pd.read_csv(data_path)
    first, second = folder / "first.csv", folder / "second.csv"
    frame.iloc[:SMALL_ROWS].to_csv(first, index=False)
    frame.iloc[SMALL_ROWS : 2 * SMALL_ROWS].to_csv(second, index=False)
    return first, second


@pytest.fixture(scope="module")
def resumed(code, slices, env, tmp_path_factory) -> dict:
    """A run killed (SIGKILL, whole process group) while rendering notices, then the same command again."""
    run_dir = tmp_path_factory.mktemp("resume") / "run"
    cmd = _command(slices[0], run_dir, "--notice-limit", str(RESUME_NOTICES))
    log_path = run_dir.parent / "first.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        seen = 0
        while time.monotonic() < deadline and proc.poll() is None:
            seen = len(_notices(run_dir)) if (run_dir / "reports" / "notices").exists() else 0
            if seen >= KILL_AFTER_NOTICES:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill:\n{log_path.read_text()[-3000:]}"
    killed_at = len(_notices(run_dir))
    assert 0 < killed_at < RESUME_NOTICES, f"kill did not land during the notices ({killed_at} notices)"
    # what a kill during a file write leaves (the kill above usually lands in a layout instead)
    (run_dir / "reports" / "notices" / ".notice_0.pdf.k2j4h1.tmp").write_bytes(b"%PDF-1.7 half")
    before = {
        "model": _mtimes(run_dir / O.MODEL_DIR, "*"),
        "model_bytes": {p.name: p.read_bytes() for p in sorted((run_dir / O.MODEL_DIR).glob("*")) if p.is_file()},
        "explain": _mtimes(run_dir / ".cache" / "work", "explain_*"),
        "fairness": _mtimes(run_dir, "fairness.parquet"),
        "report": _mtimes(run_dir / "reports", "audit_report.pdf"),
    }
    second_log = _run(cmd, code, env)
    return {"dir": run_dir, "first_log": log_path.read_text(), "second_log": second_log, "before": before,
            "killed_at": killed_at}


def test_kill_landed_after_training_and_explaining(resumed):
    assert TRAINING_LINE in resumed["first_log"]
    assert len(resumed["before"]["explain"]) == 2 * (SMALL_ROWS // CHUNK_ROWS)  # .json and .parquet per chunk
    assert resumed["before"]["fairness"] and resumed["before"]["report"]


def test_resumed_run_does_not_recompute_finished_steps(resumed):
    run_dir, before = resumed["dir"], resumed["before"]
    assert TRAINING_LINE not in resumed["second_log"]
    assert _mtimes(run_dir / O.MODEL_DIR, "*") == before["model"]
    assert {p.name: p.read_bytes() for p in sorted((run_dir / O.MODEL_DIR).glob("*")) if p.is_file()} == before["model_bytes"]
    assert _mtimes(run_dir / ".cache" / "work", "explain_*") == before["explain"]
    assert _mtimes(run_dir, "fairness.parquet") == before["fairness"]
    assert _mtimes(run_dir / "reports", "audit_report.pdf") == before["report"]


def test_resumed_run_renders_only_the_notices_not_yet_written(resumed):
    """The killed chunk resumes at its first unjournalled notice, not at the chunk's start."""
    found = re.search(r"notices: (\d+) of this chunk's (\d+) were written before the interruption; "
                      r"rendering the other (\d+)", resumed["second_log"])
    assert found, resumed["second_log"][-3000:]
    reused, total, rendered = map(int, found.groups())
    assert total == RESUME_NOTICES and reused + rendered == total
    # a notice is journalled when its worker's batch comes back: the ones on disk at the kill, less at most
    # the batches in flight, are reused
    assert 0 < reused <= resumed["killed_at"]
    # the progress lines count the run's notices, with the reused ones included
    assert f"notices: {RESUME_NOTICES:,} of {RESUME_NOTICES:,} (100%)" in resumed["second_log"]


def test_resumed_run_has_every_notice_once_and_nothing_half_written(resumed):
    run_dir = resumed["dir"]
    from reports import notice_filename

    expected = sorted(notice_filename(i) for i in _declined_ids(run_dir, RESUME_NOTICES))
    assert len(expected) == RESUME_NOTICES
    assert [p.name for p in _notices(run_dir)] == expected
    assert list(run_dir.rglob("*.tmp")) == []
    for p in _notices(run_dir):
        assert len(PdfReader(p).pages) >= 1
    assert O.verify_manifest(run_dir) == []


def test_step_records_hold_only_sealed_json_paths(resumed):
    """Prefect persists nothing; our step records are JSON: output paths, their hashes and a MAC."""
    run_dir = resumed["dir"]
    assert [p.name for p in (run_dir / ".cache").iterdir() if p.is_file()] == ["run-id"]  # no Prefect result files
    records = sorted((run_dir / STEPS_DIR).glob("*.json"))
    assert records, "no step records"
    table = pd.read_parquet(run_dir / O.APPLICANTS)
    some_ids = {str(i) for i in table["id"].head(50)}
    for p in records:
        record = json.loads(p.read_text())  # a pickle would not parse
        assert set(record) == {"format", "key", "outputs", "mac"}, p.name
        for rel, digest in record["outputs"].items():
            assert (run_dir / rel).resolve().is_relative_to(run_dir.resolve()) and len(digest) == 64
        assert not any(f'"{i}"' in p.read_text() for i in some_ids)


# Kernel SHAP runs float32 matrix products in torch. Dask workers run them on one thread
# (OMP_NUM_THREADS=1), the local run on all cores, and for some block shapes torch splits
# the sums differently by thread count: measured <= 1.1e-6 on values of order 1e-2.
SHAP_ATOL = 1e-5
# Grouped Shapley values are scored in the same float32 blocks, so they get the same tolerance.
# LIME's weighted ridge fit goes through BLAS the same way: measured <= 4e-11 on coefficients
# of order 1e-2.
LIME_ATOL = 1e-9


def _tolerance(column: str) -> float | None:
    if columns_of([column], SHAP) or columns_of([column], SHAP_GROUP) or column == SHAP_BASE:
        return SHAP_ATOL
    return LIME_ATOL if columns_of([column], LIME) else None


def _reasons_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same reasons in the same order, except where two factors' contributions tie within SHAP_ATOL."""
    for row, (ra, rb) in enumerate(zip(a["reasons"], b["reasons"], strict=True)):
        left, right = json.loads(ra), json.loads(rb)
        assert len(left) == len(right), (row, ra, rb)
        for x, y in zip(left, right, strict=True):
            assert abs(x["contribution"] - y["contribution"]) <= SHAP_ATOL, (row, x, y)
            if x["feature"] == y["feature"]:
                assert {k: v for k, v in x.items() if k != "contribution"} == {k: v for k, v in y.items() if k != "contribution"}
            else:  # a near-tie ranked the other way: b's factor has the same contribution in a
                assert abs(a[f"shap_{y['feature']}"].iloc[row] - x["contribution"]) <= 2 * SHAP_ATOL, (row, x, y)


def _frame_equal(a: pd.DataFrame, b: pd.DataFrame, label: str) -> None:
    """Exact, except the explanation floats (and the reasons ranked from them) within their tolerances."""
    assert list(a.columns) == list(b.columns), label
    assert len(a) == len(b), label
    for col in a.columns:
        atol = _tolerance(col)
        if atol is not None:
            np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=0, atol=atol, equal_nan=True,
                                       err_msg=f"{label}.{col}")
        elif col == "reasons":
            _reasons_equal(a, b)
        else:
            assert a[col].equals(b[col]), f"{label}.{col}"


def test_dask_runner_equals_the_single_process_run(code, resumed, slices, env, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    dask = pytest.importorskip("dask")
    monkeypatch.syspath_prepend(str(code))  # spawned workers inherit sys.path: they run the same copy
    # On busy shared cores a step that holds the GIL (C extensions in the explanation) can keep a
    # worker's event loop silent past the default 30 s, and the scheduler drops the worker.
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__TCP", COMM_TIMEOUT)
    run_dir = tmp_path / "dask" / "run"
    with dask.config.set({"distributed.comm.timeouts.tcp": COMM_TIMEOUT}), distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        _run(_command(slices[0], run_dir, "--notice-limit", str(RESUME_NOTICES), "--runner", "dask",
                      "--dask-address", cluster.scheduler_address), code, env)
    local = resumed["dir"]
    for name in (O.APPLICANTS, "flags.parquet", "fairness.parquet"):
        _frame_equal(pd.read_parquet(run_dir / name), pd.read_parquet(local / name), name)
    assert [p.name for p in _notices(run_dir)] == [p.name for p in _notices(local)]
    assert O.verify_manifest(run_dir) == []


def test_existing_model_audits_new_data_and_reports_changes(code, resumed, slices, env, tmp_path):
    previous = resumed["dir"]
    run_dir = tmp_path / "existing" / "run"
    log = _run(_command(slices[1], run_dir, "--model", str(previous / O.MODEL_DIR), "--previous", str(previous),
                        "--notice-limit", str(FEW_NOTICES)), code, env)
    assert TRAINING_LINE not in log
    record = load_record(run_dir)
    reused = CreditModel.load(previous / O.MODEL_DIR).model_hash()
    assert record.model.model_hash == reused
    assert record.model.reused_from == str(previous / O.MODEL_DIR)
    changes = record.changes
    assert changes.same_model is True and changes.same_data is False
    assert set(changes.data_drift) == set(S.FEATURE_NAMES)
    assert all(np.isfinite(d.psi) and d.psi >= 0 for d in changes.data_drift.values())
    for metric in ("roc_auc", "accuracy", "decline_rate"):
        delta = changes.performance[metric]
        assert delta.change == pytest.approx(delta.current - delta.previous)
    text = " ".join(page.extract_text() for page in PdfReader(run_dir / "reports" / "audit_report.pdf").pages)
    text = " ".join(text.split())
    assert "Changes since the previous run" in text
    assert f"Compared with run {load_record(previous).run_id}" in text
    assert "same model" in text and "different data" in text
    assert len(_notices(run_dir)) == FEW_NOTICES
    assert O.verify_manifest(run_dir) == []
