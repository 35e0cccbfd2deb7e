"""Nothing a run reads back can run code, and a run folder holds one run.

The step records under `<run>/.cache/steps/` are plain JSON sealed with an
HMAC under the operator's cache key (outside the run); anything that fails a
check is discarded and the step computed again. Prefect persists nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from flows.caching import CACHE_KEY_FILE, STEPS_DIR, StepRecords, cache_key
from pipeline import outputs as O
from pipeline.signing import KEYSTORE_ENV

REPO = Path(__file__).resolve().parents[1]
SECRET = b"k" * 32


class _Boom:
    """Unpickling this writes a marker file: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.write_text, (self.marker, "code ran"))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "reports").mkdir(parents=True)
    (run / "reports" / "a.pdf").write_bytes(b"%PDF-1.7 a")
    (run / "model.json").write_text("{}")
    return run


@pytest.fixture
def records(run_dir: Path) -> StepRecords:
    r = StepRecords(run_dir, SECRET)
    r.save("report-abc", [str(run_dir / "reports" / "a.pdf"), str(run_dir / "model.json")])
    return r


def _record_file(records: StepRecords) -> Path:
    (path,) = records.folder.glob("*.json")
    return path


def test_a_sound_record_gives_its_files_back(records, run_dir):
    assert records.load("report-abc") == [str((run_dir / "reports" / "a.pdf").resolve()),
                                          str((run_dir / "model.json").resolve())]
    assert records.load("report-other") is None
    assert json.loads(_record_file(records).read_text())["outputs"]  # plain JSON on disk


@pytest.mark.parametrize("forge", ["pickle", "edited", "recomputed_with_other_key", "not_json", "extra_field"])
def test_a_forged_record_is_discarded_with_a_warning(records, run_dir, tmp_path, caplog, forge):
    path = _record_file(records)
    record = json.loads(path.read_text())
    marker = tmp_path / "pwned"
    if forge == "pickle":
        path.write_bytes(pickle.dumps(_Boom(marker)))
    elif forge == "edited":
        record["outputs"]["model.json"] = "0" * 64
        path.write_text(json.dumps(record))
    elif forge == "recomputed_with_other_key":
        StepRecords(run_dir, b"x" * 32).save("report-abc", [str(run_dir / "model.json")])
    elif forge == "not_json":
        path.write_bytes(b"\x80\x04\x95")
    else:
        path.write_text(json.dumps({**record, "value": base64.b64encode(pickle.dumps(_Boom(marker))).decode()}))
    with caplog.at_level(logging.WARNING, logger="flows.caching"):
        assert records.load("report-abc") is None
    assert "discarded" in caplog.text and "computing the step again" in caplog.text
    assert not path.exists()
    assert not marker.exists()


def test_an_output_changed_after_the_step_is_not_trusted(records, run_dir, caplog):
    (run_dir / "reports" / "a.pdf").write_bytes(b"%PDF-1.7 altered")
    with caplog.at_level(logging.WARNING, logger="flows.caching"):
        assert records.load("report-abc") is None
    assert "reports/a.pdf is missing or changed" in caplog.text


def test_an_output_outside_the_run_is_not_trusted(records, run_dir, tmp_path, caplog):
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("x")
    path = _record_file(records)
    record = json.loads(path.read_text())
    body = {"format": record["format"], "key": record["key"], "outputs": {"../elsewhere.txt": O.sha256_file(outside)}}
    path.write_text(json.dumps({**body, "mac": records._mac(body)}))  # even with a valid MAC
    with caplog.at_level(logging.WARNING, logger="flows.caching"):
        assert records.load("report-abc") is None
    assert "outside the run" in caplog.text


def test_the_cache_key_lives_outside_the_run_and_is_private(tmp_path, monkeypatch):
    monkeypatch.setenv(KEYSTORE_ENV, str(tmp_path / "keys"))
    first = cache_key()
    assert first == cache_key() and len(first) == 32
    path = tmp_path / "keys" / CACHE_KEY_FILE
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match="must be 32 bytes"):
        cache_key()


