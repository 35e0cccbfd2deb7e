"""SHAP: the batched engine against brute force and the shap library, additivity, grouped values."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest
import torch
from explain_synthetic import small_model, synthetic_frame

from pipeline.audited_model import Blockwise, Differentiable, check_auditable
from pipeline.explain import (
    background_sample,
    batched_shap,
    exact_shap,
    grouped_shap,
    kernel_design,
    kernel_explainer_shap,
    model_function,
    model_groups,
    tree_shap,
)
from pipeline.explain._game import BlockwiseGame, HybridGame, coalition_values
from pipeline.explain._kernel import MSG_BUDGET, size_weights
from pipeline.explain._portfolio import MSG_BACKEND, explain_portfolio
from pipeline.surrogate import Surrogate

SIX = ("LIMIT_BAL", "EDUCATION", "PAY_0", "PAY_2", "BILL_AMT1", "PAY_AMT1")


@pytest.fixture(scope="module")
def full():
    return small_model()


@pytest.fixture(scope="module")
def six():
    return small_model(SIX)


class PredictOnly:
    """A model offering only the required interface, so every explainer takes its generic path."""

    def __init__(self, model):
        self.features, self.threshold_, self.predict_proba = model.features, model.threshold_, model.predict_proba


def _function_on_rows(model, rows: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.torch_function("cpu")(torch.as_tensor(rows, dtype=torch.float32)).double().numpy()


def test_credit_model_offers_every_capability_and_its_parts_are_its_function(full):
    model, frame, _ = full
    assert check_auditable(model) is model and isinstance(model, Differentiable) and isinstance(model, Blockwise)
    x = torch.as_tensor(frame[list(model.features)].to_numpy(np.float32)[:50])
    parts = model.blockwise("cpu")
    blocks = parts.encode_blocks(x)
    assert len(blocks) == len(parts.block_widths) == len(model.features)
    assert [b.shape[1] for b in blocks] == list(parts.block_widths)
    with torch.no_grad():
        pre = torch.nn.functional.linear(torch.cat(list(blocks), dim=1), parts.weight, parts.bias)
        np.testing.assert_allclose(parts.head(pre).numpy(), _function_on_rows(model, x.numpy()), atol=1e-6)
    np.testing.assert_allclose(_function_on_rows(model, x.numpy()), model.predict_proba(frame.iloc[:50])[:, 1], atol=1e-7)
    assert not isinstance(PredictOnly(model), Differentiable)


def test_coalition_values_equal_the_network_on_explicit_hybrid_rows(full):
    model, frame, _ = full
    f = list(model.features)
    x = frame[f].to_numpy(np.float32)[:4]
    bg = frame[f].to_numpy(np.float32)[100:110]
    rng = np.random.default_rng(1)
    masks = rng.random((7, len(f))) < 0.5
    hybrid = np.where(masks[None, :, None, :], x[:, None, None, :], bg[None, None, :, :])
    want = _function_on_rows(model, hybrid.reshape(-1, len(f))).reshape(4, 7, 10).mean(-1)
    for fn in (model_function(model), model_function(PredictOnly(model))):  # blockwise, and hybrid rows
        tensors = (torch.as_tensor(a, dtype=fn.dtype) for a in (x, bg))
        got = coalition_values(fn, *tensors, torch.as_tensor(masks)).numpy()
        np.testing.assert_allclose(got, want, atol=1e-6)
    per_bg = torch.as_tensor(rng.random((10, 5, len(f))) < 0.5)
    hybrid = np.where(per_bg.numpy()[None], x[:, None, None, :], bg[None, :, None, :])
    want = _function_on_rows(model, hybrid.reshape(-1, len(f))).reshape(4, 10, 5)
    games = (
        BlockwiseGame(model.blockwise("cpu"), torch.as_tensor(bg), per_bg),
        HybridGame(model_function(PredictOnly(model)), torch.as_tensor(bg, dtype=torch.float64), per_bg),
    )
    for game in games:
        xs = torch.as_tensor(x, dtype=game.dtype)
        for block in (None, 16 * 50 * 3):  # one applicant per step (CPU), and several per step (as on CUDA)
            np.testing.assert_allclose(game.values(xs, block).numpy(), want, atol=1e-6)


class TorchOnly(PredictOnly):
    """Differentiable but not Blockwise: the whole torch function scores explicit hybrid rows."""

    def __init__(self, model):
        super().__init__(model)
        self.torch_function = model.torch_function


def test_every_model_path_gives_the_same_shap_values(full):
    """Blockwise shares, the whole torch function and predict_proba compute one game: the same values."""
    model, frame, _ = full
    bg = background_sample(frame, 8, seed=6)
    apps = frame.iloc[500:505]
    fast = batched_shap(model, apps, bg, n_coalitions=128, seed=1)
    for other in (TorchOnly(model), PredictOnly(model)):
        got = batched_shap(other, apps, bg, n_coalitions=128, seed=1)
        np.testing.assert_allclose(got.values, fast.values, atol=1e-6)
        assert got.additivity_gap().max() < 1e-12  # the generic path stays in float64
    np.testing.assert_allclose(
        grouped_shap(PredictOnly(model), apps, bg).values, grouped_shap(model, apps, bg).values, atol=1e-6
    )
    np.testing.assert_allclose(
        kernel_explainer_shap(PredictOnly(model), apps.iloc[:1], bg, nsamples=64).values,
        kernel_explainer_shap(model, apps.iloc[:1], bg, nsamples=64).values,
        atol=1e-6,
    )


def test_kernel_design_enumerates_small_and_large_sizes_and_pairs_the_rest():
    m, budget = 21, 600
    d = kernel_design(m, budget, seed=3)
    sizes = d.masks.sum(1)
    assert len(d) == budget and np.isclose(d.weights.sum(), 1.0)
    assert d.exact_sizes == (1, 20)
    for s in d.exact_sizes:
        assert (sizes == s).sum() == comb(m, s)
    keys = {r.tobytes() for r in d.masks}
    assert len(keys) == budget  # no duplicates
    assert all((~r).tobytes() in keys for r in d.masks)  # paired: every complement is there
    # each size keeps exactly its Shapley-kernel share of the weight
    want = size_weights(m)
    got = np.array([d.weights[sizes == s].sum() for s in range(1, m)])
    np.testing.assert_allclose(got, want, rtol=1e-9)
    with pytest.raises(ValueError, match=MSG_BUDGET.split("{")[0]):
        kernel_design(m, 10)


def _brute_force_shapley(model, x_row: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Shapley values by averaging marginal contributions over every permutation (independent code)."""
    m = len(x_row)
    cache: dict[frozenset, float] = {}

    def value(s: frozenset) -> float:
        if s not in cache:
            hybrid = bg.copy()
            hybrid[:, list(s)] = x_row[list(s)]
            cache[s] = float(_function_on_rows(model, hybrid).mean())
        return cache[s]

    phi = np.zeros(m)
    perms = list(itertools.permutations(range(m)))
    for order in perms:
        s: frozenset = frozenset()
        for j in order:
            phi[j] += value(s | {j}) - value(s)
            s = s | {j}
    return phi / len(perms)


