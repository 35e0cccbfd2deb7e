"""Saliency: |dP(default)/dx| per applicant and raw feature, as captum's Saliency(abs=True).

The local slope of the model at the applicant, in each feature's own unit;
blind to the model's step functions like every gradient method
(`_autograd`). Needs a `Differentiable` model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..audited_model import Differentiable
from ._autograd import CHUNK, input_gradient
from ._function import differentiable_function
from ._importance import mean_abs, scaled_by_std
from ._method import STD_SCALED, Method, MethodResult, PortfolioInputs
from ._values import Attributions

NAME = "saliency"
LIMITATION = "Local slope only; blind to code indicators like all gradient methods."


def saliency(model, frame: pd.DataFrame, device: torch.device | str = "cpu") -> Attributions:
    """|dP(default)/dx| (n, F) of each applicant; `output` is P(default), there is no base (NaN)."""
    fn = differentiable_function(model, device, NAME)
    x_all = fn.tensor(frame)
    values = torch.cat([input_gradient(fn, x, lambda p: p).abs() for x in x_all.split(CHUNK)])
    return Attributions(
        values=values.cpu().numpy().astype(np.float64),
        base=float("nan"),
        output=fn.predict(x_all).cpu().numpy(),
        features=fn.features,
        method="saliency |dP(default)/dx| in raw units",
    )


def _run(inputs: PortfolioInputs) -> MethodResult:
    result = saliency(inputs.model, inputs.frame, inputs.device)
    return MethodResult(
        attributions=result,
        importance={NAME: scaled_by_std(mean_abs(result.values, inputs.features, NAME), inputs.frame)},
    )


METHOD = Method(name=NAME, run=_run, limitation=LIMITATION, needs=Differentiable, importance_merges={NAME: STD_SCALED})
