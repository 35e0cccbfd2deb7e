"""Integrated Gradients of P(default) from a baseline row to each applicant (captum's riemann_middle).

Completeness is the method's own check (`completeness_gap`): the
attributions of an applicant should sum to f(x) - f(baseline); the result
carries f(baseline) as `base` and f(x) as `output`. It holds only
approximately where the model has step functions along the straight path
(`CreditModel`'s code indicators). Needs a `Differentiable` model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..audited_model import Differentiable
from ._autograd import CHUNK, input_gradient
from ._function import differentiable_function
from ._importance import mean_abs
from ._method import OVER_APPLICANTS, Method, MethodResult, PortfolioInputs
from ._values import Attributions

NAME = "integrated_gradients"
STEPS = 32
LIMITATION = "Straight path from the background mean; completeness fails where code indicators jump."


def integrated_gradients(
    model, frame: pd.DataFrame, baseline: np.ndarray, device: torch.device | str = "cpu", steps: int = STEPS
) -> Attributions:
    """Integrated Gradients (n, F) of each applicant from `baseline` (F,), Riemann midpoint rule with `steps` points."""
    fn = differentiable_function(model, device, NAME)
    x_all = fn.tensor(frame)
    base = torch.as_tensor(np.asarray(baseline, dtype=np.float32), device=fn.device)
    alphas = (torch.arange(steps, device=fn.device, dtype=torch.float32) + 0.5) / steps
    parts = []
    for x in x_all.split(max(1, CHUNK // steps)):
        delta = x - base
        path = base + alphas[None, :, None] * delta[:, None, :]  # (a, steps, F)
        grad = input_gradient(fn, path.reshape(-1, x.shape[1]), lambda p: p).reshape(path.shape)
        parts.append(grad.mean(1) * delta)
    return Attributions(
        values=torch.cat(parts).cpu().numpy().astype(np.float64),
        base=float(fn.predict(base[None]).cpu()[0]),
        output=fn.predict(x_all).cpu().numpy(),
        features=fn.features,
        method=f"{steps}-step midpoint rule",
    )


def completeness_gap(result: Attributions) -> np.ndarray:
    """|sum of attributions - (f(x) - f(baseline))| per applicant: 0 for exact Integrated Gradients."""
    return np.abs(result.values.sum(1) - (result.output - result.base))


def _run(inputs: PortfolioInputs) -> MethodResult:
    baseline = inputs.background[list(inputs.features)].to_numpy(np.float64).mean(0)
    result = integrated_gradients(inputs.model, inputs.frame, baseline, inputs.device, STEPS)
    gap = completeness_gap(result)
    return MethodResult(
        attributions=result,
        importance={NAME: mean_abs(result.values, inputs.features, NAME)},
        description=f"{STEPS}-step midpoint rule from the background mean",
        details={NAME: {"mean_completeness_gap": float(gap.mean()) if inputs.rows else 0.0}},
    )


def _merge(summaries: list[dict]) -> dict:
    """Mean completeness gap of the portfolio: the chunks' means weighted by their applicants."""
    gaps = [s[NAME]["mean_completeness_gap"] for s in summaries]
    weights = [s["applicants"] for s in summaries]
    return {NAME: {"mean_completeness_gap": float(np.average(gaps, weights=weights))}}


METHOD = Method(
    name=NAME,
    run=_run,
    limitation=LIMITATION,
    needs=Differentiable,
    importance_merges={NAME: OVER_APPLICANTS},
    merge_details=_merge,
)