def test_exact_and_batched_equal_brute_force_when_every_coalition_is_evaluated(six):
    model, frame, _ = six
    bg = background_sample(frame, 12, seed=0)
    apps = frame.iloc[200:203]
    want = np.array(
        [
            _brute_force_shapley(model, r, bg[list(SIX)].to_numpy(np.float32))
            for r in apps[list(SIX)].to_numpy(np.float32)
        ]
    )
    exact = exact_shap(model, apps, bg)
    np.testing.assert_allclose(exact.values, want, atol=1e-6)
    batched = batched_shap(model, apps, bg, n_coalitions=2**6, seed=5)  # budget covers all 62 proper coalitions
    np.testing.assert_allclose(batched.values, want, atol=1e-6)
    assert exact.additivity_gap().max() < 1e-9 and batched.additivity_gap().max() < 1e-9


@pytest.mark.filterwarnings("ignore")
def test_kernel_explainer_reference_agrees_with_exact_enumeration(six):
    model, frame, _ = six
    bg = background_sample(frame, 12, seed=1)
    apps = frame.iloc[300:303]
    ref = kernel_explainer_shap(model, apps, bg, nsamples=2**6)  # the library enumerates all 62 coalitions
    exact = exact_shap(model, apps, bg)
    np.testing.assert_allclose(ref.values, exact.values, atol=1e-5)
    assert abs(ref.base - exact.base) < 1e-6


