"""Gradient attributions against captum, and global importance / rank agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, Saliency
from explain_synthetic import small_model

from pipeline.explain import integrated_gradients, loss_gradients, mean_abs, rank_agreement, saliency, scaled_by_std
from pipeline.explain._gradients import MSG_LABELS
from pipeline.explain._importance import MSG_NO_ROWS


@pytest.fixture(scope="module")
def fitted():
    return small_model()


def _inputs(model, frame):
    return torch.as_tensor(frame[list(model.features)].to_numpy(np.float32)).requires_grad_(True)


def test_saliency_matches_captum(fitted):
    model, frame, _ = fitted
    rows = frame.iloc[:64]
    want = Saliency(model.net_).attribute(_inputs(model, rows), abs=True).detach().numpy()
    np.testing.assert_allclose(saliency(model, rows), want, rtol=1e-5, atol=1e-10)


def test_integrated_gradients_match_captum_riemann_middle(fitted):
    model, frame, _ = fitted
    rows = frame.iloc[:16]
    baseline = frame[list(model.features)].to_numpy(np.float64).mean(0)
    ig = IntegratedGradients(model.net_)
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
    np.testing.assert_allclose(integrated_gradients(model, rows, baseline, steps=32), want, rtol=1e-4, atol=1e-7)


def test_loss_gradients_are_the_gradient_of_binary_cross_entropy(fitted):
    model, frame, labels = fitted
    rows, y = frame.iloc[:32], labels[:32]
    x = _inputs(model, rows)
    p = model.net_(x)
    torch.nn.functional.binary_cross_entropy(p, torch.as_tensor(y, dtype=torch.float32), reduction="sum").backward()
    np.testing.assert_allclose(loss_gradients(model, rows, y), x.grad.numpy(), rtol=1e-4, atol=1e-9)
    with pytest.raises(ValueError, match=MSG_LABELS.split("{")[0]):
        loss_gradients(model, rows, y[:5])


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
