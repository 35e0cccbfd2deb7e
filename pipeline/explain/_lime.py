"""LIME weights for many applicants at once: lime's tabular algorithm, batched in torch.

LIME explains one prediction by sampling a neighbourhood, asking the model
about it and fitting a kernel-weighted linear model. lime's
`LimeTabularExplainer` does this one applicant at a time in numpy, which for
thousands of declined applicants is minutes to hours. `lime_explain` runs the
same algorithm for a whole batch on the device:

* statistics from the training data, as lime's `QuartileDiscretizer` computes
  them: quartile edges per continuous feature, per-bin mean, std, min, max;
  per-feature frequencies of codes (categorical) and of bins (continuous);
* per sample and feature, a bin (or code) drawn with those frequencies and,
  for a continuous feature, a value from the bin's normal truncated to the
  bin's range, tabulated once (see `_lime_sampling`) so a draw is a lookup;
* the interpretable representation: 1 where the sample's bin/code equals the
  applicant's, distance = Euclidean distance to the all-ones row, kernel
  sqrt(exp(-d^2 / w^2)) with w = 0.75 * sqrt(number of features);
* a weighted ridge regression (alpha = 1, intercept) of P(default) on the
  binary representation, solved for the whole batch with one linear solve.
  With num_features = all features, lime's 'auto' feature selection keeps
  every feature, so its weights are exactly this ridge's coefficients.

Categorical features are the schema's categorical kinds (`Feature.is_categorical`:
EDUCATION and the repayment statuses PAY_x): their codes are sampled from the
training frequencies and never discretised, since a status of -0.4 (between
"paid in full" and "revolving") means nothing to the model or to a reader.
`lime_reference` passes the same choice to the lime library.

Each applicant draws from its own generator seeded by (seed, frame index
label), so its explanation does not depend on which other applicants share
its batch; the same seed gives the same weights on the same kind of device.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import torch

from .. import schema as S
from ..columns import explanation_column
from ._function import ModelFunction, model_function
from ._importance import mean_abs
from ._lime_encoded import AGREEMENT_TOLERANCE, EncodedScorer
from ._lime_sampling import QUANTILE_CELLS, LimeSampler
from ._method import OVER_DECLINED, Method, MethodResult, PortfolioInputs
from ._values import Attributions

MSG_MISSING_COLUMNS = "{what} lacks model input column(s) {missing}"
MSG_EMPTY_TRAINING = "training_frame has no rows; LIME needs training data for its sampling statistics"
MSG_NUM_SAMPLES = "num_samples must be at least 2 (the applicant and one perturbed sample), got {num_samples}"
MSG_KEYS = (
    "LIME keys each applicant's random stream by the frame's index, which must hold"
    " non-negative integers (row positions or applicant ids), got {index}..."
)

_ELEMENTS_PER_CHUNK = {"cpu": 1_000_000, "cuda": 120_000_000}
NAME = "lime"
TIMING = "lime_counterfactual"  # the summary's timing key, shared with the counterfactual search
LIMITATION = (
    "A local linear fit on quartile-binned perturbations: depends on the sampling seed and bins,"
    " computed for declined applicants only."
)


def categorical_indices(features: tuple[str, ...] | list[str]) -> list[int]:
    """Positions of the features LIME samples as codes rather than quartile bins."""
    return [i for i, name in enumerate(features) if S.BY_NAME[name].is_categorical]


def kernel_width(n_features: int) -> float:
    """lime's default kernel width."""
    return math.sqrt(n_features) * 0.75


