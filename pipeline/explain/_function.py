"""The audited model as explainers call it: raw feature tensor in, P(default) out, on one device.

Explainers are written against `ModelFunction`, built once per call by
`model_function(model, device)` from whatever the model offers
(`pipeline.audited_model`):

- a `Differentiable` model contributes its torch function (float32 inputs,
  autograd works through it) and, if `Blockwise`, its parts for the
  share-wise fast paths;
- any other audited model is called through `predict_proba` on a frame of
  float64 raw values: slower, not differentiable, but the same function, so
  SHAP, LIME and counterfactuals still explain it.

Normalising the model here, on entry, keeps every algorithm a few lines over
one callable (as Captum's explainers wrap a `forward_func`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..audited_model import Blockwise, BlockwiseParts, Differentiable, capability, check_auditable, require

MSG_MISSING_COLUMNS = "{what} lacks model input column(s) {missing}"
PREDICT_CHUNK = 65536  # rows per call when scoring many rows: bounds the memory of one forward pass
_NUMPY_DTYPE = {torch.float32: np.float32, torch.float64: np.float64}


class _ProbabilityOfDefault:
    """predict_proba as a tensor function: rows (n, F) float64 -> column 1, on the rows' device."""

    def __init__(self, model, features: tuple[str, ...]) -> None:
        self.model = model
        self.features = list(features)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        frame = pd.DataFrame(x.detach().cpu().numpy().astype(np.float64), columns=self.features)
        p = np.asarray(self.model.predict_proba(frame), dtype=np.float64)[:, 1]
        return torch.as_tensor(p, device=x.device)


@dataclass(frozen=True)
class ModelFunction:
    """P(default) of raw feature rows (n, F) in `features` order, evaluated on `device`.

    `dtype` is the input dtype the function takes (float32 for a torch
    model, float64 through predict_proba). `parts` is set when the model is
    `Blockwise`; `differentiable` when gradients flow through `__call__`.
    """

    features: tuple[str, ...]
    device: torch.device
    dtype: torch.dtype
    forward: torch.nn.Module | _ProbabilityOfDefault
    parts: BlockwiseParts | None
    differentiable: bool

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def tensor(self, frame: pd.DataFrame, what: str = "frame") -> torch.Tensor:
        """The frame's model inputs as an (n, F) tensor of this function's dtype on its device."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(MSG_MISSING_COLUMNS.format(what=what, missing=missing))
        # a copy: a float frame's array can be pandas' read-only view, which torch must not share
        values = frame[list(self.features)].to_numpy(dtype=_NUMPY_DTYPE[self.dtype], copy=True)
        return torch.as_tensor(values, device=self.device)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, chunk: int = PREDICT_CHUNK) -> torch.Tensor:
        """P(default) (n,) float64 of many rows, scored `chunk` rows at a time."""
        return torch.cat([self.forward(part) for part in x.split(chunk)]).double()


def model_function(model, device: torch.device | str = "cpu") -> ModelFunction:
    """The explainers' view of `model` on `device` (see the module docstring)."""
    check_auditable(model)
    device = torch.device(device)
    features = tuple(model.features)
    torch_model = capability(model, Differentiable)
    if torch_model is None:
        return ModelFunction(features, device, torch.float64, _ProbabilityOfDefault(model, features), None, False)
    blockwise = capability(model, Blockwise)
    parts = None if blockwise is None else blockwise.blockwise(device)
    return ModelFunction(features, device, torch.float32, torch_model.torch_function(device), parts, True)


def differentiable_function(model, device: torch.device | str, what: str) -> ModelFunction:
    """`model_function` for gradient methods: MissingCapability unless the model is `Differentiable`."""
    require(model, Differentiable, what)
    return model_function(model, device)
