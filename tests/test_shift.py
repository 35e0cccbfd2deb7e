"""Fairness under demographic shift: the checks' syntax, the weights, the weighted bootstrap, verdicts that move.

A constructed portfolio where declines depend on sex alone and married people
are more often women: moving women's share moves the marital-status verdict,
and the release gate names the rule, the attribute, the shift and the figure.
The real file's held-out split is shifted by every default check.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.config import AuditConfig, ConfigError
from pipeline.constants import FAIL, PASS
from pipeline.fairness import audit_shift, group_disparities, group_labels, resolve_shifts, shift_weights
from pipeline.fairness import audited_attributes as attributes
from pipeline.gates import GatePolicy, evaluate_gates
from pipeline.shift_spec import ShiftSpec, parse_shift
from pipeline.stress import stress_test

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[1]


# ---- the checks as written ------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "attribute", "group", "delta"), [
    ("SEX:+0.1", "SEX", None, 0.1),
    ("SEX:female-0.05", "SEX", "female", -0.05),
    (" AGE band:30-39+.2 ", "AGE band", "30-39", 0.2),
    ("SEX x AGE band:female, under 30+0.1", "SEX x AGE band", "female, under 30", 0.1),
])
def test_checks_parse(text, attribute, group, delta):  # noqa: ANN001
    (spec,) = parse_shift(text)
    assert (spec.attribute, spec.group, spec.delta) == (attribute, group, delta)


@pytest.mark.parametrize(("text", "message"), [
    ("SEX", "expected ATTRIBUTE:+0.1"),
    ("SEX:0.1", "expected ATTRIBUTE:+0.1"),  # the sign is written: a group name could end in digits
    (":+0.1", "expected ATTRIBUTE:+0.1"),
    ("SEX:+1", "strictly between -1 and 1"),
    ("SEX:-1.5", "strictly between -1 and 1"),
    ("SEX:+0", "not 0"),
])
def test_malformed_checks_are_refused_by_the_configuration(text, message):  # noqa: ANN001
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_shift(text)
    with pytest.raises(ConfigError, match=r"\[audit.shift\] checks must be"):
        AuditConfig.from_dict({"shift": {"checks": [text]}})


@pytest.mark.parametrize("text", ["SEX:female\n+0.1", "SEX:fem\u202eale+0.1", "SEX:" + "x" * 200 + "+0.1"])
def test_checks_are_one_short_line(text):  # noqa: ANN001 - they are printed in the record, the summary and the report
    with pytest.raises(ConfigError, match=r"\[audit.shift\] checks must be"):
        AuditConfig.from_dict({"shift": {"checks": [text]}})


def test_all_is_every_protected_attribute_both_ways(split):  # noqa: ANN001
    assert parse_shift("ALL") is None
    specs = resolve_shifts(["all"], split.X_test, split.y_test)
    singles = [a.name for a in attributes() if a.kind == "attribute"]
    assert [(s.attribute, s.delta) for s in specs] == [(a, d) for a in singles for d in (0.1, -0.1)]


def test_names_are_matched_as_the_audit_spells_them(split):  # noqa: ANN001
    (age,) = resolve_shifts(["age:30-39+0.1"], split.X_test, split.y_test)  # the column name stands for its bands
    assert (age.attribute, age.group) == ("AGE band", "30-39")
    (cell,) = resolve_shifts(["sex x age:FEMALE,  under 30-0.05"], split.X_test, split.y_test)
    assert (cell.attribute, cell.group) == ("SEX x AGE band", "female, under 30")


@pytest.mark.parametrize(("text", "message"), [
    ("INCOME:+0.1", "no audited attribute 'INCOME'"),
    ("SEX:nonbinary+0.1", "SEX has no group 'nonbinary'"),
    ("SEX:female+0.5", "share must stay strictly between 0% and 100%"),  # about 60% female: 110%
    ("AGE band:50 and over-0.2", "share must stay strictly between 0% and 100%"),
    ("EDUCATION:-0.3", "could be it"),  # unnamed: every group that could be the least-favoured one must allow it
])
def test_checks_the_data_cannot_honour_are_refused(split, text, message):  # noqa: ANN001
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_shifts([text], split.X_test, split.y_test)


# ---- the weights and the weighted bootstrap -------------------------------------------------------
def test_weights_move_the_share_and_keep_the_rest_in_proportion():
    labels = np.array(["a"] * 20 + ["b"] * 50 + ["c"] * 30, dtype=object)
    w = shift_weights(labels, "a", 0.1)
    assert w.mean() == pytest.approx(1.0)
    assert np.mean(w * (labels == "a")) == pytest.approx(0.3)
    assert np.mean(w * (labels == "b")) / np.mean(w * (labels == "c")) == pytest.approx(50 / 30)
    with pytest.raises(ValueError, match="strictly between 0 and 1|share"):
        shift_weights(labels, "a", -0.2)


@pytest.fixture(scope="module")
def portfolio_shifted(split, fitted_model):  # noqa: ANN001, ANN201
    p = fitted_model.predict_proba(split.X_test)[:, 1]
    return split.X_test, split.y_test.to_numpy(), fitted_model.predict(split.X_test), p


def test_weights_of_one_give_the_unweighted_audit(portfolio_shifted):  # noqa: ANN001
    X, y, decline, p = portfolio_shifted
    sex = tuple(a for a in attributes() if a.name in ("SEX", "MARRIAGE"))
    table, plain = group_disparities(X, y, decline, p, device=CPU, seed=3, n_boot=200, attributes=sex)
    table_w, ones = group_disparities(X, y, decline, p, device=CPU, seed=3, n_boot=200, attributes=sex,
                                      row_weights=np.ones(len(X)))
    numeric = table.select_dtypes("number").columns
    np.testing.assert_allclose(table_w[numeric].to_numpy(float), table[numeric].to_numpy(float), rtol=1e-6, atol=1e-9)
    assert [r.verdict for r in ones] == [r.verdict for r in plain]


def test_weighted_rates_are_the_weighted_means(portfolio_shifted):  # noqa: ANN001
    """The point estimates are what a reader computes by hand: weighted approval rate, TPR and AUC per group."""
    from sklearn.metrics import roc_auc_score

    X, y, decline, p = portfolio_shifted
    (sex,) = (a for a in attributes() if a.name == "SEX")
    (edu,) = (a for a in attributes() if a.name == "EDUCATION")
    w = shift_weights(group_labels(X, sex), "female", 0.15)
    table, _ = group_disparities(X, y, decline, p, device=CPU, seed=0, n_boot=20, attributes=(edu,), row_weights=w)
    labels = group_labels(X, edu)
    row = table[(table["attribute"] == "EDUCATION") & (table["group"] == "university")].iloc[0]
    inside = labels == "university"
    assert row["approval_rate"] == pytest.approx(np.average(1 - decline[inside], weights=w[inside]))
    defaulters = inside & (y == 1)
    assert row["tpr"] == pytest.approx(np.average(decline[defaulters], weights=w[defaulters]))
    assert row["roc_auc"] == pytest.approx(roc_auc_score(y[inside], p[inside], sample_weight=w[inside]))
    assert row["count"] == inside.sum()  # counts stay on the rows observed


# ---- a constructed case where a shift moves a verdict ---------------------------------------------
def _constructed(n: int = 20_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Declines depend on sex alone (women 50%, men 2%); 20% of married and 5% of single people are women."""
    rng = np.random.default_rng(seed)
    married = rng.random(n) < 0.5
    female = rng.random(n) < np.where(married, 0.20, 0.05)
    frame = pd.DataFrame({"SEX": np.where(female, 2, 1), "MARRIAGE": np.where(married, 1, 2),
                          "EDUCATION": rng.choice([1, 2, 3], n), "AGE": rng.integers(22, 70, n)})
    y = (rng.random(n) < 0.25).astype(int)
    decline = (rng.random(n) < np.where(female, 0.5, 0.02)).astype(int)
    return frame, y, decline, rng.random(n)


