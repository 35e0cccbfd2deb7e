"""Release gates over the run record: each rule trips on its own limit and names it."""

from __future__ import annotations

import pytest

from pipeline.gates import GatePolicy, evaluate_gates
from pipeline.run_record import ChangesSection, Drift, FairnessSection, FlagsSection, RunRecord


def _with(record: RunRecord, *, verdicts=None, auc=None, flagged=None, psi=None) -> RunRecord:  # noqa: ANN001
    update: dict = {}
    if verdicts is not None:
        update["fairness"] = FairnessSection.model_construct(verdicts=verdicts)
    if auc is not None:
        update["performance"] = {"test": record.performance["test"].model_copy(update={"roc_auc": auc})}
    if flagged is not None:
        update["flags"] = FlagsSection.model_construct(applicants=1000, applicants_flagged=flagged)
    if psi is not None:
        update["changes"] = ChangesSection.model_construct(
            data_drift={"LIMIT_BAL": Drift(label="Credit limit", psi=psi, reading="")})
    return record.model_copy(update=update)


def test_default_policy_fails_only_on_a_failed_fairness_verdict(slice_record):
    passing = evaluate_gates(_with(slice_record, verdicts={"SEX": "pass", "AGE band": "review"}), GatePolicy())
    assert passing.passed and len(passing.checks) == 2 and passing.failed == ()
    failing = evaluate_gates(_with(slice_record, verdicts={"SEX": "fail", "AGE band": "review"}), GatePolicy())
    assert not failing.passed
    assert [(c.rule, c.subject, c.figure) for c in failing.failed] == [("fairness_verdict", "SEX", "fail")]
    strict = evaluate_gates(_with(slice_record, verdicts={"SEX": "pass", "AGE band": "review"}),
                            GatePolicy(fail_on_verdicts=("fail", "review")))
    assert [c.subject for c in strict.failed] == ["AGE band"]


@pytest.mark.parametrize(("policy", "record_change", "rule"), [
    (GatePolicy(min_auc=0.80), {"auc": 0.78}, "min_auc"),
    (GatePolicy(max_flag_rate=0.10), {"flagged": 150}, "max_flag_rate"),
    (GatePolicy(max_psi=0.25), {"psi": 0.4}, "max_psi"),
])
def test_each_limit_trips_and_names_its_figure(slice_record, policy, record_change, rule):
    outcome = evaluate_gates(_with(slice_record, **record_change), policy)
    assert not outcome.passed and [c.rule for c in outcome.failed] == [rule]
    assert "the policy asks" in outcome.failed[0].message


def test_limits_just_met_pass(slice_record):
    outcome = evaluate_gates(_with(slice_record, auc=0.80, flagged=100, psi=0.25),
                             GatePolicy(min_auc=0.80, max_flag_rate=0.10, max_psi=0.25))
    assert outcome.passed and {c.rule for c in outcome.checks} == {"min_auc", "max_flag_rate", "max_psi"}


def test_degradation_against_the_previous_run(slice_record):
    before = _with(slice_record, auc=0.78)
    now = _with(slice_record, auc=0.74)
    policy = GatePolicy(max_auc_drop=0.02, max_decline_rate_change=0.05)
    outcome = evaluate_gates(now, policy, previous=before)
    assert [c.rule for c in outcome.failed] == ["max_auc_drop"]
    assert outcome.failed[0].figure == "0.0400"
    assert evaluate_gates(now, policy).passed  # no previous run: nothing to degrade from


def test_bad_policies_are_refused():
    with pytest.raises(ValueError, match="fail_on_verdicts may hold"):
        GatePolicy(fail_on_verdicts=("bad",))
    with pytest.raises(ValueError, match="min_auc must be between 0.0 and 1.0, got 1.5"):
        GatePolicy(min_auc=1.5)
