"""Four eyes in the store: roles, approval by a second person, self-approval refused, state derived from the trail."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from test_review_store import make_run

from pipeline.run_record import RunRecord
from review import (
    Account,
    ReviewConflict,
    ReviewRefused,
    ReviewStore,
    Role,
    fold,
    needs_second_person,
    review_overrides,
    reviews_csv,
    verify_run,
)
from review._decisions import PENDING_APPROVAL, ST_DIRECT, ST_PENDING
from review._store import MSG_CANNOT_APPROVE, MSG_CANNOT_PROPOSE, MSG_NOT_ACCOUNT, MSG_SELF_APPROVAL

ANA = Account("ana", Role.ANALYST)
ALI = Account("ali", Role.ANALYST)
BO = Account("bo", Role.APPROVER)
CY = Account("cy", Role.APPROVER)
AUD = Account("aud", Role.AUDITOR)
WHY = "Income proof received after the decision."
OK = "Checked the proof with the branch: agreed."
DECLINED, APPROVED = 115, 101  # make_run: probabilities rise with the id; >= 0.5 declines


@pytest.fixture
def run_dir(tmp_path: Path, slice_record: RunRecord) -> Path:
    return make_run(tmp_path / "run", slice_record)


@pytest.fixture
def store(run_dir: Path):
    s = ReviewStore(run_dir)
    yield s
    s.close()


@pytest.mark.parametrize(
    ("final", "model", "in_effect", "expected"),
    [
        ("decline", "decline", None, False),  # a confirmation
        ("pending", "decline", None, False),  # asking for information before any decision
        ("approve", "decline", None, True),  # an override
        ("decline", "approve", "approve", True),  # an override
        ("decline", "decline", "approve", True),  # reversing an override in effect
        ("pending", "decline", "decline", True),  # reopening a decision in effect
        ("decline", "decline", "pending", False),  # deciding after information arrived
    ],
)
def test_needs_second_person(final, model, in_effect, expected):
    assert needs_second_person(final, model, in_effect) is expected


def test_confirm_by_an_analyst_takes_effect_at_once(store):
    r = store.save(DECLINED, "decline", "confirm", WHY, ANA)
    state = store.state(DECLINED)
    assert state.in_effect == r and state.approval is None and state.status[r.seq] == ST_DIRECT
    assert (r.reviewer, r.role, r.action, r.target) == ("ana", "analyst", "propose", None)


def test_override_waits_for_a_second_approver(store, run_dir):
    proposal = store.save(DECLINED, "decline", "override_approve", WHY, ANA)
    state = store.state(DECLINED)
    assert state.in_effect is None and list(state.pending) == [proposal.seq]
    assert state.outcome == PENDING_APPROVAL and state.status[proposal.seq] == ST_PENDING
    assert state.final_decision == "decline"  # the model's decision stands until approved
    assert review_overrides(run_dir) == []  # a pending override counts nowhere

    approval = store.approve(proposal.seq, OK, BO)
    assert (approval.action, approval.target, approval.role, approval.reviewer) == ("approve", proposal.seq,
                                                                                   "approver", "bo")
    state = store.state(DECLINED)
    assert state.in_effect == proposal and state.approval == approval and state.final_decision == "approve"
    items = review_overrides(run_dir)
    assert [(o["applicant_id"], o["final_decision"], o["reviewer"]) for o in items] == [
        (DECLINED, "approve", "ana, approved by bo")
    ]
    assert items[0]["created"] == approval.created  # when it took effect
    report = verify_run(run_dir)
    assert report.ok, report.problems
    assert report.rows == 2


def test_self_approval_is_refused_even_for_an_approver(store):
    proposal = store.save(DECLINED, "decline", "override_approve", WHY, BO)
    with pytest.raises(ReviewRefused) as err:
        store.approve(proposal.seq, OK, BO)
    assert str(err.value) == MSG_SELF_APPROVAL.format(seq=proposal.seq, name="bo")
    assert len(store.all()) == 1 and store.state(DECLINED).in_effect is None
    store.approve(proposal.seq, OK, CY)  # a second, different approver
    assert store.state(DECLINED).final_decision == "approve"


def test_same_person_under_other_capitalisation_is_the_same_account():
    from review._accounts import normalize_name

    assert normalize_name("Ana") == normalize_name("ana") == normalize_name(" ANA ")


@pytest.mark.parametrize("who", [ANA, ALI, AUD])
def test_only_approvers_approve(store, who):
    proposal = store.save(DECLINED, "decline", "override_approve", WHY, ANA)
    with pytest.raises(ReviewRefused) as err:
        store.approve(proposal.seq, OK, who)
    assert str(err.value) == MSG_CANNOT_APPROVE.format(name=who.name, role=who.role)
    with pytest.raises(ReviewRefused):
        store.reject(proposal.seq, OK, who)
    assert len(store.all()) == 1 and store.trail.lines() and len(store.trail.lines()) == 1


def test_auditor_cannot_write(store):
    with pytest.raises(ReviewRefused) as err:
        store.save(DECLINED, "decline", "confirm", WHY, AUD)
    assert str(err.value) == MSG_CANNOT_PROPOSE.format(name="aud", role="auditor")
    assert store.all() == [] and store.trail.lines() == []


def test_a_typed_name_is_not_an_identity(store):
    with pytest.raises(TypeError) as err:
        store.save(DECLINED, "decline", "confirm", WHY, "Ana Analyst")
    assert str(err.value) == MSG_NOT_ACCOUNT.format(got="Ana Analyst")
    assert store.all() == []


def test_reversal_of_an_override_in_effect_needs_approval_and_is_shown(store):
    """Issue 17's story: an override to approve, then someone reverses it: the reversal waits, visibly."""
    first = store.save(DECLINED, "decline", "override_approve", WHY, ANA)
    store.approve(first.seq, OK, BO)
    reversal = store.save(DECLINED, "decline", "confirm", "The model was right: the income proof is forged.", ALI)
    state = store.state(DECLINED)
    assert state.in_effect == first and state.final_decision == "approve"  # not silently replaced
    assert list(state.pending) == [reversal.seq] and state.outcome == PENDING_APPROVAL
    store.approve(reversal.seq, "Forgery confirmed by the fraud team.", CY)
    state = store.state(DECLINED)
    assert state.in_effect == reversal and state.final_decision == "decline"
    assert state.status[first.seq] == "was in effect until #4"


