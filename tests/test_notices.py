"""Notices an applicant can trust (issue 16): every failure found on a full run of the real file is a test here.

- a principal reason withheld, and page 2 saying an input is "never given as a reason";
- each reason says why it counts, in plain words; the prose reads at grade 8 or below;
- the lender's credit limit offered as the applicant's action; past months described as if they could
  still change; a counterfactual at 49.9% against a 50.0% threshold printed as "50.0%" for both;
- the rights mixing GDPR, ECOA and the AI Act for one lender, only an email, no authority to complain to;
- the approved applicant's notice reusing the denial's page 2.

The run rendered is the one of tests/test_reports.py (real rows, a logistic model); the applicants'
rows are changed where a test needs a particular case. The grade of real notices (the MLP on the real
file) is measured in the slow test at the end.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from readability import GRADE_MAX, grade, prose
from test_reports import _rows, build_run, flat, pdf_pages, pdf_text

from pipeline import outputs as O
from pipeline import schema as S
from pipeline.config import MSG_UNKNOWN_KEY, load_config
from pipeline.run_record import NoticeSection, load_record, write_record
from reports._env import distinct_pcts

US_NOTICE = NoticeSection(
    regime="us", postal_contact="Credit Review, PO Box 7, Springfield, IL 62701", email_contact="review@bank.example",
    federal_agency="Consumer Financial Protection Bureau, 1700 G Street NW, Washington, DC 20552",
    consumer_report_agency="Example Credit Bureau, PO Box 1, Example City, 1-800-000-0000",
)


@pytest.fixture(scope="module")
def base_dir(portfolio, tmp_path_factory) -> Path:
    return build_run(tmp_path_factory.mktemp("notices") / "run", *_rows(portfolio))


def _copy(base: Path, tmp: Path, notice: NoticeSection | None = None, features: tuple[str, ...] | None = None) -> Path:
    out = tmp / "run"
    shutil.copytree(base, out)
    record = load_record(out)
    update = {}
    if notice is not None:
        update["notice"] = notice
    if features is not None:
        update["model"] = record.model.model_copy(update={"features": features})
    write_record(out, record.model_copy(update=update))
    return out


def _set_row(run_dir: Path, applicant_id: int, **cells: object) -> None:
    frame = pd.read_parquet(run_dir / O.APPLICANTS)
    row = frame.index[frame["id"] == applicant_id][0]
    for column, value in cells.items():
        frame.at[row, column] = value
    O.write_parquet(run_dir / O.APPLICANTS, frame)


def _render(run_dir: Path, applicant_id: int, out: Path) -> tuple[str, list[str]]:
    import reports

    path = reports.render_notice(reports.load_run(run_dir), applicant_id, out)
    return pdf_text(path), [flat(p) for p in pdf_pages(path)]


def _declined(run_dir: Path) -> int:
    import reports

    return reports.load_run(run_dir).declined_ids()[0]


def _approved(run_dir: Path) -> int:
    import reports

    frame = reports.load_run(run_dir).applicants
    return int(frame.loc[frame["decision"] == "approve", "id"].iloc[0])


# ---- reasons -----------------------------------------------------------------------------------------
def test_a_protected_input_that_drove_the_decision_is_given_as_the_first_reason(base_dir, tmp_path):
    """'Age (59 years) +5.6' was the biggest bar, yet skipped, and page 2 said age is never a reason."""
    run_dir = _copy(base_dir, tmp_path, features=(*load_record(base_dir).model.features, "AGE"))
    applicant = _declined(run_dir)
    age = S.BY_NAME["AGE"]
    reasons = [{"feature": "AGE", "label": age.label, "value": 59.0, "value_text": age.describe(59), "contribution": 0.056,
                "text": f"{age.label}: {age.describe(59)}", "typical": 35.0},
               {"feature": "PAY_0", "label": S.BY_NAME["PAY_0"].label, "value": 2.0, "value_text": "2 months late",
                "contribution": 0.03, "text": "Repayment status last month: 2 months late", "typical": 0.0}]
    _set_row(run_dir, applicant, reasons=json.dumps(reasons), AGE=59)
    text, pages = _render(run_dir, applicant, tmp_path / "out")
    assert "1. Age: 59 years. Your age is higher than usual (35 years). The model counts this against you." in pages[0]
    assert "2. Repayment status last month: 2 months late. Late payments count against you" in pages[0]
    assert "never given as a reason" not in text
    assert "It does use your age" in pages[1] and "they are among your reasons" in pages[1]


def test_page_two_of_the_default_model_says_which_facts_it_does_not_use(base_dir, tmp_path):
    text, pages = _render(base_dir, _declined(base_dir), tmp_path)
    assert "It does not use your sex, education, marital status or age." in pages[1]
    assert "never given as a reason" not in text and "We leave none out." in pages[1]
    assert "Age*: " in pages[0] and "* Not used by the model." in pages[0]  # the facts kept only for fairness


def test_no_footnote_explains_a_star_that_no_fact_carries(base_dir, tmp_path):
    everything = tuple(S.FEATURE_NAMES)  # a model that reads every fact: none is marked
    run_dir = _copy(base_dir, tmp_path, features=everything)
    _, pages = _render(run_dir, _declined(run_dir), tmp_path / "out")
    assert "*" not in pages[0] and "Not used by the model" not in pages[0]


def test_each_reason_says_why_it_counts(base_dir, tmp_path):
    run_dir = _copy(base_dir, tmp_path)
    applicant = _declined(run_dir)
    rows = [("LIMIT_BAL", 20_000.0, 140_000.0), ("BILL_AMT2", 90_000.0, 20_000.0), ("PAY_0", 0.0, -1.0),
            ("PAY_AMT1", 0.0, 2_000.0)]
    reasons = [{"feature": n, "label": S.BY_NAME[n].label, "value": v, "value_text": S.BY_NAME[n].describe(v),
                "contribution": 0.01, "text": f"{S.BY_NAME[n].label}: {S.BY_NAME[n].describe(v)}", "typical": t}
               for n, v, t in rows]
    _set_row(run_dir, applicant, reasons=json.dumps(reasons))
    _, pages = _render(run_dir, applicant, tmp_path / "out")
    for sentence in ("Credit limit: NT$ 20,000. Your credit limit is lower than usual (NT$ 140,000).",
                     "Bill statement in August: NT$ 90,000. Your bill is higher than usual (NT$ 20,000).",
                     "You paid only the minimum, not the whole bill.",
                     "Amount paid in September: NT$ 0. Your payment is lower than usual (NT$ 2,000)."):
        assert sentence in pages[0], sentence


# ---- what would have changed the decision ------------------------------------------------------------
def _counterfactual_case(base_dir: Path, tmp_path: Path, p_counterfactual: float, probability: float = 0.71,
                         threshold: float | None = None) -> tuple[Path, int]:
    run_dir = _copy(base_dir, tmp_path)
    applicant = _declined(run_dir)
    record = load_record(run_dir)
    if threshold is not None:
        write_record(run_dir, record.model_copy(update={"model": record.model.model_copy(update={"threshold": threshold})}))
    changes = [
        {"feature": "PAY_0", "label": "Repayment status last month", "from": 2.0, "to": 0.0, "by": "applicant", "text": ""},
        {"feature": "PAY_AMT1", "label": "Amount paid in September", "from": 0.0, "to": 35_031.0, "by": "applicant",
         "text": ""},
        {"feature": "LIMIT_BAL", "label": "Credit limit", "from": 20_000.0, "to": 40_000.0, "by": "lender", "text": ""},
    ]
    cf = {"found": True, "changes": changes, "probability": p_counterfactual, "margin": 0.02}
    _set_row(run_dir, applicant, counterfactual=json.dumps(cf), probability=probability, PAY_0=2, PAY_AMT1=0.0,
             BILL_AMT2=35_031.0, LIMIT_BAL=20_000.0)
    return run_dir, applicant


def test_changes_are_in_the_past_tense_and_the_limit_is_the_lenders(base_dir, tmp_path):
    run_dir, applicant = _counterfactual_case(base_dir, tmp_path, 0.4312)
    _, pages = _render(run_dir, applicant, tmp_path / "out")
    page = pages[0]
    assert 'in September, your repayment status had been "paid the minimum (revolving credit)", not "2 months late".' in page
    assert "in September, you had paid your whole August bill of NT$ 35,031, not NT$ 0." in page
    assert ("your credit limit had been NT$ 40,000, not NT$ 20,000. We set credit limits, so this is not something you did."
            " You can ask us for a higher limit.") in page
    assert "You cannot change the past." in page
    assert "influence" not in page  # the limit is never "information you can influence"
    assert "We set limits, but you can ask us for one." in pages[1]


def test_a_counterfactual_just_below_the_threshold_never_prints_as_the_threshold(base_dir, tmp_path):
    """49.9% against 50.0% printed '50.0%' for both: every probability on page 1 prints distinctly."""
    run_dir, applicant = _counterfactual_case(base_dir, tmp_path, 0.49996, probability=0.50004, threshold=0.5)
    _, pages = _render(run_dir, applicant, tmp_path / "out")
    assert "a 50.004% chance of missing next month's payment" in pages[0]
    assert "We decline when this chance is 50.000% or more" in pages[0]
    assert "would have given you a 49.996% chance" in pages[0]
    assert "at least 2 points below our cut-off of 50.000%" in pages[0]


def test_distinct_percentages():
    assert distinct_pcts({"a": 0.4312, "b": 0.5}) == {"a": "43.1%", "b": "50.0%"}
    assert distinct_pcts({"a": 0.4999, "b": 0.5, "c": 0.5}) == {"a": "49.99%", "b": "50.00%", "c": "50.00%"}
    assert distinct_pcts({"a": 0.49999999, "b": 0.5})["a"] != distinct_pcts({"a": 0.49999999, "b": 0.5})["b"]
    assert distinct_pcts({"a": None, "b": 0.25}) == {"a": "\u2013", "b": "25.0%"}


def test_no_plausible_change_is_said_not_invented(base_dir, tmp_path):
    run_dir = _copy(base_dir, tmp_path)
    applicant = _declined(run_dir)
    _set_row(run_dir, applicant, counterfactual=json.dumps({"found": False, "changes": [], "probability": None,
                                                            "margin": 0.02}))
    _, pages = _render(run_dir, applicant, tmp_path / "out")
    assert "We found no change you could really have made that would have changed our decision." in pages[0]


# ---- one notice per regime, and the approved applicant's own text ---------------------------------------
EU_ONLY = ("GDPR", "AI Act", "data protection authority")
US_ONLY = ("Equal Credit Opportunity Act", "12 CFR 1002.9", "Fair Credit Reporting Act", "federal agency")


def test_the_eu_notice_names_the_authority_and_no_us_law(base_dir, tmp_path):
    record = load_record(base_dir)
    text, pages = _render(base_dir, _declined(base_dir), tmp_path)
    assert all(phrase in text for phrase in EU_ONLY)
    assert not any(phrase in text for phrase in US_ONLY)
    for contact in (record.notice.postal_contact, record.notice.email_contact, record.notice.data_protection_authority):
        assert flat(contact) in pages[1]


def test_the_us_notice_is_an_adverse_action_notice_with_the_fcra_text(base_dir, tmp_path):
    run_dir = _copy(base_dir, tmp_path, notice=US_NOTICE)
    text, pages = _render(run_dir, _declined(run_dir), tmp_path / "out")
    assert not any(phrase in text for phrase in EU_ONLY)
    for phrase in ("Equal Credit Opportunity Act", "12 CFR 1002.9", "race, color, religion, national origin, sex,"
                   " marital status or age", "Fair Credit Reporting Act", "within 60 days", "dispute it with the agency"):
        assert phrase in text, phrase
    for contact in (US_NOTICE.postal_contact, US_NOTICE.email_contact, US_NOTICE.federal_agency,
                    US_NOTICE.consumer_report_agency):
        assert flat(contact) in pages[1], contact
    without_report = _copy(base_dir, tmp_path / "b", notice=US_NOTICE.model_copy(update={"consumer_report_agency": ""}))
    text, _ = _render(without_report, _declined(without_report), tmp_path / "out-b")
    assert "Fair Credit Reporting Act" not in text and "We did not use a report from a credit bureau" in text


@pytest.mark.parametrize("notice", [None, US_NOTICE], ids=["eu", "us"])
def test_the_approved_notice_has_its_own_text_on_both_pages(base_dir, tmp_path, notice):
    run_dir = _copy(base_dir, tmp_path, notice=notice)
    _, declined = _render(run_dir, _declined(run_dir), tmp_path / "d")
    _, approved = _render(run_dir, _approved(run_dir), tmp_path / "a")
    assert approved[1] != declined[1].replace(str(_declined(run_dir)), str(_approved(run_dir)))
    assert "We have approved your application" in approved[0] and "No person looked at it first" not in approved[0]
    for denial in ("turned you down", "contest the decision", "what would have changed our decision"):
        assert denial not in approved[1]


# ---- configuration -----------------------------------------------------------------------------------
def test_notice_settings_come_from_the_config_and_unknown_keys_are_refused(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[audit.notice]\nregime = "us"\nemail_contact = "a@b.example"\n'
                    '[audit.counterfactuals]\nmax_limit_factor = 1.5\n')
    config = load_config(good)
    assert config.notice.regime == "us" and config.notice.email_contact == "a@b.example"
    assert config.counterfactuals.max_limit_factor == 1.5 and config.counterfactuals.margin == 0.02
    assert type(config).from_dict(config.to_dict()) == config
    bad = tmp_path / "bad.toml"
    bad.write_text('[audit.notice]\nregime = "uk"\n')
    with pytest.raises(ValueError, match=r"\[audit.notice\] regime must be one of 'eu', 'us', got 'uk'"):
        load_config(bad)
    bad.write_text('[audit.notice]\nauthority = "x"\n')
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['authority'\] in \[audit.notice\]"):
        load_config(bad)
    assert "unknown" in MSG_UNKNOWN_KEY


# ---- reading level -----------------------------------------------------------------------------------
@pytest.mark.parametrize("notice", [None, US_NOTICE], ids=["eu", "us"])
def test_the_notice_prose_reads_at_grade_8_or_below(base_dir, tmp_path, notice):
    import reports

    run_dir = _copy(base_dir, tmp_path, notice=notice)
    run = reports.load_run(run_dir)
    ids = run.declined_ids()[:10] + [_approved(run_dir)]
    grades = [grade(prose(reports.notice_html(run, i))) for i in ids]
    assert max(grades) <= GRADE_MAX, grades


def check_real_run(run_dir: Path) -> dict:
    """Over every declined applicant of a finished run, what issue 16 asks; returns the measured figures.

    Reasons on the notice are exactly the top positive SHAP contributions among the inputs (at most
    four); every counterfactual re-scores at least its margin below the threshold with the run's own
    model and keeps the declared bounds and relations (written out here, not with the search's
    evaluator); the probabilities printed are distinct where the values are; the prose grade.
    """
    import reports
    from pipeline import CreditModel
    from reports._notice_view import letter_view

    run = reports.load_run(run_dir)
    model = CreditModel.load(run_dir / O.MODEL_DIR, device="cpu")
    features = list(model.features)
    threshold = run.record.model.threshold
    declined = run.declined_ids()
    table = run.applicants.set_index("id").loc[declined]
    figures = {"declined": len(declined), "reason_mismatches": 0, "found": 0, "by_applicant": 0, "violations": 0,
               "not_by_margin": 0, "equal_looking": 0}
    after = table[features].astype(np.float64).copy()
    margins = {}
    for i in declined:
        a = run.applicant(i)
        view = letter_view(run, i)
        top = sorted((v, n) for n, v in a.shap.items() if v > 1e-6)[::-1][:4]
        expected = [f"{S.BY_NAME[n].label}: {S.BY_NAME[n].describe(a.features[n])}" for _, n in top]
        figures["reason_mismatches"] += [r["text"] for r in view["reasons"]] != expected
        shown = {view["probability"]: a.probability, view["threshold"]: threshold}
        cf = a.counterfactual
        if cf and cf["found"]:
            figures["found"] += 1
            figures["by_applicant"] += all(c["by"] == "applicant" for c in cf["changes"])
            margins[i] = cf["margin"]
            for c in cf["changes"]:
                after.loc[i, c["feature"]] = c["to"]
            if view["counterfactual"]["probability"] in shown and shown[view["counterfactual"]["probability"]] != cf[
                    "probability"]:
                figures["equal_looking"] += 1
        if view["probability"] == view["threshold"] and a.probability != threshold:
            figures["equal_looking"] += 1
    found = list(margins)
    p = model.predict_proba(after.loc[found])[:, 1]
    figures["not_by_margin"] = int(np.sum(p > threshold - np.array([margins[i] for i in found])))
    before, new = table.loc[found, features].astype(np.float64), after.loc[found]
    owed = new["BILL_AMT2"].clip(lower=0)
    status_changed, pay_changed = new["PAY_0"] != before["PAY_0"], new["PAY_AMT1"] != before["PAY_AMT1"]
    touched = status_changed | pay_changed
    improves = S.BY_NAME["PAY_0"].improves_to
    broken = (
        (new.drop(columns=["PAY_0", "PAY_AMT1", "LIMIT_BAL"]) != before.drop(columns=["PAY_0", "PAY_AMT1", "LIMIT_BAL"]))
        .any(axis=1)
        | (new["PAY_AMT1"] < before["PAY_AMT1"])
        | (pay_changed & (new["PAY_AMT1"] > owed * 1.1 + 1_000))
        | (status_changed & ~pd.Series([n in improves.get(int(b), ()) for b, n in zip(before["PAY_0"], new["PAY_0"],
                                                                                      strict=True)], index=new.index))
        | (touched & new["PAY_0"].isin([-2, -1]) & (new["PAY_AMT1"] < owed * 0.9))
        | (touched & (new["PAY_0"] == 0) & (new["PAY_AMT1"] < owed * 0.02 * 0.9))
        | (touched & (owed > 0) & (new["PAY_AMT1"] >= owed) & (new["PAY_0"] >= 1))
        | (new["LIMIT_BAL"] > before["LIMIT_BAL"] * 2) | (new["LIMIT_BAL"] < before["LIMIT_BAL"] / 2)
    )
    figures["violations"] = int(broken.sum())
    grades = np.array([grade(prose(reports.notice_html(run, i))) for i in declined])
    figures.update(found_rate=figures["found"] / len(declined), grade_max=float(grades.max()),
                   grade_mean=float(grades.mean()), grade_min=float(grades.min()))
    return figures


@pytest.mark.slow
def test_every_declined_applicant_of_a_real_run(audit_run):
    """Issue 16's "done when", over every declined applicant of a whole run of the real file."""
    figures = check_real_run(audit_run)
    assert figures["declined"] > 1000, figures
    assert figures["reason_mismatches"] == 0, figures
    assert figures["violations"] == 0 and figures["not_by_margin"] == 0, figures
    assert figures["equal_looking"] == 0, figures
    assert figures["found_rate"] >= 0.9, figures
    assert figures["grade_max"] <= GRADE_MAX, figures
    record = load_record(audit_run)
    cf = record.explanations.counterfactuals
    assert (cf.declined, cf.found, cf.found_by_applicant, cf.violations) == (
        figures["declined"], figures["found"], figures["by_applicant"], 0)
    assert record.explanations.elderly_rule.age_is_input is False


