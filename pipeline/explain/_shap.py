"""SHAP values of P(default): the method's one entry point over its two backends, and its portfolio part.

`shap_values` computes interventional Shapley values of the audited model's
P(default) against a background sample, with the `batched` engine
(`_shap_batched`: Kernel SHAP in batched torch, any audited model, fast for
`Blockwise` ones) or the shap library's KernelExplainer (`_shap_reference`,
the reference). Its own check is efficiency: base + sum of values = P(default)
for every applicant (`Attributions.additivity_gap`), reported in the summary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..columns import SHAP_BASE, explanation_column
from ._importance import mean_abs
from ._method import OVER_APPLICANTS, Method, MethodResult, PortfolioInputs
from ._shap_batched import DEFAULT_COALITIONS, batched_shap
from ._shap_reference import kernel_explainer_shap
from ._values import Attributions

NAME = "shap"
BACKENDS = ("batched", "shap")
MSG_BACKEND = "backend must be one of {choices}, got {backend!r}"
LIMITATION = (
    "Interventional SHAP against a random background sample: features are switched independently of each"
    " other, so hybrid applicants can be unlike any real one; values depend on the background."
)


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(MSG_BACKEND.format(choices=BACKENDS, backend=backend))
    return backend


def shap_values(
    model,
    frame: pd.DataFrame,
    background: pd.DataFrame,
    backend: str = "batched",
    device: torch.device | str = "cpu",
    seed: int = 0,
    n_coalitions: int = DEFAULT_COALITIONS,
) -> Attributions:
    """Interventional SHAP values (n, F) of P(default) for every row of `frame`; base + sum == P(default)."""
    if check_backend(backend) == "batched":
        return batched_shap(model, frame, background, device, n_coalitions, seed)
    return kernel_explainer_shap(model, frame, background, seed=seed, device=device)


def max_additivity_gap(result: Attributions) -> float:
    """The efficiency check over all applicants: max |base + sum of values - P(default)| (0 for none)."""
    return float(result.additivity_gap().max()) if len(result.values) else 0.0


def _run(inputs: PortfolioInputs) -> MethodResult:
    result = shap_values(
        inputs.model, inputs.frame, inputs.background, inputs.backend, inputs.device, inputs.seed, inputs.n_coalitions
    )
    columns = {explanation_column(NAME, f): result.values[:, j] for j, f in enumerate(inputs.features)}
    columns[SHAP_BASE] = np.full(inputs.rows, result.base)
    return MethodResult(
        attributions=result,
        columns=columns,
        importance={NAME: mean_abs(result.values, inputs.features, NAME)},
        description=result.method,
        details={
            NAME: {
                "base": result.base,
                "background_rows": len(inputs.background),
                "n_coalitions": inputs.n_coalitions if inputs.backend == "batched" else None,
                "max_additivity_gap": max_additivity_gap(result),
            }
        },
    )


def _merge(summaries: list[dict]) -> dict:
    """The portfolio's additivity gap is the largest of its chunks'."""
    return {NAME: {**summaries[0][NAME], "max_additivity_gap": max(s[NAME]["max_additivity_gap"] for s in summaries)}}


METHOD = Method(
    name=NAME, run=_run, limitation=LIMITATION, importance_merges={NAME: OVER_APPLICANTS}, merge_details=_merge
)
