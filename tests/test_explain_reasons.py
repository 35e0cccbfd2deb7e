"""Principal reasons (plain words, never protected) and stability of the top factors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from explain_synthetic import small_model

from pipeline import schema as S
from pipeline.explain import path_factors, principal_reasons, reasons_json, stability, top_factors, unstable
from pipeline.explain._reasons import MSG_SHAPE
from pipeline.surrogate import Surrogate

FEATS = ("LIMIT_BAL", "EDUCATION", "AGE", "PAY_0", "PAY_2", "BILL_AMT1", "PAY_AMT1")


def _frame(rows: list[list[float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(FEATS))


def test_reasons_rank_positive_contributions_and_skip_protected_attributes():
    frame = _frame([[20_000, 2, 25, 2, 0, 5_000, 0], [500_000, 1, 40, -1, -1, 0, 9_000]])
    values = np.array(
        [
            # AGE and EDUCATION are the largest risk-raisers but protected: never named
            [0.02, 0.30, 0.40, 0.25, -0.05, 0.01, 0.03],
            [-0.1, 0.05, 0.02, -0.02, -0.01, -0.03, -0.04],
        ]
    )
    reasons = principal_reasons(values, frame, FEATS)
    assert [r.feature for r in reasons[0]] == ["PAY_0", "PAY_AMT1", "LIMIT_BAL", "BILL_AMT1"]
    assert reasons[1] == []  # nothing raised the risk of the second applicant
    first = reasons[0][0]
    assert first.text == "Repayment status last month: 2 months late"
    assert first.contribution == pytest.approx(0.25)
    for rs in reasons:
        assert len(rs) <= 4
        assert not any(S.BY_NAME[r.feature].protected for r in rs)
    parsed = json.loads(reasons_json(reasons[0]))
    assert set(parsed[0]) == {"feature", "label", "value_text", "contribution", "text"}
    assert parsed[2]["value_text"] == S.BY_NAME["LIMIT_BAL"].describe(20_000)
    with pytest.raises(ValueError, match=MSG_SHAPE.split("{")[0]):
        principal_reasons(values[:, :3], frame, FEATS)


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
