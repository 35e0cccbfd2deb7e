"""Scoring LIME's samples without re-encoding each one.

LIME asks the model about thousands of perturbed rows per applicant, and
every sampled value comes from a fixed per-feature table (`LimeSampler`).
The model's preprocessing (`DefaultRiskNet.encoder`) is per feature, so the
encoded value of every table cell can be computed once, and a sample's
encoded row becomes a lookup; only the dense layers run per sample. On the
CPU the encoder is the larger half of the network's cost.

That relies on the network's layout (`encoder`, `mlp`, `calib`), which the
explainer does not own. So `EncodedScorer.build` checks the encoder really
is per feature, and `lime_explain` compares the shortcut with the full
network on a block of real samples before using it; anything unexpected and
it scores samples with `net(raw)` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_PROBES_PER_FEATURE = 16
AGREEMENT_TOLERANCE = 1e-5


@dataclass(frozen=True)
class EncodedScorer:
    """P(default) of table-drawn samples from their cell numbers, via pre-encoded table cells."""

    net: torch.nn.Module
    encoded: torch.Tensor  # (W, T): encoded value of each table cell, per encoded column
    owner: torch.Tensor  # (W,): the feature each encoded column depends on (0 for constant columns)

    @classmethod
    def build(cls, net: torch.nn.Module, table: torch.Tensor) -> EncodedScorer | None:
        """None when the network does not have the encoder-then-dense layout this relies on."""
        if not all(hasattr(net, name) for name in ("encoder", "mlp", "calib")):
            return None
        owner = _owners(net.encoder, table)
        if owner is None:
            return None
        encoded = net.encoder(table.t().contiguous()).t().contiguous()
        return cls(net, encoded, owner)

    def __call__(self, cells: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(m, S) probabilities for cells (m, S, F); sample 0 of each applicant is its own row x (m, F)."""
        m, n_samples, _ = cells.shape
        width, n_cells = self.encoded.shape
        offsets = torch.arange(width, device=cells.device) * n_cells
        index = cells[:, :, self.owner] + offsets
        z = self.encoded.view(-1).index_select(0, index.view(-1)).view(m, n_samples, width)
        z[:, 0, :] = self.net.encoder(x)
        logit = self.net.mlp(z.view(-1, width)).view(m, n_samples)
        return torch.sigmoid(self.net.calib[0] * logit + self.net.calib[1])


def _owners(encoder: torch.nn.Module, table: torch.Tensor) -> torch.Tensor | None:
    """Which single feature each encoded column depends on, probing with table values; None if not separable.

    Each feature in turn takes every distinct value it has in the table (or
    evenly spaced ones when there are many) while the others stay fixed; the
    encoded columns that move belong to it. Columns no feature moves are
    constant and may read any cell.
    """
    n_features, n_cells = table.shape
    base = table[:, :1].t()
    reference = encoder(base)
    spaced = torch.linspace(0, n_cells - 1, _PROBES_PER_FEATURE, device=table.device).long()
    depends = []
    for j in range(n_features):
        values = torch.unique(table[j])
        if len(values) > 4 * _PROBES_PER_FEATURE:
            values = table[j, spaced]
        probes = base.repeat(len(values), 1)
        probes[:, j] = values
        depends.append((encoder(probes) != reference).any(0))
    depends = torch.stack(depends)
    if (depends.sum(0) > 1).any():
        return None
    return depends.to(torch.int64).argmax(0)