def test_rejection_keeps_what_was_in_effect_and_cannot_be_approved_later(store, run_dir):
    proposal = store.save(DECLINED, "decline", "override_approve", WHY, ANA)
    rejection = store.reject(proposal.seq, "The proof does not cover the missed payments.", BO)
    state = store.state(DECLINED)
    assert state.in_effect is None and not state.pending and state.final_decision == "decline"
    assert state.status[proposal.seq] == f"rejected by bo (#{rejection.seq})"
    with pytest.raises(ReviewConflict):
        store.approve(proposal.seq, OK, CY)
    with pytest.raises(ReviewConflict):
        store.approve(rejection.seq, OK, CY)  # an approval of a rejection entry: not a proposal
    with pytest.raises(ReviewConflict):
        store.approve(999, OK, CY)
    assert review_overrides(run_dir) == []


def test_an_approved_proposal_cannot_be_approved_twice(store):
    proposal = store.save(DECLINED, "decline", "override_approve", WHY, ANA)
    store.approve(proposal.seq, OK, BO)
    with pytest.raises(ReviewConflict):
        store.approve(proposal.seq, OK, CY)
    assert len(store.all()) == 2


def test_conflicting_proposals_stay_side_by_side(store):
    a = store.save(DECLINED, "decline", "override_approve", WHY, ANA)
    b = store.save(DECLINED, "decline", "needs_information", "Ask for the last three payslips first.", ALI)
    state = store.state(DECLINED)
    assert list(state.pending) == [a.seq] and state.in_effect == b  # asking for information: no decision yet
    c = store.save(DECLINED, "decline", "override_approve", "Second opinion: approve as well.", ALI)
    assert list(store.state(DECLINED).pending) == [a.seq, c.seq]


def test_a_stale_page_cannot_save_over_a_newer_review(store):
    seen = store.save(DECLINED, "decline", "confirm", WHY, ANA).seq
    newer = store.save(DECLINED, "decline", "override_approve", WHY, ALI)
    with pytest.raises(ReviewConflict) as err:
        store.save(DECLINED, "decline", "confirm", WHY, ANA, seen_seq=seen)
    assert f"#{newer.seq}" in str(err.value)
    store.save(DECLINED, "decline", "confirm", WHY, ANA, seen_seq=newer.seq)
    assert len(store.all()) == 3


def test_every_decision_in_effect_passes_through_one_function(store, monkeypatch):
    seen: list[tuple[int, int, str]] = []
    monkeypatch.setattr(store, "effective_decision_taken",
                        lambda s: seen.append((s.applicant_id, s.took_effect_at.seq, s.final_decision)))
    store.save(APPROVED, "approve", "confirm", WHY, ANA)  # 1: in effect at once
    p = store.save(DECLINED, "decline", "override_approve", WHY, ANA)  # 2: pending, nothing takes effect
    store.save(DECLINED, "decline", "override_approve", WHY, ALI)  # 3: pending
    store.reject(3, "Not convinced by the second proposal.", BO)  # 4: nothing takes effect
    store.approve(p.seq, OK, BO)  # 5: proposal 2 in effect
    assert seen == [(APPROVED, 1, "approve"), (DECLINED, 5, "approve")]


def test_state_is_derived_from_the_trail_alone(store):
    store.save(DECLINED, "decline", "override_approve", WHY, ANA)
    store.approve(1, OK, BO)
    store.save(APPROVED, "approve", "override_decline", WHY, ALI)
    from_db = {k: (v.final_decision, sorted(v.pending)) for k, v in store.latest().items()}
    from review import Review

    from_export = fold(
        Review(seq=e.seq, entry_hash=e.hash, **e.record) for e in store.trail.entries()
    )
    assert {k: (v.final_decision, sorted(v.pending)) for k, v in from_export.items()} == from_db
    assert from_db == {DECLINED: ("approve", []), APPROVED: ("approve", [3])}


def test_csv_names_what_took_effect(store):
    store.save(DECLINED, "decline", "override_approve", WHY, ANA)
    store.save(APPROVED, "approve", "override_decline", WHY, ALI)
    store.approve(1, OK, BO)
    rows = list(csv.DictReader(io.StringIO(reviews_csv(store.all()))))
    assert [(r["seq"], r["action"], r["target"], r["role"], r["in_effect"]) for r in rows] == [
        ("1", "propose", "", "analyst", ""),
        ("2", "propose", "", "analyst", ""),
        ("3", "approve", "1", "approver", "approve"),
    ]
    assert rows[1]["status"] == ST_PENDING
    overrides_in_effect = [r for r in rows if r["in_effect"] and r["in_effect"] != r["model_decision"]]
    assert len(overrides_in_effect) == 1
