"""Gradient attributions of the MLP over raw features: loss gradients, saliency, Integrated Gradients.

Gradients are taken with respect to the raw inputs through the encoder, so
they are in each feature's own unit (NT$, months late, years); global
importances multiply by the feature's standard deviation in the explained
frame to make features comparable. The repayment-status and education
indicators are step functions of the raw code, invisible to gradients: a
gradient method sees only the smooth part of those features (months late),
which is why the audit reports it next to SHAP and LIME, not instead of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ._game import tensor_of
from ._shap_batched import net_on

MSG_LABELS = "gradient importance needs one label per applicant: got {labels} labels for {rows} rows"
_CHUNK = 8192


def _grad(net, x: torch.Tensor, scalar_fn) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(scalar_fn(net(x)).sum(), x)
    return grad


def loss_gradients(model, frame: pd.DataFrame, labels, device="cpu") -> np.ndarray:
    """dLoss/dx per applicant (n, F), Loss = binary cross-entropy of P(default) against the label."""
    y_all = np.asarray(labels, dtype=np.float32)
    if len(y_all) != len(frame):
        raise ValueError(MSG_LABELS.format(labels=len(y_all), rows=len(frame)))
    net = net_on(model, device)
    x_all = tensor_of(frame[list(model.features)].to_numpy(), device)
    y_all = torch.as_tensor(y_all, device=device)
    parts = []
    for x, y in zip(x_all.split(_CHUNK), y_all.split(_CHUNK), strict=True):
        loss = lambda p, y=y: torch.nn.functional.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), y, reduction="none")  # noqa: E731
        parts.append(_grad(net, x, loss))
    return torch.cat(parts).cpu().numpy().astype(np.float64)


def saliency(model, frame: pd.DataFrame, device="cpu") -> np.ndarray:
    """|dP(default)/dx| per applicant (n, F), as captum's Saliency(abs=True)."""
    net = net_on(model, device)
    x_all = tensor_of(frame[list(model.features)].to_numpy(), device)
    return torch.cat([_grad(net, x, lambda p: p).abs() for x in x_all.split(_CHUNK)]).cpu().numpy().astype(np.float64)


def integrated_gradients(model, frame: pd.DataFrame, baseline: np.ndarray, device="cpu", steps: int = 32) -> np.ndarray:
    """Integrated Gradients of P(default) from `baseline` (F,) to each applicant (n, F).

    Riemann midpoint rule with `steps` points (captum's method="riemann_middle").
    Completeness (sum = f(x) - f(baseline)) holds only approximately: the
    encoder's code indicators jump along the straight-line path.
    """
    net = net_on(model, device)
    x_all = tensor_of(frame[list(model.features)].to_numpy(), device)
    base = torch.as_tensor(np.asarray(baseline, dtype=np.float32), device=device)
    alphas = (torch.arange(steps, device=device, dtype=torch.float32) + 0.5) / steps
    parts = []
    for x in x_all.split(max(1, _CHUNK // steps)):
        delta = x - base
        path = base + alphas[None, :, None] * delta[:, None, :]  # (a, steps, F)
        grad = _grad(net, path.reshape(-1, x.shape[1]), lambda p: p).reshape(path.shape)
        parts.append(grad.mean(1) * delta)
    return torch.cat(parts).cpu().numpy().astype(np.float64)
