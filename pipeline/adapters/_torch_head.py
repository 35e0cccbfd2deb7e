"""A TorchScript module's output read as P(adverse) (n,), as `Differentiable.torch_function` promises."""

from __future__ import annotations

import torch


class AdverseOutput(torch.nn.Module):
    """Wraps a module returning (n,), (n, 1) or (n, 2); keeps the adverse column, gradients intact."""

    def __init__(self, module: torch.nn.Module, adverse_column: int | None) -> None:
        super().__init__()
        self.module = module
        self.adverse_column = adverse_column

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        if out.dim() == 2 and out.shape[1] == 2:
            if self.adverse_column is None:  # predict_proba names the card key; this only refuses to guess
                raise ValueError("the module returns 2 columns and the card sets no [output] adverse_column")
            return out[:, self.adverse_column]
        return out.reshape(-1)
