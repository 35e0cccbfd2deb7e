"""Loss gradients: dLoss/dx per applicant, Loss = binary cross-entropy of P(default) against the observed label.

Where saliency asks how the score moves, this asks how the model's error on
the applicant moves; it needs the labels, so the portfolio computes it only
when they are known. Needs a `Differentiable` model.
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

NAME = "gradient"
MSG_LABELS = "gradient importance needs one label per applicant: got {labels} labels for {rows} rows"
LIMITATION = (
    "Loss gradients in raw units, scaled by each feature's standard deviation; blind to the code"
    " indicators of repayment status and education (step functions)."
)
_CLAMP = 1e-7  # keeps the cross-entropy finite where the model is certain


def loss_gradients(model, frame: pd.DataFrame, labels, device: torch.device | str = "cpu") -> Attributions:
    """dLoss/dx (n, F) per applicant; `output` is P(default), there is no base (NaN)."""
    y_all = np.asarray(labels, dtype=np.float32)
    if len(y_all) != len(frame):
        raise ValueError(MSG_LABELS.format(labels=len(y_all), rows=len(frame)))
    fn = differentiable_function(model, device, "loss gradients")
    x_all = fn.tensor(frame)
    y_all = torch.as_tensor(y_all, device=fn.device)
    parts = []
    for x, y in zip(x_all.split(CHUNK), y_all.split(CHUNK), strict=True):

        def loss(p: torch.Tensor, y: torch.Tensor = y) -> torch.Tensor:
            return torch.nn.functional.binary_cross_entropy(p.clamp(_CLAMP, 1 - _CLAMP), y, reduction="none")

        parts.append(input_gradient(fn, x, loss))
    return Attributions(
        values=torch.cat(parts).cpu().numpy().astype(np.float64),
        base=float("nan"),
        output=fn.predict(x_all).cpu().numpy(),
        features=fn.features,
        method="gradient of the binary cross-entropy against the observed label, raw units",
    )


def _run(inputs: PortfolioInputs) -> MethodResult | None:
    if inputs.labels is None:
        return None
    result = loss_gradients(inputs.model, inputs.frame, inputs.labels, inputs.device)
    return MethodResult(
        attributions=result,
        importance={NAME: scaled_by_std(mean_abs(result.values, inputs.features, NAME), inputs.frame)},
    )


METHOD = Method(name=NAME, run=_run, limitation=LIMITATION, needs=Differentiable, importance_merges={NAME: STD_SCALED})
