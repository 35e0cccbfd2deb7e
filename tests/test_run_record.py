"""The run record: one type, one writer, one loader; caches keyed on what they render.

The flow runs use a 1,000-row slice of the real file (written to tmp_path):
these tests are about what is re-rendered and sealed, not about the figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pypdf import PdfReader

from pipeline.config import AuditConfig
from pipeline.run_record import (
    FORMAT_VERSION,
    RECORD_FILE,
    RecordError,
    RunRecord,
    load_record,
    parse_record,
    record_digest,
    write_record,
)

SLICE_ROWS = 1000


@pytest.fixture(scope="module")
def record(slice_record) -> RunRecord:
    return slice_record


def test_round_trip_is_exact(record, tmp_path):
    write_record(tmp_path, record)
    loaded = load_record(tmp_path)
    assert loaded == record
    assert loaded.format == FORMAT_VERSION
    assert record_digest(loaded) == record_digest(record)


def test_record_is_frozen(record):
    with pytest.raises(ValueError, match="frozen"):
        record.run_id = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="frozen"):
        record.model.threshold = 0.1  # type: ignore[misc]


def test_digest_ignores_timings_only(record):
    assert record_digest(record.model_copy(update={"timings": {"explain": 9.0}})) == record_digest(record)
    assert record_digest(record.model_copy(update={"created": "2027-01-01T00:00:00+00:00"})) != record_digest(record)


def test_missing_record_names_the_folder(tmp_path):
    with pytest.raises(RecordError, match=f"{tmp_path}.*{RECORD_FILE} is missing"):
        load_record(tmp_path)


def _written(tmp_path: Path, record: RunRecord, change) -> Path:  # noqa: ANN001 - edits the parsed JSON
    data = json.loads(record.to_json())
    change(data)
    (tmp_path / RECORD_FILE).write_text(json.dumps(data))
    return tmp_path


def test_other_format_version_is_refused(record, tmp_path):
    _written(tmp_path, record, lambda d: d.update(format=1))
    with pytest.raises(RecordError, match=r"audit\.json: run record format 1; this version reads format 2"):
        load_record(tmp_path)


def test_damaged_json_is_refused_with_the_file(record, tmp_path):
    (tmp_path / RECORD_FILE).write_text(record.to_json()[:-40])
    with pytest.raises(RecordError, match=r"audit\.json: the run record is not valid JSON"):
        load_record(tmp_path)
    (tmp_path / RECORD_FILE).write_bytes(b"\xff\xfe{")
    with pytest.raises(RecordError, match="not valid JSON"):
        load_record(tmp_path)
    (tmp_path / RECORD_FILE).write_text("[1, 2]")
    with pytest.raises(RecordError, match="must be a JSON object, got list"):
        load_record(tmp_path)


def test_missing_or_drifted_key_names_its_path(record, tmp_path):
    _written(tmp_path, record, lambda d: d["model"].pop("threshold"))
    with pytest.raises(RecordError, match=r"audit\.json: .*model\.threshold: Field required"):
        load_record(tmp_path)
    _written(tmp_path, record, lambda d: d["data"].update(n=d["data"].pop("rows")))  # a renamed key
    with pytest.raises(RecordError, match=r"data\.rows: Field required.*data\.n: Extra inputs are not permitted"):
        load_record(tmp_path)


def test_wrong_type_names_its_path(record, tmp_path):
    _written(tmp_path, record, lambda d: d["performance"]["test"].update(roc_auc="high"))
    with pytest.raises(RecordError, match=r"performance\.test\.roc_auc: Input should be a valid number"):
        load_record(tmp_path)


def test_many_problems_are_summarised(record):
    data = json.loads(record.to_json())
    for key in ("data", "split", "model", "surrogate", "performance", "decisions", "versions"):
        data.pop(key)
    with pytest.raises(RecordError, match="and 2 more$"):
        parse_record(json.dumps(data), "x/audit.json")


def test_held_out_prefers_the_test_split(record):
    assert record.held_out() is record.performance["test"]
    reused = record.model_copy(update={"performance": {"all": record.performance["train"]}})
    assert reused.held_out() is record.performance["train"]


# ---- caches keyed on what they render ---------------------------------------------------------
def _text(pdf: Path) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(pdf).pages).split())


def _stamps(run_dir: Path) -> dict[str, int]:
    """Modification times of the rendered outputs: an atomic re-render replaces the file."""
    files = [run_dir / "reports" / "audit_report.pdf", *sorted((run_dir / "reports" / "notices").glob("*.pdf"))]
    return {p.name: p.stat().st_mtime_ns for p in files}


@pytest.mark.slow
def test_stale_report_is_rerendered_and_sealed(prefect_api, data_path, tmp_path):  # noqa: ARG001 - server up
    """Run A; run B compared with A; an override recorded in A; B's command again.

    B's record then lists the override, so its report must be re-rendered (and sealed by the
    manifest); its notices, whose inputs did not change, must not be. A further rerun with
    nothing changed re-renders nothing.
    """
    from flows.audit import audit_flow
    from review import Account, ReviewStore, Role, verify_run

    data = tmp_path / "slice.csv"
    with open(data_path) as src:
        data.write_text("".join(next(src) for _ in range(SLICE_ROWS + 1)))
    config = AuditConfig(seed=0, device="cpu", background_size=10).to_dict()

    def run(out: Path, previous: Path | None = None) -> Path:
        return Path(audit_flow(data=str(data), out=str(out), config=config, previous=str(previous) if previous else None,
                               explain_chunk_rows=SLICE_ROWS, notice_limit=3))

    a = run(tmp_path / "a")
    b = run(tmp_path / "b", previous=a)
    assert "approved by bo" not in _text(b / "reports" / "audit_report.pdf")
    before = _stamps(b)

    from reports import load_run

    first = int(load_run(a).declined_ids()[0])
    store = ReviewStore(a)
    try:
        proposal = store.save(first, "decline", "override_approve", "Income proof received after the decision",
                              Account("ana", Role.ANALYST))
        store.approve(proposal.seq, "Checked the income proof: agreed.", Account("bo", Role.APPROVER))
    finally:
        store.close()

    run(tmp_path / "b", previous=a)
    after = _stamps(b)
    assert after["audit_report.pdf"] != before["audit_report.pdf"], "the report was not re-rendered"
    assert {k: v for k, v in after.items() if k != "audit_report.pdf"} == \
        {k: v for k, v in before.items() if k != "audit_report.pdf"}, "notices were re-rendered needlessly"
    items = load_record(b).human_overrides.items
    assert [(o.applicant_id, o.reviewer) for o in items] == [(first, "ana, approved by bo")]
    assert "ana, approved by bo" in _text(b / "reports" / "audit_report.pdf")
    assert verify_run(b).ok

    run(tmp_path / "b", previous=a)
    assert _stamps(b) == after, "a rerun with nothing changed re-rendered an output"
    assert verify_run(b).ok