# ---- one run per folder -------------------------------------------------------------------------
def test_a_folder_of_another_run_is_refused_and_replace_clears_it(tmp_path):
    run = tmp_path / "out"
    O.claim_run_dir(run, "run-a")
    (run / "reports").mkdir()
    (run / "reports" / "old.pdf").write_bytes(b"x")
    O.claim_run_dir(run, "run-a")  # the same run resumes
    with pytest.raises(ValueError, match=r"holds another run \(run-a\), and this audit is run run-b"):
        O.check_run_dir(run, "run-b")
    assert (run / "reports" / "old.pdf").exists()
    O.claim_run_dir(run, "run-b", replace=True)
    assert not (run / "reports").exists() and O.run_owner(run) == "run-b"


def test_a_foreign_folder_is_never_cleared(tmp_path):
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    for replace in (False, True):
        with pytest.raises(ValueError, match="holds no credit-audit run"):
            O.claim_run_dir(folder, "run-a", replace=replace)
    assert (folder / "thesis.tex").exists()
    O.claim_run_dir(tmp_path / "empty", "run-a")  # new or empty: fine


def test_the_manifest_seals_only_what_the_run_wrote(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    mine = O.write_json(run / "audit.json", {"a": 1})
    (run / "planted.pdf").write_bytes(b"%PDF")
    O.write_manifest(run, [mine])
    assert set(O.read_json(run / O.MANIFEST)["files"]) == {"audit.json"}
    assert O.verify_manifest(run) == ["planted.pdf: not listed in the manifest"]


def test_cli_refuses_an_out_that_holds_another_run(data_path, tmp_path):
    data = tmp_path / "slice.csv"
    with open(data_path) as src:
        data.write_text("".join(next(src) for _ in range(1001)))
    out = tmp_path / "out"
    O.claim_run_dir(out, "run-0000000000-0000000000")
    (out / "reports").mkdir()
    (out / "reports" / "notice_1.pdf").write_bytes(b"%PDF")
    done = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--data", str(data), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "holds another run (run-0000000000-0000000000)" in done.stderr and "--replace" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["notice_1.pdf", "run-id"]


@pytest.mark.slow
def test_a_rerun_ignores_planted_pickles_and_recomputes_forged_steps(prefect_api, data_path, tmp_path, caplog):  # noqa: ARG001
    """A Prefect-format pickle record and forged step records in `.cache/`: no code runs, the steps are redone."""
    from flows.audit import audit_flow
    from pipeline.config import AuditConfig
    from review import verify_run

    data = tmp_path / "slice.csv"
    with open(data_path) as src:
        data.write_text("".join(next(src) for _ in range(1001)))
    config = AuditConfig(seed=0, device="cpu", background_size=10).to_dict()
    out = tmp_path / "run"

    def run() -> Path:
        return Path(audit_flow(data=str(data), out=str(out), config=config, explain_chunk_rows=1000, notice_limit=3))

    run()
    report = out / O.REPORT_PDF
    stamp = report.stat().st_mtime_ns
    marker = tmp_path / "pwned"
    payload = base64.b64encode(pickle.dumps(_Boom(marker))).decode()
    prefect_style = {"metadata": {"serializer": {"type": "pickle"}, "storage_key": "x"}, "result": payload}
    for name in ("report-0", "explain-0", "fairness-0"):
        (out / ".cache" / name).write_text(json.dumps(prefect_style))
    for step in (out / STEPS_DIR).glob("*.json"):
        step.write_bytes(pickle.dumps(_Boom(marker)))
    with caplog.at_level(logging.WARNING):
        run()
    assert not marker.exists(), "a planted pickle was loaded"
    assert "discarded" in caplog.text
    assert report.stat().st_mtime_ns != stamp, "the report's forged record was trusted"
    assert verify_run(out).ok