# ---- the audit report states the figures -------------------------------------------------------------
def test_audit_report_states_the_found_rate_the_rules_and_the_elderly_count(base_dir, tmp_path):
    import reports
    from pipeline.run_record import ElderlyRule

    run_dir = _copy(base_dir, tmp_path)
    record = load_record(run_dir)
    cf = record.explanations.counterfactuals.model_copy(
        update={"declined": 80, "found": 75, "found_by_applicant": 74, "violations": 0, "margin": 0.02,
                "max_limit_factor": 2.0})
    for rule, expected in (
        (ElderlyRule(age_is_input=False, min_age=62, elderly=31, age_counted_against=0,
                     declined_age_counted_against=0), "age is not a model input, so it counted against none of the 31"),
        (ElderlyRule(age_is_input=True, min_age=62, elderly=31, age_counted_against=4, declined_age_counted_against=1),
         "4 of 31 applicants aged 62 or more had age counted against them (1 of them declined): the rule is broken"),
    ):
        explanations = record.explanations.model_copy(update={"counterfactuals": cf, "elderly_rule": rule})
        write_record(run_dir, record.model_copy(update={"explanations": explanations}))
        text = flat(reports.audit_html(reports.load_run(run_dir)))
        assert expected in text.replace("<strong>", "").replace("</strong>", "")
        assert "found-rate 93.8%; 74 by the applicant's own actions" in text
        assert "counterfactuals breaking a rule of the schema: 0" in text
        assert "at least 2 points below the threshold" in text