@pytest.fixture(scope="module")
def constructed_shift():  # noqa: ANN201
    frame, y, decline, p = _constructed()
    return audit_shift(frame, y, decline, p, ["SEX:female+0.4", "SEX:female-0.05"], device=CPU, seed=0, n_boot=300)


def test_a_shift_moves_a_verdict_in_a_constructed_case(constructed_shift):  # noqa: ANN001
    up, down = constructed_shift.cases
    assert (up.group, up.chosen, up.status) == ("female", "named", "ok")
    assert up.share_before == pytest.approx(0.125, abs=0.01) and up.share_after == pytest.approx(up.share_before + 0.4)
    marriage = {a.attribute: a for a in up.attributes}["MARRIAGE"]
    assert (marriage.verdict_before, marriage.verdict_after) == (PASS, FAIL)
    gap = {f.disparity: f for f in marriage.figures}["demographic_parity_difference"]
    assert gap.before.value == pytest.approx(0.072, abs=0.01) and gap.after.value == pytest.approx(0.178, abs=0.015)
    assert gap.degradation == pytest.approx(gap.after.value - gap.before.value)
    sex = {a.attribute: a for a in up.attributes}["SEX"]  # its own groups: the weights cannot move it
    assert sex.unchanged_by_construction and all(f.before == f.after for f in sex.figures)
    assert all(f.degradation == 0 for f in sex.figures)
    assert {a.attribute for a in up.attributes if a.unchanged_by_construction} == {"SEX", "SEX x AGE band",
                                                                                  "SEX x EDUCATION"}
    assert {a.attribute: a for a in down.attributes}["MARRIAGE"].verdict_after == PASS  # fewer women: smaller gap