@pytest.mark.slow
def test_batched_shap_is_additive_and_close_to_the_library_on_all_inputs(full):
    model, frame, _ = full
    bg = background_sample(frame, 20, seed=2)
    apps = frame.iloc[400:404]
    got = batched_shap(model, apps, bg, n_coalitions=512, seed=0)
    assert got.additivity_gap().max() < 1e-5
    np.testing.assert_allclose(got.output, model.predict_proba(apps)[:, 1], atol=1e-6)
    ref = kernel_explainer_shap(model, apps, bg, nsamples=6000, seed=0)
    assert got.relative_error(ref).mean() < 0.05
    assert abs(got.base - ref.base) < 1e-6


def test_grouped_values_are_exact_shapley_values_of_the_groups(six):
    model, frame, _ = six
    bg = background_sample(frame, 10, seed=3)
    apps = frame.iloc[:2]
    groups = model_groups(model.features)
    got = grouped_shap(model, apps, bg)
    assert got.features == tuple(groups)
    assert got.additivity_gap().max() < 1e-9
    # brute force over group permutations, with groups as players
    names = list(groups)
    f = list(model.features)
    b = bg[f].to_numpy(np.float32)
    for i, row in enumerate(apps[f].to_numpy(np.float32)):
        phi = np.zeros(len(names))
        perms = list(itertools.permutations(range(len(names))))
        for order in perms:
            taken: list[int] = []
            prev = float(_function_on_rows(model, b).mean())
            for g in order:
                taken += [f.index(c) for c in groups[names[g]]]
                h = b.copy()
                h[:, taken] = row[taken]
                cur = float(_function_on_rows(model, h).mean())
                phi[g] += cur - prev
                prev = cur
        np.testing.assert_allclose(got.values[i], phi / len(perms), atol=1e-6)
    singles = exact_shap(model, apps, bg, groups={c: [c] for c in f})
    np.testing.assert_allclose(singles.values, exact_shap(model, apps, bg).values, atol=1e-12)


def test_tree_shap_of_the_surrogate_adds_up_to_its_probability(full):
    model, frame, _ = full
    sur = Surrogate(max_depth=3, min_samples_leaf=10).fit(frame, model.predict(frame))
    bg = background_sample(frame, 30, seed=4)
    got = tree_shap(sur, frame.iloc[:40], bg)
    assert got.additivity_gap().max() < 1e-6
    assert got.features == sur.features


def test_explain_portfolio_rejects_an_unknown_backend(full):
    model, frame, _ = full
    with pytest.raises(ValueError, match="backend must be one of"):
        explain_portfolio(model, None, frame.iloc[:3], np.zeros(3, bool), frame.iloc[:5], backend="fast")
    assert "backend must be one of" in MSG_BACKEND


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_batched_error_against_a_high_precision_kernel_explainer_on_the_real_model(fitted_model, split):
    bg = background_sample(split.X_train, 40, seed=0)
    rng = np.random.default_rng(0)
    apps = split.X_test.iloc[rng.choice(len(split.X_test), 3, replace=False)]
    ref = kernel_explainer_shap(fitted_model, apps, bg, nsamples=30_000, seed=0)
    got = batched_shap(fitted_model, apps, bg, n_coalitions=512, seed=0)
    assert got.additivity_gap().max() < 1e-5
    assert got.relative_error(ref).mean() < 0.03


def test_synthetic_frame_is_valid_for_the_schema():
    frame, labels = synthetic_frame(50)
    assert set(np.unique(labels)) <= {0, 1}
    assert frame.shape[1] == 23
