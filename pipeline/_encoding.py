"""Preprocessing as a torch module, so the model maps raw applicant values to a probability.

Explanations must be over raw features (LIMIT_BAL, PAY_0, ...), and the batched
explainers and gradient methods run the whole `raw -> probability` function on
the device. Keeping the encoding in torch makes that one differentiable module
instead of a pandas step in front of the network.
"""

from __future__ import annotations

import torch
from torch import nn

from . import schema as S
from .audited_model import BlockwiseParts

# Repayment status codes below 1 mean different things (no balance, paid in
# full, revolving), so each gets its own indicator; 1..9 are months late.
_STATUS_CODES = (-2.0, -1.0, 0.0)


def _signed_log(x: torch.Tensor) -> torch.Tensor:
    """Compress heavy-tailed NT$ amounts; keeps sign (bills can be negative)."""
    return torch.sign(x) * torch.log1p(torch.abs(x) / 1000.0)


class RawEncoder(nn.Module):
    """Raw features (schema order of `features`) -> standardised numeric block."""

    def __init__(self, features: list[str]) -> None:
        super().__init__()
        self.features = list(features)
        self.kinds = [S.BY_NAME[n].kind for n in self.features]
        self.codes = {
            i: sorted(S.BY_NAME[n].codes) for i, n in enumerate(self.features) if S.BY_NAME[n].kind == "category"
        }
        width = self._expand(torch.zeros(1, len(self.features))).shape[1]
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("scale", torch.ones(width))

    def _expand_feature(self, i: int, col: torch.Tensor) -> list[torch.Tensor]:
        kind = self.kinds[i]
        if kind == "amount":
            return [_signed_log(col)]
        if kind == "repayment_status":
            return [torch.clamp(col, min=0.0), *((col == c).to(col.dtype) for c in _STATUS_CODES)]
        if kind == "category":
            onehot = [(col == c).to(col.dtype) for c in self.codes[i]]
            return [*onehot, 1.0 - torch.stack(onehot).sum(0)]  # last: undocumented codes
        return [col]

    def _expand(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([p for i in range(len(self.kinds)) for p in self._expand_feature(i, x[:, i : i + 1])], dim=1)

    @property
    def block_widths(self) -> list[int]:
        """Encoded width of each raw feature, in `features` order (the blocks of `forward`)."""
        probe = torch.zeros(1, 1, device=self.mean.device)
        return [sum(p.shape[1] for p in self._expand_feature(i, probe)) for i in range(len(self.kinds))]

    def feature_blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """`forward(x)` split into one standardised block per raw feature.

        Why: the encoding is feature-separable (each block depends on one raw
        column only), so explainers can precompute each feature's share of the
        first layer once and recombine shares for any coalition of features.
        """
        return list(self.forward(x).split(self.block_widths, dim=1))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> RawEncoder:
        z = self._expand(x)
        self.mean.copy_(z.mean(0))
        self.scale.copy_(z.std(0).clamp_min(1e-6))
        return self

    @property
    def width(self) -> int:
        return int(self.mean.numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._expand(x) - self.mean) / self.scale


class _Head(nn.Module):
    """First-layer pre-activations -> P(default): the activation, the layers after it, the calibration."""

    def __init__(self, rest: nn.Module, calib: torch.Tensor) -> None:
        super().__init__()
        self.rest = rest
        self.calib = calib

    def forward(self, pre: torch.Tensor) -> torch.Tensor:
        """(..., H) -> (...); overwrites `pre` (the ReLU runs in place: callers pass scratch tensors)."""
        shape = pre.shape[:-1]
        z = self.rest(torch.relu_(pre.reshape(-1, pre.shape[-1]))).reshape(shape)
        return torch.sigmoid(self.calib[0] * z + self.calib[1])


class DefaultRiskNet(nn.Module):
    """Encoder + ReLU MLP + affine logit calibration -> probability of default."""

    def __init__(self, features: list[str], hidden: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        self.encoder = RawEncoder(features)
        layers: list[nn.Module] = []
        width = self.encoder.width
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        # Platt scaling of the logit, fitted after training on the validation split:
        # the class-weighted loss inflates raw scores, reports need real probabilities.
        self.register_buffer("calib", torch.tensor([1.0, 0.0]))

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.encoder(x)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.calib[0] * self.logit(x) + self.calib[1])

    def blockwise(self) -> BlockwiseParts:
        """This network as per-feature encoder blocks, first Linear layer and head (see `BlockwiseParts`).

        The layout is this class's own (`mlp` opens with Linear then ReLU), so
        explainers get it through this method instead of reading `mlp` and
        `encoder` themselves.
        """
        first = self.mlp[0]
        return BlockwiseParts(
            encode_blocks=self.encoder.feature_blocks,
            block_widths=tuple(self.encoder.block_widths),
            weight=first.weight.detach(),
            bias=first.bias.detach(),
            head=_Head(self.mlp[2:], self.calib),
        )