def test_every_shifted_interval_contains_its_estimate(constructed_shift):  # noqa: ANN001
    figures = [f for c in constructed_shift.cases for a in c.attributes for f in a.figures]
    assert len(figures) == 2 * 6 * 3
    for f in figures:
        for i in (f.before, f.after):
            if i.value is not None:
                assert i.lo <= i.value <= i.hi, f


def test_the_gate_fails_naming_rule_attribute_shift_and_figure(constructed_shift, slice_record):  # noqa: ANN001
    record = slice_record.model_copy(update={"shift": constructed_shift})
    outcome = evaluate_gates(record, GatePolicy(fail_on_verdicts=(), max_shift_degradation=0.05))
    assert not outcome.passed
    failed = {c.subject: c for c in outcome.failed}
    check = failed["MARRIAGE under SEX: female +40 points"]
    assert check.rule == "max_shift_degradation"
    assert "SEX:female+0.4" in check.message and "of MARRIAGE" in check.message
    assert check.message.startswith(("the degradation of the approval-rate gap", "the degradation of the equalized",
                                     "the degradation of the lowest adverse"))
    assert check.message.endswith("; the policy asks at most 0.0500") and check.limit == "at most 0.0500"
    assert not any("SEX x" in c.subject.split(" under ")[0] for c in outcome.checks)  # unchanged: not a check
    assert evaluate_gates(record, GatePolicy(fail_on_verdicts=(), max_shift_degradation=0.5)).passed
    assert evaluate_gates(record, GatePolicy(fail_on_verdicts=())).checks == ()  # no limit: no shift rule


def test_summary_reports_the_shift_outcomes(constructed_shift, slice_record, tmp_path):  # noqa: ANN001
    from flows.summary import summary, summary_lines

    facts = summary(slice_record.model_copy(update={"shift": constructed_shift}), tmp_path)
    up = facts["shift"][0]
    assert up["check"] == "SEX:female+0.4" and {"attribute": "MARRIAGE", "before": PASS, "after": FAIL} in \
        up["verdicts_moved"]
    assert up["largest_degradation"]["after_lo"] <= up["largest_degradation"]["after"]
    json.dumps(facts)  # JSON-able as --json prints it
    line = next(t for t in summary_lines(facts) if "under shift" in t)
    assert "MARRIAGE pass -> fail" in line and "2 of 2 checks measured" in line


