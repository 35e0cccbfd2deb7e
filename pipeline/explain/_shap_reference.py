"""The `shap` backend: the shap library's KernelExplainer, kept as the reference.

Same function (raw applicant -> P(default), whatever kind of audited model
computes it), same background, `l1_reg=False`
(no feature selection, so every feature gets a value). The bench and tests
compare the `batched` engine against it; run with a large `nsamples`
(>= 30,000) it is the high-precision reference.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import shap
import torch

from ._function import model_function
from ._values import Attributions

DEFAULT_NSAMPLES = "auto"
REFERENCE_NSAMPLES = 30_000


def kernel_explainer_shap(
    model,
    frame: pd.DataFrame,
    background: pd.DataFrame,
    nsamples: int | str = DEFAULT_NSAMPLES,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> Attributions:
    """Interventional SHAP values from shap.KernelExplainer (one applicant at a time, as the library does)."""
    fn = model_function(model, device)
    features = list(fn.features)

    def predict(rows: np.ndarray) -> np.ndarray:
        return fn.predict(torch.as_tensor(rows, dtype=fn.dtype, device=fn.device)).cpu().numpy()

    bg = background[features].to_numpy(np.float64)
    x = frame[features].to_numpy(np.float64)
    np.random.seed(seed)  # KernelExplainer samples coalitions with numpy's global generator
    with warnings.catch_warnings():
        # shap warns about background sizes over 100 and its own internals; neither changes the values.
        warnings.simplefilter("ignore")
        explainer = shap.KernelExplainer(predict, bg)
        values = np.asarray(explainer.shap_values(x, nsamples=nsamples, l1_reg=False, silent=True), dtype=np.float64)
    values = values.reshape(len(frame), len(features))
    return Attributions(
        values=values,
        base=float(np.asarray(explainer.expected_value).reshape(-1)[0]),
        output=predict(x),
        features=tuple(features),
        method=f"shap {shap.__version__} KernelExplainer, nsamples={nsamples}, l1_reg=False, {len(bg)} background rows",
    )
