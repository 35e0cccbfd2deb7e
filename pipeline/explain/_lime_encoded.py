"""Scoring LIME's samples without re-encoding each one (the `Blockwise` fast path).

LIME asks the model about thousands of perturbed rows per applicant, and
every sampled value comes from a fixed per-feature table (`LimeSampler`).
A `Blockwise` model encodes each feature on its own (`BlockwiseParts`), so
the encoded value of every table cell can be computed once, and a sample's
encoded row becomes a lookup; only the first layer and the head run per
sample. On the CPU the encoder is the larger half of the network's cost.

The parts are the model's own description of itself, so `lime_explain`
still compares the shortcut with the model's full function on a block of
real samples before using it, and scores samples with the full function
if they disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..audited_model import BlockwiseParts

AGREEMENT_TOLERANCE = 1e-5


@dataclass(frozen=True)
class EncodedScorer:
    """P(default) of table-drawn samples from their cell numbers, via pre-encoded table cells."""

    parts: BlockwiseParts
    encoded: torch.Tensor  # (W, T): encoded value of each table cell, per encoded column
    owner: torch.Tensor  # (W,): the feature each encoded column belongs to

    @classmethod
    def build(cls, parts: BlockwiseParts, table: torch.Tensor) -> EncodedScorer:
        """Encode every cell of `table` (F, T) once; each encoded column reads its own feature's cell."""
        encoded = torch.cat(list(parts.encode_blocks(table.t().contiguous())), dim=1).t().contiguous()
        widths = torch.as_tensor(parts.block_widths, device=table.device)
        owner = torch.repeat_interleave(torch.arange(len(parts.block_widths), device=table.device), widths)
        return cls(parts, encoded, owner)

    def __call__(self, cells: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(m, S) probabilities for cells (m, S, F); sample 0 of each applicant is its own row x (m, F)."""
        m, n_samples, _ = cells.shape
        width, n_cells = self.encoded.shape
        offsets = torch.arange(width, device=cells.device) * n_cells
        index = cells[:, :, self.owner] + offsets
        z = self.encoded.view(-1).index_select(0, index.view(-1)).view(m, n_samples, width)
        z[:, 0, :] = torch.cat(list(self.parts.encode_blocks(x)), dim=1)
        pre = torch.nn.functional.linear(z.view(-1, width), self.parts.weight, self.parts.bias)
        return self.parts.head(pre).view(m, n_samples)