# ---- the real file ------------------------------------------------------------------------------------
def test_real_file_shift_figures(portfolio_shifted):  # noqa: ANN001
    """Every default check on the real held-out split; the unshifted figures are the fairness audit's own."""
    X, y, decline, p = portfolio_shifted
    n_boot = 200
    section = audit_shift(X, y, decline, p, ["all"], device=CPU, seed=0, n_boot=n_boot)
    assert len(section.cases) == 8 and section.rows == len(X) == 6000
    _, audit = group_disparities(X, y, decline, p, device=CPU, seed=0, n_boot=n_boot)
    audited = {a.attribute: a for a in audit}
    measured = [c for c in section.cases if c.status == "ok"]
    assert len(measured) >= 6
    for case in section.cases:
        if case.status != "ok":  # a small least-favoured group cannot lose 10 points: stated, not refused
            assert "would take its share to" in case.reason
            continue
        assert case.share_after == pytest.approx(case.share_before + case.delta)
        assert 0.5 * len(X) < case.effective_rows < len(X)
        assert len(case.attributes) == 6
        for a in case.attributes:
            for f in a.figures:
                reference = audited[a.attribute].disparities[f.disparity]
                assert (f.before.value, f.before.lo, f.before.hi) == pytest.approx(
                    (reference["value"], reference["lo"], reference["hi"]))
                assert f.after.lo <= f.after.value <= f.after.hi
            assert a.unchanged_by_construction == (case.attribute in a.attribute.split(" x "))
    moved = [c for c in measured if any(f.degradation for a in c.attributes for f in a.figures)]
    assert moved  # on the real file the mix of ages and education differs between groups


def test_real_file_stress_intervals_contain_their_estimates(split, fitted_model):  # noqa: ANN001
    from sklearn.metrics import roc_auc_score

    section = stress_test(fitted_model, split.X_test, split.y_test.to_numpy(), split.X_train, n_boot=300)
    base_auc = roc_auc_score(split.y_test, fitted_model.predict_proba(split.X_test)[:, 1])
    assert section.n_boot == 300 and "paired bootstrap" in section.method
    for c in section.cases:
        for interval in (c.roc_auc_ci, c.roc_auc_change, c.decline_rate_change_ci, c.decisions_changed_ci):
            assert interval.lo <= interval.value <= interval.hi, (c.key, interval)
        assert c.roc_auc_ci.value == c.roc_auc
        assert c.roc_auc_change.value == pytest.approx(c.roc_auc - base_auc)


# ---- the command line ---------------------------------------------------------------------------------
def _cli(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize(("check", "message"), [
    ("SEX:+1.5", "the change must be strictly between -1 and 1"),
    ("INCOME:+0.1", "no audited attribute 'INCOME'"),
    ("SEX:female+0.5", "a share must stay strictly between 0% and 100%"),
])
def test_bad_checks_exit_2_before_anything_is_written(data_path, tmp_path, check, message):  # noqa: ANN001
    out = tmp_path / "run"
    done = _cli(["run", "--data", str(data_path), "--out", str(out), "--check-shift", "all", "--check-shift", check,
                 "--json"])
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in json.loads(done.stdout)["error"] and "Traceback" not in done.stderr
    assert not out.exists()


def test_fail_on_degradation_is_a_limit_between_0_and_1(tmp_path):  # noqa: ANN001
    done = _cli(["run", "--data", str(tmp_path / "none.csv"), "--fail-on-degradation", "1.5"])
    assert done.returncode == 2 and "expected a number from 0 to 1, got '1.5'" in done.stderr


def test_command_line_options_go_into_the_configuration():
    import argparse

    from flows.cmd_run import add_audit_options, audit_config

    parser = argparse.ArgumentParser()
    add_audit_options(parser)
    config = audit_config(parser.parse_args(["--check-shift", "SEX:+0.1", "--check-shift", "AGE:-0.05",
                                             "--fail-on-degradation", "0.02"]))
    assert config.shift.checks == ("SEX:+0.1", "AGE:-0.05") and config.gates.max_shift_degradation == 0.02
    assert "shift" not in config.identity() and "gates" not in config.identity()  # re-judged, never re-run
    assert audit_config(parser.parse_args(["--check-shift", "none"])).shift.checks == ()
    assert audit_config(parser.parse_args([])).shift.checks == ("all",)
    assert ShiftSpec("SEX", None, 0.1, "SEX:+0.1").label() == "SEX: least-favoured group +10 points"