def _binary(cells: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """lime's interpretable representation (m, S, F), bool: 1 where the drawn code/bin is the applicant's.

    `cells` (m, S, F) are the drawn cell numbers, [low, high) (m, F) each
    applicant's own cell range; sample 0 is the applicant itself, all ones.
    """
    binary = (cells >= low[:, None, :]) & (cells < high[:, None, :])
    binary[:, 0, :] = True
    return binary


def _raw(table: torch.Tensor, x: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Raw feature values (m, S, F) of the drawn cells of `table` (F, T); sample 0 is the applicant's row x."""
    m, n_samples, n_features = cells.shape
    offsets = torch.arange(n_features, device=cells.device) * table.shape[1]
    raw = table.view(-1).index_select(0, (cells + offsets).view(-1)).view(m, n_samples, n_features)
    raw[:, 0, :] = x
    return raw


def _cells(seed: int, keys: np.ndarray, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(m, *shape) uniform cell numbers, each applicant from its own generator seeded by (seed, key).

    One generator per applicant makes its draws independent of the batch it is
    in; the same seed gives the same draws on the same kind of device.
    """
    out = torch.empty((len(keys), *shape), dtype=torch.int64, device=device)
    for i, key in enumerate(keys):
        state = np.random.SeedSequence([seed, int(key)]).generate_state(2, np.uint32)
        gen = torch.Generator(device=device).manual_seed(int(state[0]) << 31 ^ int(state[1]))
        out[i] = torch.randint(QUANTILE_CELLS, shape, generator=gen, device=device)
    return out


def _weighted_ridge(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Coefficients of sklearn's Ridge(alpha, fit_intercept=True).fit(z, y, sample_weight=w), batched.

    Centring on the weighted means (what sklearn does for the intercept) is
    applied to the weighted moments rather than to the data, so the samples
    are read once: one batched product of [z, 1, y] with its weighted self.
    z: (m, S, F) bool or float, y and w: (m, S).
    """
    m, n_samples, n_features = z.shape
    aug = torch.empty((m, n_samples, n_features + 2), dtype=torch.float64, device=z.device)
    aug[:, :, :n_features] = z
    aug[:, :, n_features] = 1.0
    aug[:, :, n_features + 1] = y
    moments = (aug * w[..., None]).transpose(1, 2) @ aug  # (m, F+2, F+2)
    zz, z1, zy = moments[:, :n_features, :n_features], moments[:, :n_features, n_features], moments[:, :n_features, -1]
    total, y1 = moments[:, n_features, n_features], moments[:, n_features, -1]
    gram = zz - z1[:, :, None] * z1[:, None, :] / total[:, None, None]
    gram = gram + alpha * torch.eye(n_features, dtype=torch.float64, device=z.device)
    rhs = zy - z1 * (y1 / total)[:, None]
    return torch.linalg.solve(gram, rhs)


def _scorer_agrees(
    scorer: EncodedScorer, fn: ModelFunction, table: torch.Tensor, x: torch.Tensor, cells: torch.Tensor
) -> bool:
    """The pre-encoded shortcut gives the model's own probabilities on the first applicant's samples."""
    full = fn(_raw(table, x[:1], cells[:1]).view(-1, x.shape[1]))
    return bool((scorer(cells[:1], x[:1]).view(-1) - full).abs().max() <= AGREEMENT_TOLERANCE)


def _matrix(frame: pd.DataFrame, features: list[str], what: str) -> np.ndarray:
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(MSG_MISSING_COLUMNS.format(what=what, missing=missing))
    return frame[features].to_numpy(np.float64)


def _keys(frame: pd.DataFrame) -> np.ndarray:
    keys = np.array(frame.index)
    if not pd.api.types.is_integer_dtype(keys.dtype) or (keys < 0).any():
        raise ValueError(MSG_KEYS.format(index=frame.index[:5].tolist()))
    return keys.astype(np.int64)


def _chunk_size(device: torch.device, num_samples: int, n_features: int) -> int:
    budget = _ELEMENTS_PER_CHUNK["cuda" if device.type == "cuda" else "cpu"]
    return max(1, budget // (num_samples * n_features))


@torch.no_grad()
def lime_explain(
    model,
    frame: pd.DataFrame,
    training_frame: pd.DataFrame,
    device: torch.device | str,
    seed: int,
    num_samples: int = 5000,
) -> Attributions:
    """LIME weight of each model input for each applicant of `frame`: values (n, len(model.features)).

    The weights explain P(default) (lime's label 1), in `model.features` order;
    `output` is the applicant's own P(default) and there is no base (NaN):
    LIME's intercept is per applicant. Applicant i's random stream is keyed
    by (seed, frame.index[i]), so pass frames whose index identifies the
    applicant (row position or id).
    """
    if num_samples < 2:
        raise ValueError(MSG_NUM_SAMPLES.format(num_samples=num_samples))
    fn = model_function(model, device)
    device, features = fn.device, list(fn.features)
    x_all = _matrix(frame, features, "frame")
    train = _matrix(training_frame, features, "training_frame")
    if len(train) == 0:
        raise ValueError(MSG_EMPTY_TRAINING)
    keys = _keys(frame)
    sampler = LimeSampler.fit(train, set(categorical_indices(features)))
    table = torch.as_tensor(sampler.table, dtype=fn.dtype, device=device)
    low_all, high_all = sampler.own_cells(x_all)
    scorer = None if fn.parts is None else EncodedScorer.build(fn.parts, table)
    width = kernel_width(len(features))
    out = np.empty((len(x_all), len(features)), dtype=np.float64)
    output = np.empty(len(x_all), dtype=np.float64)
    step = _chunk_size(device, num_samples, len(features))
    for start in range(0, len(x_all), step):
        part = slice(start, start + step)
        x = torch.as_tensor(x_all[part], dtype=fn.dtype, device=device)
        low, high = (torch.as_tensor(a[part], device=device) for a in (low_all, high_all))
        cells = _cells(seed, keys[part], (num_samples, len(features)), device)
        if scorer is not None and start == 0 and not _scorer_agrees(scorer, fn, table, x, cells):
            scorer = None
        if scorer is not None:
            p = scorer(cells, x)
        else:
            p = fn(_raw(table, x, cells).view(-1, len(features))).view(len(x), num_samples)
        binary = _binary(cells, low, high)
        distance_sq = len(features) - binary.sum(-1, dtype=torch.float64)
        weights = torch.sqrt(torch.exp(-distance_sq / width**2))
        p = p.to(torch.float64)
        out[part] = _weighted_ridge(binary, p, weights).cpu().numpy()
        output[part] = p[:, 0].cpu().numpy()  # sample 0 is the applicant itself
    return Attributions(
        values=out,
        base=float("nan"),
        output=output,
        features=tuple(features),
        method=f"batched LIME (pipeline.explain._lime), {num_samples} samples",
    )


def lime_reference(
    model,
    frame: pd.DataFrame,
    training_frame: pd.DataFrame,
    device: torch.device | str,
    seed: int,
    num_samples: int = 5000,
) -> Attributions:
    """The same weights from the lime library itself, one applicant at a time (the reference backend).

    One `LimeTabularExplainer(random_state=seed)` explains the rows in order,
    as lime is normally used; its results depend on the row order.
    """
    from importlib.metadata import version

    from lime.lime_tabular import LimeTabularExplainer

    fn = model_function(model, device)
    features = list(fn.features)
    x_all = _matrix(frame, features, "frame")
    train = _matrix(training_frame, features, "training_frame")
    if len(train) == 0:
        raise ValueError(MSG_EMPTY_TRAINING)

    @torch.no_grad()
    def predict(rows: np.ndarray) -> np.ndarray:
        p = fn(torch.as_tensor(rows, dtype=fn.dtype, device=fn.device)).to(torch.float64).cpu().numpy()
        return np.column_stack([1.0 - p, p])

    explainer = LimeTabularExplainer(
        train,
        mode="classification",
        feature_names=features,
        categorical_features=categorical_indices(features),
        discretize_continuous=True,
        discretizer="quartile",
        random_state=seed,
    )
    out = np.zeros((len(x_all), len(features)), dtype=np.float64)
    for i, row in enumerate(x_all):
        with warnings.catch_warnings():
            # float32 probabilities may miss lime's sum-to-one check by rounding only
            warnings.filterwarnings("ignore", message=".*do not sum to 1.*")
            explanation = explainer.explain_instance(
                row, predict, labels=(1,), num_features=len(features), num_samples=num_samples
            )
        for j, weight in explanation.local_exp[1]:
            out[i, j] = weight
    return Attributions(
        values=out,
        base=float("nan"),
        output=predict(x_all)[:, 1],
        features=tuple(features),
        method=f"lime {version('lime')} LimeTabularExplainer, {num_samples} samples, seed {seed}",
    )


def top_k_agreement(a: np.ndarray, b: np.ndarray, k: int = 5) -> np.ndarray:
    """Per row, the share of the k features with the largest |weight| that two explanations have in common."""
    top_a = np.argsort(-np.abs(a), axis=1)[:, :k]
    top_b = np.argsort(-np.abs(b), axis=1)[:, :k]
    return np.array([len(set(r) & set(s)) / k for r, s in zip(top_a, top_b, strict=True)])


def _run(inputs: PortfolioInputs) -> MethodResult:
    """LIME for the declined rows; NaN rows elsewhere."""
    rows, features = inputs.declined, inputs.features
    values = np.full((inputs.rows, len(features)), np.nan)
    output = np.full(inputs.rows, np.nan)
    if len(rows):
        result = lime_explain(
            inputs.model,
            inputs.frame.iloc[rows],
            inputs.training_frame,
            inputs.device,
            inputs.seed,
            num_samples=inputs.lime_samples,
        )
        values[rows], output[rows] = result.values, result.output
    description = f"batched LIME (pipeline.explain._lime), {inputs.lime_samples} samples, declined applicants only"
    return MethodResult(
        attributions=Attributions(values, float("nan"), output, features, description),
        columns={explanation_column(NAME, f): values[:, j] for j, f in enumerate(features)},
        importance={NAME: mean_abs(values, features, NAME)} if len(rows) else {},
        description=description,
    )


METHOD = Method(name=NAME, run=_run, limitation=LIMITATION, timing=TIMING, importance_merges={NAME: OVER_DECLINED})
