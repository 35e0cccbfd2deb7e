"""Reproducible outputs: the same inputs give byte-identical files (SOURCE_DATE_EPOCH / --reproducible).

An auditor re-running an audit later must be able to show the same bytes, so
nothing in an output may depend on the clock, the host or the folder: the
creation time is fixed, timings stay in the log, PDF ids are derived from
content, and chart ids are numbered per report.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from flows.identity import MSG_BAD_EPOCH, SOURCE_DATE_EPOCH, fixed_time
from pipeline import outputs as O
from pipeline.run_record import load_record

EPOCH = "1780000000"  # 2026-05-28


def _digests(run: Path) -> dict[str, str]:
    listed = O.read_json(run / O.MANIFEST)["files"]
    files = {rel: hashlib.sha256((run / rel).read_bytes()).hexdigest() for rel in listed}
    return {**files, O.MANIFEST: hashlib.sha256((run / O.MANIFEST).read_bytes()).hexdigest()}


def test_fixed_time_comes_from_the_epoch_then_the_data_file(tmp_path, monkeypatch):
    data = tmp_path / "d.csv"
    data.write_text("x")
    monkeypatch.delenv(SOURCE_DATE_EPOCH, raising=False)
    assert fixed_time(data, reproducible=False) is None
    os.utime(data, (1_700_000_000, 1_700_000_000))
    assert fixed_time(data, reproducible=True) == "2023-11-14T22:13:20+00:00"  # the data file's time
    monkeypatch.setenv(SOURCE_DATE_EPOCH, EPOCH)
    assert fixed_time(data, reproducible=False) == "2026-05-28T20:26:40+00:00"
    monkeypatch.setenv(SOURCE_DATE_EPOCH, "yesterday")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH must be a whole number"):
        fixed_time(data, reproducible=False)
    assert "got 'yesterday'" in MSG_BAD_EPOCH.format(value="yesterday")


@pytest.mark.slow
def test_two_runs_of_the_same_inputs_are_byte_identical(prefect_api, data_path, tmp_path, monkeypatch):  # noqa: ARG001
    from flows.audit import audit_flow
    from pipeline.config import AuditConfig

    monkeypatch.setenv(SOURCE_DATE_EPOCH, EPOCH)
    data = tmp_path / "slice.csv"
    with open(data_path) as src:
        data.write_text("".join(next(src) for _ in range(1001)))
    config = AuditConfig(seed=0, device="cpu", background_size=10).to_dict()
    runs = [Path(audit_flow(data=str(data), out=str(tmp_path / name), config=config, explain_chunk_rows=1000,
                            notice_limit=4)) for name in ("first", "second")]
    first, second = (_digests(r) for r in runs)
    assert any(rel.startswith("reports/notices/") for rel in first) and O.REPORT_PDF.as_posix() in first
    assert first == second, {k for k in first if first[k] != second.get(k)}
    record = load_record(runs[0])
    assert record.created == "2026-05-28T20:26:40+00:00" and record.timings == {}
    assert record.data.source == "slice.csv"
    text = json.dumps(record.model_dump(mode="json"))
    assert str(tmp_path) not in text  # no local path in the record
