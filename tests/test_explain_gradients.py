"""Gradient attributions against captum, and global importance / rank agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, Saliency
from explain_synthetic import small_model

from pipeline.audited_model import MSG_MISSING_CAPABILITY, MissingCapability
from pipeline.explain import (
    completeness_gap,
    integrated_gradients,
    loss_gradients,
    mean_abs,
    rank_agreement,
    saliency,
    scaled_by_std,
)
from pipeline.explain._importance import MSG_NO_ROWS
from pipeline.explain._loss_gradients import MSG_LABELS


@pytest.fixture(scope="module")
def fitted():
    return small_model()


def _inputs(model, frame):
    return torch.as_tensor(frame[list(model.features)].to_numpy(np.float32)).requires_grad_(True)


def test_saliency_matches_captum(fitted):
    model, frame, _ = fitted
    rows = frame.iloc[:64]
    want = Saliency(model.torch_function("cpu")).attribute(_inputs(model, rows), abs=True).detach().numpy()
    got = saliency(model, rows)
    np.testing.assert_allclose(got.values, want, rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(got.output, model.predict_proba(rows)[:, 1], rtol=1e-6)


def test_integrated_gradients_match_captum_riemann_middle(fitted):
    model, frame, _ = fitted
    rows = frame.iloc[:16]
    baseline = frame[list(model.features)].to_numpy(np.float64).mean(0)
    ig = IntegratedGradients(model.torch_function("cpu"))
    want = (
        ig.attribute(
            _inputs(model, rows),
            baselines=torch.as_tensor(baseline[None], dtype=torch.float32),
            n_steps=32,
            method="riemann_middle",
        )
        .detach()
        .numpy()
    )
    got = integrated_gradients(model, rows, baseline, steps=32)
    np.testing.assert_allclose(got.values, want, rtol=1e-4, atol=1e-7)
    # its own check: completeness against f(baseline), which the result carries as its base
    base_row = frame.iloc[:1].copy()
    base_row[list(model.features)] = baseline
    assert got.base == pytest.approx(model.predict_proba(base_row)[0, 1], rel=1e-6)
    np.testing.assert_allclose(completeness_gap(got), np.abs(want.sum(1) - (got.output - got.base)), atol=1e-6)


def test_loss_gradients_are_the_gradient_of_binary_cross_entropy(fitted):
    model, frame, labels = fitted
    rows, y = frame.iloc[:32], labels[:32]
    x = _inputs(model, rows)
    p = model.torch_function("cpu")(x)
    torch.nn.functional.binary_cross_entropy(p, torch.as_tensor(y, dtype=torch.float32), reduction="sum").backward()
    np.testing.assert_allclose(loss_gradients(model, rows, y).values, x.grad.numpy(), rtol=1e-4, atol=1e-9)
    with pytest.raises(ValueError, match=MSG_LABELS.split("{")[0]):
        loss_gradients(model, rows, y[:5])


def test_gradient_methods_need_a_differentiable_model(fitted):
    model, frame, labels = fitted

    class PredictOnly:
        features, threshold_, predict_proba = model.features, model.threshold_, model.predict_proba

    rows = frame.iloc[:4]
    prefix = MSG_MISSING_CAPABILITY.split("{")[1].split("}")[1]  # " needs a model with the "
    for run in (
        lambda m: saliency(m, rows),
        lambda m: integrated_gradients(m, rows, np.zeros(len(model.features))),
        lambda m: loss_gradients(m, rows, labels[:4]),
    ):
        with pytest.raises(MissingCapability, match=prefix + "Differentiable"):
            run(PredictOnly())


def test_global_importance_and_rank_agreement():
    feats = ["a", "b", "c", "d"]
    vals = np.array([[1.0, -2.0, 0.5, 0.0], [np.nan] * 4, [3.0, 2.0, -0.5, 1.0]])
    imp = mean_abs(vals, feats, "m")
    assert imp == {"a": 2.0, "b": 2.0, "c": 0.5, "d": 0.5}
    with pytest.raises(ValueError, match=MSG_NO_ROWS.split("{")[0]):
        mean_abs(np.full((2, 4), np.nan), feats, "m")
    import pandas as pd

    frame = pd.DataFrame({"a": [0.0, 2.0], "b": [1.0, 1.0], "c": [0.0, 4.0], "d": [1.0, 3.0]})
    assert scaled_by_std({"a": 1.0, "c": 1.0}, frame) == {"a": 1.0, "c": 2.0}
    agree = rank_agreement(
        {
            "x": {"a": 1, "b": 2, "c": 3, "d": 4},
            "y": {"a": 10, "b": 20, "c": 30, "d": 40},
            "z": {"a": 4, "b": 3, "c": 2, "d": 1},
        }
    )
    assert agree.loc["x", "y"] == pytest.approx(1.0)
    assert agree.loc["x", "z"] == pytest.approx(-1.0)
    assert np.allclose(agree.to_numpy(), agree.to_numpy().T)
