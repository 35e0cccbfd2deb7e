"""The MLP on the real data: held-out performance, reproducibility, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from pipeline import CreditModel, ThresholdPolicy
from pipeline import schema as S
from pipeline.metrics import expected_calibration_error, performance

pytestmark = pytest.mark.slow


def test_held_out_auc_meets_published_range(fitted_model, split):
    p = fitted_model.predict_proba(split.X_test)[:, 1]
    assert roc_auc_score(split.y_test, p) >= 0.77


def test_probabilities_are_calibrated(fitted_model, split):
    p = fitted_model.predict_proba(split.X_test)[:, 1]
    assert abs(p.mean() - split.y_test.mean()) < 0.02
    assert expected_calibration_error(split.y_test.to_numpy(), p) < 0.04


def test_protected_inputs_are_excluded_by_default(fitted_model):
    """A reason may never be withheld, so no attribute that may not be given as a reason is an input (issue 16)."""
    assert not set(S.PROTECTED) & set(fitted_model.features)
    assert set(S.PROTECTED) == {"SEX", "MARRIAGE", "AGE", "EDUCATION"}


def test_predict_proba_contract(fitted_model, split):
    proba = fitted_model.predict_proba(split.X_test.iloc[:50])
    assert proba.shape == (50, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    decisions = fitted_model.predict(split.X_test.iloc[:50])
    np.testing.assert_array_equal(decisions, (proba[:, 1] >= fitted_model.threshold_).astype(int))


def test_unfitted_model_raises():
    with pytest.raises(NotFittedError):
        CreditModel().predict_proba(None)


def test_same_seed_same_predictions(fitted_model, split):
    again = CreditModel(seed=0).fit(split.X_train, split.y_train)
    np.testing.assert_array_equal(again.predict_proba(split.X_test), fitted_model.predict_proba(split.X_test))
    assert again.model_hash() == fitted_model.model_hash()


def test_save_load_roundtrip_uses_weights_only(fitted_model, split, tmp_path, monkeypatch):
    fitted_model.save(tmp_path, data_hash="abc")
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded = CreditModel.load(tmp_path)
    assert calls == [True]
    np.testing.assert_array_equal(loaded.predict_proba(split.X_test), fitted_model.predict_proba(split.X_test))
    assert loaded.threshold_ == fitted_model.threshold_


def test_tampered_weights_are_rejected(fitted_model, tmp_path):
    fitted_model.save(tmp_path)
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    first = next(iter(state))
    state[first] = state[first] + 1e-3
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="do not match the model_hash"):
        CreditModel.load(tmp_path)


def test_threshold_policies(fitted_model, split):
    p = fitted_model.predict_proba(split.X_test)[:, 1]
    y = split.y_test.to_numpy()
    assert ThresholdPolicy("fixed", 0.3).threshold(p, y) == 0.3
    rate = ThresholdPolicy("decline_rate", 0.25).threshold(p, y)
    assert np.mean(p >= rate) == pytest.approx(0.25, abs=0.01)
    youden = ThresholdPolicy("max_youden", 0.5).threshold(p, y)
    assert 0.05 < youden < 0.6
    with pytest.raises(ValueError, match="fixed, decline_rate or max_youden"):
        ThresholdPolicy("median", 0.5)


def test_performance_figures_match_sklearn(fitted_model, split):
    p = fitted_model.predict_proba(split.X_test)[:, 1]
    m = performance(split.y_test.to_numpy(), p, fitted_model.threshold_)
    c = m["confusion"]
    assert c["tn"] + c["fp"] + c["fn"] + c["tp"] == len(p)
    assert m["accuracy"] == pytest.approx((c["tn"] + c["tp"]) / len(p))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(split.y_test, p))
    assert sum(m["calibration_curve"]["count"]) == len(p)


def test_model_with_protected_inputs_trains(split):
    m = CreditModel(features=S.FEATURE_NAMES, seed=1, max_epochs=2).fit(split.X_train, split.y_train)
    assert m.predict_proba(split.X_test).shape == (len(split.X_test), 2)
