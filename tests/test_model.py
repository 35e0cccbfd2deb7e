"""The MLP on the real data: held-out performance, reproducibility, persistence."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from pipeline import CreditModel, ThresholdPolicy
from pipeline import model as M
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


# ---- a saved model folder is checked before its weights are trusted ----------------------


@pytest.fixture
def saved(fitted_model, tmp_path):
    """A saved model folder and a function that rewrites its model.json."""
    fitted_model.save(tmp_path)
    meta_path = tmp_path / M.META_FILE

    def edit(change) -> None:
        meta = json.loads(meta_path.read_text())
        change(meta)
        meta_path.write_text(json.dumps(meta))

    return tmp_path, meta_path, edit


def test_model_json_without_its_hash_is_refused(saved):
    folder, meta_path, edit = saved
    edit(lambda m: m.pop("model_hash"))
    expected = M.MSG_NO_HASH.format(file=meta_path, weights=folder / M.WEIGHTS_FILE)
    with pytest.raises(M.ModelFileError, match=re.escape(expected)):
        CreditModel.load(folder)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('{"format": 1, "features": [', r"model\.json: not valid JSON model metadata \(Expecting"),
        ("[1, 2]", r"model\.json: expected a JSON object of model metadata, got list"),
        ("\udcff", r"model\.json: not valid JSON model metadata"),
    ],
)
def test_malformed_model_json_names_the_file(saved, text, pattern):
    folder, meta_path, _ = saved
    if text == "\udcff":
        meta_path.write_bytes(b"\xff\xfe{")
    else:
        meta_path.write_text(text)
    with pytest.raises(M.ModelFileError, match=pattern) as err:
        CreditModel.load(folder)
    assert str(meta_path) in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("threshold"), "key 'threshold' is missing; it must be a number between 0 and 1"),
        (lambda m: m.update(seed="0"), "key 'seed' must be a whole number of at least 0, got '0'"),
        (lambda m: m.update(hidden=[64, 0]), "key 'hidden.1' must be a list of 1 to 8 layer widths from 1 to 4096"),
        (lambda m: m.update(features=["LIMIT_BAL", "INCOME"]), "key 'features.1' must be a non-empty list of schema"),
        (lambda m: m.update(format=2), "key 'format' must be 1 (the only format this version reads), got 2"),
        (lambda m: m["policy"].update(value=1.5), "key 'policy.value' must be a number strictly between 0 and 1"),
        (lambda m: m.update(model_hash="abc"), "key 'model_hash' must be 64 lowercase hex digits"),
    ],
)
def test_bad_model_json_keys_name_file_and_key(saved, change, message):
    folder, meta_path, edit = saved
    edit(change)
    with pytest.raises(M.ModelFileError, match=re.escape(f"{meta_path}: {message}")):
        CreditModel.load(folder)


def test_missing_or_corrupt_weights_name_the_file(saved):
    folder, _, _ = saved
    weights = folder / M.WEIGHTS_FILE
    weights.write_bytes(b"not a torch file")
    with pytest.raises(M.ModelFileError, match=re.escape(f"{weights}: cannot read the model weights (")):
        CreditModel.load(folder)
    weights.unlink()
    with pytest.raises(M.ModelFileError, match=re.escape(f"{weights}: cannot read the model weights (no such file)")):
        CreditModel.load(folder)
    with pytest.raises(M.ModelFileError, match=re.escape(f"{folder / 'nowhere' / M.META_FILE}: cannot read")):
        CreditModel.load(folder / "nowhere")


def test_weights_of_another_architecture_name_the_file(saved):
    folder, _, edit = saved
    edit(lambda m: m.update(hidden=[8]))
    with pytest.raises(M.ModelFileError, match=r"model\.pt: the weights do not fit the architecture described in"):
        CreditModel.load(folder)
