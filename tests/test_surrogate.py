"""The surrogate tree: fidelity to the MLP, readable rules, per-applicant paths."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import schema as S
from pipeline.surrogate import Surrogate

pytestmark = pytest.mark.slow


def test_fidelity_on_held_out_data(fitted_model, fitted_surrogate, split):
    assert fitted_surrogate.max_depth <= 5
    assert fitted_surrogate.fidelity(split.X_test, fitted_model.predict(split.X_test)) >= 0.90


def test_rules_cover_every_training_row_once(fitted_surrogate, split):
    rules = fitted_surrogate.rules()
    assert sum(r["samples"] for r in rules) == len(split.X_train)
    assert {r["decision"] for r in rules} <= {"approve", "decline"}


def test_rules_use_human_labels_not_column_names(fitted_surrogate):
    text = fitted_surrogate.rules_text()
    assert "Repayment status last month" in text
    for name in S.FEATURE_NAMES:
        assert f"{name} " not in text


def test_decision_path_matches_tree_decision(fitted_surrogate, split):
    row = split.X_test.iloc[[3]]
    path = fitted_surrogate.decision_path(row)
    assert 1 <= len(path) <= fitted_surrogate.max_depth
    for step in path:
        assert step["value"] == float(row[step["feature"]].iloc[0])
        assert S.BY_NAME[step["feature"]].label in step["condition"]


def test_surrogate_is_deterministic(fitted_model, split):
    d = fitted_model.predict(split.X_train)
    a = Surrogate(seed=3).fit(split.X_train, d).predict(split.X_test)
    b = Surrogate(seed=3).fit(split.X_train, d).predict(split.X_test)
    np.testing.assert_array_equal(a, b)
