"""The step every gradient method shares: d(scalar of the model's output)/d(raw inputs), in chunks.

Gradients are taken with respect to the raw inputs through the model's own
preprocessing (`Differentiable.torch_function`), so they are in each
feature's own unit (NT$, months late, years); global importances multiply by
the feature's standard deviation in the explained frame to make features
comparable. Step functions inside the model (the repayment-status and
education indicators of `CreditModel`) are invisible to gradients: a
gradient method sees only the smooth part of those features, which is why
the audit reports gradients next to SHAP and LIME, not instead of them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._function import ModelFunction

CHUNK = 8192  # rows differentiated at once: bounds the autograd graph's memory


def input_gradient(fn: ModelFunction, x: torch.Tensor, scalar: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """d sum(scalar(fn(x))) / dx, (n, F): row i's gradient of its own scalar (rows do not interact)."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(scalar(fn(x)).sum(), x)
    return grad
