"""Batched LIME against the lime library: its sampling distribution, its ridge fit, its weights."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from lime.lime_tabular import LimeTabularExplainer
from scipy.stats import ks_2samp
from sklearn.linear_model import Ridge

from pipeline.audited_model import Blockwise
from pipeline.explain._lime import (
    MSG_KEYS,
    _weighted_ridge,
    categorical_indices,
    lime_explain,
    lime_reference,
    top_k_agreement,
)
from pipeline.explain._lime_sampling import QUANTILE_CELLS, LimeSampler

N_DRAWS = 20_000


@pytest.fixture(scope="module")
def declined(fitted_model, split):
    return split.X_test[fitted_model.predict(split.X_test) == 1]


def test_weighted_ridge_is_sklearn_ridge():
    rng = np.random.default_rng(0)
    z = (rng.random((3, 400, 6)) < 0.6).astype(np.float64)
    y = rng.random((3, 400))
    w = rng.random((3, 400))
    ours = _weighted_ridge(torch.as_tensor(z), torch.as_tensor(y), torch.as_tensor(w)).numpy()
    for i in range(3):
        ref = Ridge(alpha=1.0, fit_intercept=True).fit(z[i], y[i], sample_weight=w[i]).coef_
        np.testing.assert_allclose(ours[i], ref, rtol=1e-8, atol=1e-10)


def test_sampler_draws_lime_neighbourhood_distribution(split):
    """Per feature, our table's values follow the distribution lime's own sampler draws."""
    features = [c for c in split.X_train.columns if c not in ("SEX", "MARRIAGE")]
    train = split.X_train[features].to_numpy(np.float64)
    categorical = categorical_indices(features)
    explainer = LimeTabularExplainer(
        train, feature_names=features, categorical_features=categorical, discretizer="quartile", random_state=1
    )
    row = split.X_test[features].to_numpy(np.float64)[0]
    binary, inverse = explainer._LimeTabularExplainer__data_inverse(row, N_DRAWS + 1)

    sampler = LimeSampler.fit(train, set(categorical))
    cells = np.random.default_rng(2).integers(0, QUANTILE_CELLS, size=(N_DRAWS, len(features)))
    ours = sampler.table[np.arange(len(features)), cells]
    low, high = sampler.own_cells(row[None, :])
    ours_binary = (cells >= low) & (cells < high)

    for j, name in enumerate(features):
        if j in categorical:
            codes = np.union1d(inverse[1:, j], ours[:, j])
            theirs_freq = (inverse[1:, j, None] == codes).mean(0)
            ours_freq = (ours[:, j, None] == codes).mean(0)
            assert np.abs(theirs_freq - ours_freq).max() < 0.015, name
        else:
            assert ks_2samp(inverse[1:, j], ours[:, j]).pvalue > 1e-3, name
        assert abs(binary[1:, j].mean() - ours_binary[:, j].mean()) < 0.015, name


def test_applicant_bins_are_lime_discretisation(split):
    features = [c for c in split.X_train.columns if c not in ("SEX", "MARRIAGE")]
    train = split.X_train[features].to_numpy(np.float64)
    categorical = categorical_indices(features)
    explainer = LimeTabularExplainer(train, feature_names=features, categorical_features=categorical)
    sampler = LimeSampler.fit(train, set(categorical))
    rows = split.X_test[features].to_numpy(np.float64)[:50]
    lime_bins = explainer.discretizer.discretize(rows)
    low, high = sampler.own_cells(rows)
    midpoint_cells = (low + high) // 2
    for j in explainer.discretizer.lambdas:
        drawn_bin = np.searchsorted(sampler.edges[j], sampler.table[j, midpoint_cells[:, j]])
        np.testing.assert_array_equal(drawn_bin, lime_bins[:, j])


@pytest.mark.slow
def test_top5_agrees_with_lime_as_well_as_lime_with_itself(fitted_model, split, declined):
    """Averaged over three seeds per backend: one pair of lime runs is too noisy a yardstick."""
    sample = declined.iloc[:8]
    ours = [lime_explain(fitted_model, sample, split.X_train, "cpu", seed=s).values for s in range(3)]
    lime = [lime_reference(fitted_model, sample, split.X_train, "cpu", seed=s).values for s in range(3)]
    ours_vs_lime = np.mean([top_k_agreement(a, b).mean() for a in ours for b in lime])
    lime_vs_lime = np.mean([top_k_agreement(a, b).mean() for a, b in itertools.combinations(lime, 2)])
    assert ours_vs_lime >= lime_vs_lime - 0.05, (ours_vs_lime, lime_vs_lime)
    # and the weights themselves, not only their ranks
    correlations = [np.corrcoef(a, b)[0, 1] for a, b in zip(ours[0], lime[0], strict=True)]
    assert np.median(correlations) > 0.95, correlations


# How far one applicant's LIME weights may move with the batch it is explained in. Its random draws
# do not depend on the batch, but its samples are scored by float32 matrix products whose blocking
# (and so rounding) depends on how many rows are scored at once, so a sample's probability may move
# by a few float32 ulps; probabilities are at most 1, so a few ulps are a few FLOAT32_EPS at most.
# Each weight is a linear function of the sample probabilities (the ridge solve) whose coefficients
# sum to about 2 in absolute value (a difference of two weighted means; at most 2.8 measured on
# declined applicants of the real file at 500 samples), so it moves by at most ~3 x 4 ulps. Draws
# that did depend on the batch would move weights by ~1e-2, four orders of magnitude more.
BATCH_TOLERANCE = 3 * 4 * float(np.finfo(np.float32).eps)


def test_deterministic_per_applicant_whatever_the_batch(fitted_model, split, declined):
    batch = declined.iloc[:5]
    whole = lime_explain(fitted_model, batch, split.X_train, "cpu", seed=3, num_samples=500).values
    again = lime_explain(fitted_model, batch, split.X_train, "cpu", seed=3, num_samples=500).values
    alone = lime_explain(fitted_model, batch.iloc[[3]], split.X_train, "cpu", seed=3, num_samples=500).values
    other_seed = lime_explain(fitted_model, batch, split.X_train, "cpu", seed=4, num_samples=500).values
    np.testing.assert_array_equal(whole, again)
    np.testing.assert_allclose(alone[0], whole[3], rtol=0, atol=BATCH_TOLERANCE)
    assert not np.allclose(whole, other_seed, rtol=0, atol=1e3 * BATCH_TOLERANCE)
    assert whole.shape == (5, len(fitted_model.features))


def test_rejects_frames_it_cannot_explain(fitted_model, split, declined):
    with pytest.raises(ValueError, match="frame lacks model input column"):
        lime_explain(fitted_model, declined.iloc[:2].drop(columns="PAY_0"), split.X_train, "cpu", seed=0)
    relabelled = declined.iloc[:2].set_axis(["a", "b"])
    with pytest.raises(ValueError, match=MSG_KEYS.split("{")[0][:40]):
        lime_explain(fitted_model, relabelled, split.X_train, "cpu", seed=0)


def test_top_k_agreement_counts_shared_features():
    a = np.array([[5.0, -4.0, 3.0, 0.1, 0.2]])
    b = np.array([[-5.0, 0.0, 3.0, 4.0, 0.2]])
    assert top_k_agreement(a, b, k=2)[0] == 0.5
    assert top_k_agreement(a, a, k=3)[0] == 1.0


class TorchOnly:
    """The same model offering `Differentiable` but not `Blockwise`: LIME must score with the whole function."""

    def __init__(self, model):
        self.features, self.threshold_ = model.features, model.threshold_
        self.predict_proba, self.torch_function = model.predict_proba, model.torch_function


class PredictOnly:
    """The same model as a black box: only `predict_proba`."""

    def __init__(self, model):
        self.features, self.threshold_, self.predict_proba = model.features, model.threshold_, model.predict_proba


def test_every_path_gives_the_model_s_own_weights(fitted_model, split, declined):
    """Pre-encoded shortcut (Blockwise), whole torch function, predict_proba: the same weights."""
    assert isinstance(fitted_model, Blockwise) and not isinstance(TorchOnly(fitted_model), Blockwise)
    batch = declined.iloc[:3]
    fast = lime_explain(fitted_model, batch, split.X_train, "cpu", seed=5, num_samples=1000)
    full = lime_explain(TorchOnly(fitted_model), batch, split.X_train, "cpu", seed=5, num_samples=1000)
    np.testing.assert_allclose(fast.values, full.values, atol=1e-6)
    # predict_proba reads the float64 sample values (torch models round them to float32 first)
    black_box = lime_explain(PredictOnly(fitted_model), batch, split.X_train, "cpu", seed=5, num_samples=1000)
    np.testing.assert_allclose(black_box.values, fast.values, atol=1e-5)
    np.testing.assert_allclose(fast.output, fitted_model.predict_proba(batch)[:, 1], rtol=1e-6)
