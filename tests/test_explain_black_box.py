"""A model that offers only `predict_proba` is explained end to end: SHAP, LIME, counterfactuals, the surrogate.

A lender's own model reaches the audit through the `pipeline.audited_model`
protocol. Here that model is a scikit-learn logistic regression fitted on a
slice of the real file, wrapped in a few lines: no torch function, no layers
to share, so every explainer takes its generic path and the gradient methods
are reported as not applicable instead of failing the run.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline import schema as S
from pipeline.audited_model import AuditedModel, Differentiable, check_auditable
from pipeline.columns import SHAP_BASE, columns_of
from pipeline.explain import NOT_APPLICABLE, background_sample, explain_portfolio
from pipeline.surrogate import Surrogate

TRAIN_ROWS, EXPLAINED = slice(0, 2000), slice(2000, 2060)
DECLINE_SHARE = 0.2


class LogisticModel:
    """The audited-model protocol around a fitted scikit-learn classifier: features, threshold_, predict_proba."""

    def __init__(self, estimator, features: tuple[str, ...], threshold: float) -> None:
        self.estimator, self.features, self.threshold_ = estimator, features, threshold

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(frame[list(self.features)].to_numpy(np.float64))


@pytest.fixture(scope="module")
def black_box(portfolio):
    features = S.DEFAULT_MODEL_FEATURES
    frame, labels = portfolio.features, portfolio.labels.to_numpy()
    train = frame.iloc[TRAIN_ROWS]
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    estimator.fit(train[list(features)].to_numpy(np.float64), labels[TRAIN_ROWS])
    p_train = estimator.predict_proba(train[list(features)].to_numpy(np.float64))[:, 1]
    model = LogisticModel(estimator, features, float(np.quantile(p_train, 1 - DECLINE_SHARE)))
    return model, frame, labels


@pytest.fixture(scope="module")
def explained(black_box):
    model, frame, labels = black_box
    train, rows = frame.iloc[TRAIN_ROWS], frame.iloc[EXPLAINED]
    decide = lambda f: (model.predict_proba(f)[:, 1] >= model.threshold_).astype(int)  # noqa: E731
    surrogate = Surrogate(max_depth=3, min_samples_leaf=20).fit(train, decide(train))
    declined = decide(rows) == 1
    result = explain_portfolio(
        model,
        surrogate,
        rows,
        declined,
        background_sample(train, 20, seed=0),
        training_frame=train,
        labels=labels[EXPLAINED],
        n_coalitions=128,
        lime_samples=500,
    )
    return model, rows, declined, result


def test_the_wrapper_is_an_audited_model_without_capabilities(black_box):
    model, _, _ = black_box
    assert isinstance(model, AuditedModel) and check_auditable(model) is model
    assert not isinstance(model, Differentiable)


def test_shap_adds_up_to_the_model_s_own_probability(explained):
    model, rows, _, result = explained
    p = model.predict_proba(rows)[:, 1]
    cols = result.columns
    shap = cols[list(columns_of(cols, "shap", model.features))].to_numpy()
    assert shap.shape == (len(rows), len(model.features))
    np.testing.assert_allclose(shap.sum(1) + cols[SHAP_BASE], p, atol=1e-9)  # float64 all the way
    groups = cols[list(columns_of(cols, "shapgroup"))].to_numpy()
    np.testing.assert_allclose(groups.sum(1) + cols[SHAP_BASE], p, atol=1e-9)
    assert result.summary()["shap"]["max_additivity_gap"] < 1e-9


def test_lime_counterfactuals_and_surrogate_run_and_gradients_are_not_applicable(explained):
    model, _, declined, result = explained
    assert declined.any()
    summary = json.loads(json.dumps(result.summary()))
    assert set(summary[NOT_APPLICABLE]) == {"saliency", "integrated_gradients", "gradient"}
    assert all("Differentiable" in why for why in summary[NOT_APPLICABLE].values())
    assert set(summary["global_importance"]) == {"shap", "tree_shap", "surrogate_impurity", "lime"}
    assert set(summary["agreement"]) == set(summary["global_importance"])
    assert "integrated_gradients" not in summary and "integrated_gradients" not in summary["methods"]
    lime = result.columns[list(columns_of(result.columns, "lime", model.features))]
    assert lime[declined].notna().all().all() and lime[~declined].isna().all().all()
    records = result.columns.loc[declined, "counterfactual"].map(json.loads)
    counts = summary["counterfactuals"]
    assert counts["declined"] == int(declined.sum()) and counts["violations"] == 0
    assert counts["found"] == int(records.map(lambda r: r["found"]).sum())
    for record in records[records.map(lambda r: r["found"])]:
        assert record["probability"] <= model.threshold_ - counts["margin"]
    assert 0 <= summary["surrogate_vs_mlp"]["mean_top4_overlap"] <= 1
    assert result.columns["stability"].notna().any()
