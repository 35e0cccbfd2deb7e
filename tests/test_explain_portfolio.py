"""explain_portfolio: the applicants.parquet columns of docs/outputs.md, aligned and consistent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from explain_synthetic import small_model

from pipeline import schema as S
from pipeline.columns import columns_of
from pipeline.explain import PortfolioExplanation, background_sample, explain_portfolio
from pipeline.explain._portfolio import MSG_DECLINED
from pipeline.explain_chunks import merge_summaries
from pipeline.surrogate import Surrogate

DOCS = Path(__file__).resolve().parents[1] / "docs" / "outputs.md"


def _surrogate(model, frame) -> Surrogate:
    return Surrogate(max_depth=3, min_samples_leaf=10).fit(frame, model.predict(frame))


@pytest.fixture(scope="module")
def explained() -> tuple:
    model, frame, labels = small_model()
    sur = _surrogate(model, frame)
    rows = frame.iloc[100:180].set_axis(np.arange(1000, 1080))  # an index that is not 0..n-1
    declined = model.predict(rows) == 1
    bg = background_sample(frame.iloc[:100], 20, seed=0)
    result = explain_portfolio(
        model,
        sur,
        rows,
        declined,
        bg,
        "cpu",
        0,
        training_frame=frame.iloc[:100],
        labels=labels[100:180],
        n_coalitions=128,
        lime_samples=500,
    )
    return model, rows, declined, result


def _documented_columns(model) -> set[str]:
    """Expand the explanation rows of the applicants.parquet table in docs/outputs.md."""
    text = DOCS.read_text()
    names = set(re.findall(r"^\| `([a-z_<>A-Z]+)` \|", text, flags=re.M))
    groups = {g.replace(" ", "_") for g in S.feature_groups(model.features)}
    out = set()
    for n in names:
        if n in ("shap_<FEATURE>", "lime_<FEATURE>"):
            out |= {n.replace("<FEATURE>", f) for f in model.features}
        elif n == "shapgroup_<group>":
            out |= {f"shapgroup_{g}" for g in groups}
        elif n in ("shap_base", "reasons", "counterfactual", "stability"):
            out.add(n)
    return out


def test_columns_are_the_documented_ones_and_aligned_with_the_frame(explained):
    model, rows, declined, result = explained
    assert isinstance(result, PortfolioExplanation)
    assert set(result.columns.columns) == _documented_columns(model)
    assert result.columns.index.equals(rows.index)
    cols = result.columns
    shap_sum = cols[[f"shap_{f}" for f in model.features]].sum(1) + cols["shap_base"]
    np.testing.assert_allclose(shap_sum, model.predict_proba(rows)[:, 1], atol=1e-5)
    group_sum = cols[list(columns_of(cols, "shapgroup"))].sum(1) + cols["shap_base"]
    np.testing.assert_allclose(group_sum, model.predict_proba(rows)[:, 1], atol=1e-5)
    lime = cols[[f"lime_{f}" for f in model.features]]
    assert lime[declined].notna().all().all() and lime[~declined].isna().all().all()
    assert cols.loc[~declined, "counterfactual"].isna().all()
    for cf in cols.loc[declined, "counterfactual"]:
        assert set(json.loads(cf)) >= {"found", "changes", "probability"}
    shap = cols[[f"shap_{f}" for f in model.features]].to_numpy()
    for i, text in enumerate(cols["reasons"]):  # exactly the top positive contributions: none withheld
        order = [model.features[j] for j in np.argsort(-shap[i], kind="stable") if shap[i, j] > 1e-6][:4]
        assert [r["feature"] for r in json.loads(text)] == order
    stab = cols["stability"].dropna()
    assert ((stab >= 0) & (stab <= 1)).all()


def test_summary_is_json_and_reports_every_method(explained):
    model, rows, declined, result = explained
    summary = json.loads(json.dumps(result.summary()))
    assert summary["applicants"] == len(rows) and summary["declined"] == int(declined.sum())
    methods = set(summary["global_importance"])
    assert {"shap", "tree_shap", "surrogate_impurity", "saliency", "integrated_gradients", "gradient"} <= methods
    assert set(summary["agreement"]) == methods
    assert summary["shap"]["max_additivity_gap"] < 1e-5
    assert summary["elderly_rule"]["age_is_input"] is ("AGE" in model.features)
    assert summary["counterfactuals"]["violations"] == 0
    assert 0 <= summary["surrogate_vs_mlp"]["mean_top4_overlap"] <= 1
    assert len(result.background) == 20


def test_declined_must_fit_the_frame(explained):
    model, rows, _, _ = explained
    with pytest.raises(ValueError, match=MSG_DECLINED.split("{")[0]):
        explain_portfolio(model, None, rows, np.array([len(rows) + 3]), rows.iloc[:5])


def test_chunks_merge_into_the_whole_portfolio_s_summary(explained):
    """Each method's merge rule (importance and summary sections) rebuilds the unchunked figures."""
    model, rows, declined, whole = explained
    _, frame, labels = small_model()
    bg = whole.background
    parts = [slice(0, 30), slice(30, 80)]
    chunks = [
        explain_portfolio(
            model,
            _surrogate(model, frame),
            rows.iloc[p],
            declined[p],
            bg,
            training_frame=frame.iloc[:100],
            labels=labels[100:180][p],
            n_coalitions=128,
            lime_samples=500,
        ).summary()
        for p in parts
    ]
    merged = merge_summaries(chunks, [rows.iloc[p] for p in parts], rows)
    want = whole.summary()
    assert merged["applicants"] == want["applicants"] and merged["declined"] == want["declined"]
    assert merged["counterfactuals"] == want["counterfactuals"]
    assert merged["elderly_rule"] == want["elderly_rule"]
    assert merged["shap"]["max_additivity_gap"] == max(c["shap"]["max_additivity_gap"] for c in chunks)
    assert set(merged["global_importance"]) == set(want["global_importance"])
    for method, values in want["global_importance"].items():
        for feature, v in values.items():
            assert merged["global_importance"][method][feature] == pytest.approx(v, rel=1e-5, abs=1e-9), method
    for group, v in want["group_importance"].items():
        assert merged["group_importance"][group] == pytest.approx(v, rel=1e-5)
    gap = want["integrated_gradients"]["mean_completeness_gap"]
    assert merged["integrated_gradients"]["mean_completeness_gap"] == pytest.approx(gap, rel=1e-5)
