"""Principal reasons (exactly the top risk-raising inputs, none withheld), the elderly rule, stability."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from explain_synthetic import small_model

from pipeline import schema as S
from pipeline.constants import ELDERLY_AGE, MAX_REASONS
from pipeline.explain import path_factors, principal_reasons, reasons_json, stability, top_factors, unstable
from pipeline.explain._portfolio import elderly_rule
from pipeline.explain._reasons import MSG_SHAPE
from pipeline.surrogate import Surrogate

FEATS = ("LIMIT_BAL", "EDUCATION", "AGE", "PAY_0", "PAY_2", "BILL_AMT1", "PAY_AMT1")


def _frame(rows: list[list[float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(FEATS))


def test_reasons_are_exactly_the_top_positive_contributions_none_withheld():
    """Issue 16: AGE was the largest factor against an applicant yet skipped. An input is never skipped."""
    frame = _frame([[20_000, 2, 59, 2, 0, 5_000, 0], [500_000, 1, 40, -1, -1, 0, 9_000]])
    values = np.array(
        [
            # AGE and EDUCATION are the largest risk-raisers: as inputs, they are the first reasons
            [0.02, 0.30, 0.40, 0.25, -0.05, 0.01, 0.03],
            [-0.1, 0.05, 0.02, -0.02, -0.01, -0.03, -0.04],
        ]
    )
    reference = _frame([[140_000, 2, 35, 0, 0, 20_000, 2_000]] * 3)
    reasons = principal_reasons(values, frame, FEATS, reference=reference)
    assert [r.feature for r in reasons[0]] == ["AGE", "EDUCATION", "PAY_0", "PAY_AMT1"]
    assert [r.feature for r in reasons[1]] == ["EDUCATION", "AGE"]  # only what raised the risk
    for i, rs in enumerate(reasons):
        expected = [FEATS[j] for j in np.argsort(-values[i]) if values[i, j] > 0][:MAX_REASONS]
        assert [r.feature for r in rs] == expected
    first = reasons[0][0]
    assert first.text == "Age: 59 years" and first.value == 59 and first.typical == 35
    assert first.contribution == pytest.approx(0.40)
    assert reasons[0][2].text == "Repayment status last month: 2 months late" and reasons[0][2].typical == 0
    parsed = json.loads(reasons_json(reasons[0]))
    assert set(parsed[0]) == {"feature", "label", "value", "value_text", "contribution", "text", "typical"}
    assert parsed[3]["value_text"] == S.BY_NAME["PAY_AMT1"].describe(0)
    assert principal_reasons(values, frame, FEATS)[0][0].typical is None  # no reference given
    with pytest.raises(ValueError, match=MSG_SHAPE.split("{")[0]):
        principal_reasons(values[:, :3], frame, FEATS)


def test_elderly_rule_counts_applicants_aged_62_or_more_with_age_against_them():
    """Regulation B 12 CFR 1002.6(b)(2)(ii), where age is an input; nothing to count where it is not."""
    frame = _frame([[20_000, 2, ELDERLY_AGE, 2, 0, 0, 0], [20_000, 2, 70, 2, 0, 0, 0],
                    [20_000, 2, 61, 2, 0, 0, 0], [20_000, 2, 80, 2, 0, 0, 0]])
    values = np.zeros((4, len(FEATS)))
    values[:, FEATS.index("AGE")] = [0.05, -0.02, 0.09, 0.01]
    got = elderly_rule(values, frame, FEATS, declined=np.array([0, 2]))
    assert got == {"age_is_input": True, "min_age": 62, "elderly": 3, "age_counted_against": 2,
                   "declined_age_counted_against": 1}
    without = tuple(f for f in FEATS if f != "AGE")
    got = elderly_rule(np.delete(values, FEATS.index("AGE"), axis=1), frame, without, declined=np.array([0]))
    assert got["age_is_input"] is False and got["age_counted_against"] == 0 and got["elderly"] == 3


def test_reasons_respect_max_reasons():
    frame = _frame([[20_000, 2, 25, 2, 1, 5_000, 0]])
    reasons = principal_reasons(np.full((1, len(FEATS)), 0.1), frame, FEATS, max_reasons=2)
    assert len(reasons[0]) == 2


def test_top_factors_and_stability_by_hand():
    feats = ["a", "b", "c", "d", "e", "f"]
    shap = np.array([[5, 4, 3, 2, 1, 0], [5, 4, 3, 2, 1, 0], [1, 2, 3, 4, 5, 6]], dtype=float)
    lime = np.array([[5, 4, 3, 2, 1, 0], [np.nan] * 6, [6, 5, 4, 3, 2, 1]], dtype=float)
    path = [frozenset({"a", "b"}), frozenset({"e", "f"}), frozenset()]
    s_top, l_top = top_factors(shap, feats), top_factors(-lime, feats)
    assert s_top[0] == frozenset("abcd") and l_top[1] is None
    got = stability(s_top, l_top, path)
    # row 0: shap==lime (1), path within both (1, 1) -> 1; row 1: no LIME, shap vs path {e,f}: 0/2
    # row 2: shap {c,d,e,f} vs lime {a,b,c,d}: 2/4, path empty -> 0.5
    np.testing.assert_allclose(got, [1.0, 0.0, 0.5])
    assert unstable(got).tolist() == [False, True, False]
    assert np.isnan(stability([frozenset("a")], [None], [frozenset()]))[0]


def test_path_factors_match_the_surrogates_own_decision_path():
    model, frame, _ = small_model()
    sur = Surrogate(max_depth=3, min_samples_leaf=10).fit(frame, model.predict(frame))
    got = path_factors(sur, frame.iloc[:30])
    for i in range(30):
        assert got[i] == frozenset(step["feature"] for step in sur.decision_path(frame.iloc[[i]]))
