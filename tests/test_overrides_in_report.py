"""A reviewer's override of one run is listed in the next run's global report."""

from __future__ import annotations

import shutil

import pytest
from pypdf import PdfReader

from pipeline.run_record import HumanOverrides, load_record, write_record
from reports import load_run, render_audit_report
from review import Account, ReviewStore, Role, review_overrides

pytestmark = pytest.mark.slow


def test_override_of_previous_run_appears_in_next_report(audit_run, tmp_path):
    previous = tmp_path / "previous"
    shutil.copytree(audit_run, previous, ignore=shutil.ignore_patterns("review"))
    applicants = load_run(previous).applicants
    declined = int(applicants.loc[applicants["decision"] == "decline", "id"].iloc[0])
    other = int(applicants.loc[applicants["decision"] == "decline", "id"].iloc[1])
    store = ReviewStore(previous)
    try:
        proposal = store.save(declined, "decline", "override_approve",
                              "Income proof received; the missed payment was a bank error", Account("ana", Role.ANALYST))
        store.approve(proposal.seq, "Bank error confirmed by operations.", Account("bo", Role.APPROVER))
        store.save(other, "decline", "override_approve", "Proposed, but nobody approved it yet.",
                   Account("ana", Role.ANALYST))  # pending: it must count nowhere
    finally:
        store.close()
    items = review_overrides(previous)
    assert [o["applicant_id"] for o in items] == [declined]

    current = tmp_path / "current"
    shutil.copytree(audit_run, current, ignore=shutil.ignore_patterns("review"))
    record = load_record(current)
    overrides = HumanOverrides(previous_run=load_record(previous).run_id, items=tuple(items))
    write_record(current, record.model_copy(update={"human_overrides": overrides}))
    pdf = render_audit_report(load_run(current), current / "report.pdf")
    # Table cells wrap: compare with whitespace collapsed.
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(pdf).pages).split())
    assert "Human overrides of the previous run" in text
    assert "ana, approved by bo" in text and str(declined) in text
    assert "Reviewers overrode 1 decision(s)" in text  # the pending override is not counted
