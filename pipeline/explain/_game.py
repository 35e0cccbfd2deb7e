"""The coalition game behind interventional SHAP, evaluated in bulk on the device.

The value of a coalition S for applicant x is the mean, over the background
rows b, of P(default) on the hybrid row that takes features in S from x and
the others from b. Two evaluators, chosen by what the model offers
(`ModelFunction.parts`):

- `Blockwise` models (the fast path): the encoder is feature-separable, so
  the first layer's pre-activation of a hybrid row is a sum of per-feature
  shares:

      pre(x, b, S) = bias + sum_{j in S} A_j(x) + sum_{j not in S} B_j(b)

  A (per applicant) and B (per background row) are computed once; the
  background half (bias + sum over j not in S of B_j) does not depend on the
  applicant either, so it is computed once per coalition. What remains per
  (applicant, coalition, background row) is one add and the model's head,
  done as large batched matrix multiplies.
- any other model: the hybrid rows are built explicitly and scored by the
  model function in large blocks (no per-coalition Python loop), so a plain
  `predict_proba` model gets the same game, only slower.
"""

from __future__ import annotations

import numpy as np
import torch

from ..audited_model import BlockwiseParts
from ._function import ModelFunction

# Elements of the largest (rows x hidden) block evaluated at once: large enough to amortise per-call
# overhead and keep a GPU busy, small enough to stay near the CPU caches (measured on 2 cores).
DEFAULT_BLOCK_ELEMENTS = 1 << 20
_BLOCK_ELEMENTS = {"cpu": DEFAULT_BLOCK_ELEMENTS, "cuda": 1 << 26}


def block_elements_for(device: torch.device | str) -> int:
    """How many (rows x hidden) elements one step evaluates on this kind of device."""
    return _BLOCK_ELEMENTS.get(torch.device(device).type, DEFAULT_BLOCK_ELEMENTS)


class FirstLayerShares:
    """A `Blockwise` model's first layer, split into one share per feature."""

    def __init__(self, parts: BlockwiseParts) -> None:
        self.parts = parts
        self.weight = parts.weight  # (H, width)
        self.bias = parts.bias
        edges = np.cumsum([0, *parts.block_widths])
        self.slices = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]

    @property
    def hidden(self) -> int:
        return int(self.weight.shape[0])

    @torch.no_grad()
    def shares(self, x: torch.Tensor) -> torch.Tensor:
        """Per-feature first-layer shares A (n, F, H): A[:, j] = block_j(x) @ W1[:, block_j].T."""
        blocks = self.parts.encode_blocks(x)
        return torch.stack([blk @ self.weight[:, sl].T for blk, sl in zip(blocks, self.slices, strict=True)], dim=1)

    @torch.no_grad()
    def head(self, pre: torch.Tensor) -> torch.Tensor:
        """First-layer pre-activation (..., H) -> P(default) (...); `pre` is scratch."""
        return self.parts.head(pre)


@torch.no_grad()
def coalition_values(
    fn: ModelFunction,
    x: torch.Tensor,
    background: torch.Tensor,
    masks: torch.Tensor,
    block_elements: int | None = None,
) -> torch.Tensor:
    """v[i, c] = mean_k P(default | x_i on coalition c, background row k elsewhere); (n, C) float64.

    Every background row sees the same coalitions (used for exact enumeration
    and grouped Shapley values). `x` (n, F) and `background` (K, F) hold raw
    features in `fn.features` order; `masks` (C, F) is True where the
    feature comes from the applicant.
    """
    block_elements = block_elements or block_elements_for(x.device)
    if fn.parts is None:
        return _hybrid_coalition_values(fn, x, background, masks, block_elements)
    split = FirstLayerShares(fn.parts)
    m = masks.to(device=x.device, dtype=x.dtype)
    a = split.shares(x)  # (n, F, H)
    b = split.shares(background)  # (K, F, H)
    n, k, h = x.shape[0], background.shape[0], split.hidden
    c_all = m.shape[0]
    out = torch.empty(n, c_all, dtype=torch.float64, device=x.device)
    c_step = max(1, min(c_all, block_elements // (k * h)))
    a_step = max(1, block_elements // (k * h * c_step))
    for c0 in range(0, c_all, c_step):
        mc = m[c0 : c0 + c_step]
        q = torch.einsum("cf,kfh->ckh", 1.0 - mc, b) + split.bias  # background half
        for i0 in range(0, n, a_step):
            p = torch.matmul(mc, a[i0 : i0 + a_step])  # applicant half, (a, c, H)
            out[i0 : i0 + a_step, c0 : c0 + c_step] = split.head(p[:, :, None, :] + q[None]).mean(-1).double()
    return out


def _hybrid_coalition_values(
    fn: ModelFunction, x: torch.Tensor, background: torch.Tensor, masks: torch.Tensor, block_elements: int
) -> torch.Tensor:
    """`coalition_values` for any model: explicit hybrid rows, scored `block_elements` raw values at a time."""
    n, f = x.shape
    k, c_all = background.shape[0], masks.shape[0]
    m = masks.to(device=x.device, dtype=torch.bool)
    rows = max(1, block_elements // f)
    c_step = max(1, min(c_all, rows // k))
    a_step = max(1, rows // (k * c_step))
    out = torch.empty(n, c_all, dtype=torch.float64, device=x.device)
    for c0 in range(0, c_all, c_step):
        mc = m[c0 : c0 + c_step, None, :]  # (c, 1, F)
        for i0 in range(0, n, a_step):
            xa = x[i0 : i0 + a_step, None, None, :]  # (a, 1, 1, F)
            hybrid = torch.where(mc[None], xa, background[None, None])  # (a, c, K, F)
            p = fn.predict(hybrid.reshape(-1, f)).reshape(hybrid.shape[:3])
            out[i0 : i0 + a_step, c0 : c0 + c_step] = p.mean(-1)
    return out


class BlockwiseGame:
    """Coalition values when every background row k has its own coalitions masks[k] (K, C, F).

    Drawing fresh coalitions per background row makes the sampling errors of
    the K one-row games independent, so they average out in the mean instead
    of adding up (at the same number of network evaluations, several times
    more accurate than one shared design; see bench/explain.py).
    """

    dtype = torch.float32  # of `values`: the head's own precision

    def __init__(self, parts: BlockwiseParts, background: torch.Tensor, masks: torch.Tensor) -> None:
        self.split = FirstLayerShares(parts)
        self.k, self.c, self.f = masks.shape
        self.masks = masks.to(device=background.device, dtype=background.dtype).reshape(self.k * self.c, self.f)
        b = self.split.shares(background)  # (K, F, H)
        q = torch.einsum("kcf,kfh->kch", 1.0 - self.masks.reshape(self.k, self.c, self.f), b) + self.split.bias
        self.q = q.reshape(self.k * self.c, -1)  # background half of every (k, c) hybrid row

    @torch.no_grad()
    def values(self, x: torch.Tensor, block_elements: int | None = None) -> torch.Tensor:
        """v[i, k, c] = P(default | x_i on coalition masks[k, c], background row k elsewhere), float32."""
        block_elements = block_elements or block_elements_for(x.device)
        a = self.split.shares(x)  # (n, F, H)
        rows, h = self.k * self.c, self.split.hidden
        out = torch.empty(x.shape[0], rows, dtype=torch.float32, device=x.device)
        r_step = max(1, min(rows, block_elements // h))
        a_step = max(1, block_elements // (h * r_step))
        for r0 in range(0, rows, r_step):
            mr, qr = self.masks[r0 : r0 + r_step], self.q[r0 : r0 + r_step]
            for i0 in range(0, x.shape[0], a_step):
                ai = a[i0 : i0 + a_step]
                if len(ai) == 1:  # one fused multiply-add: q + masks @ A_i
                    pre = torch.addmm(qr, mr, ai[0])
                else:  # the same for a batch of applicants (large devices)
                    pre = torch.baddbmm(qr.expand(len(ai), -1, -1), mr.expand(len(ai), -1, -1), ai)
                out[i0 : i0 + a_step, r0 : r0 + r_step] = self.split.head(pre)
        return out.reshape(x.shape[0], self.k, self.c)


class HybridGame:
    """`BlockwiseGame` for any model: the (k, c) hybrid rows of a block of applicants, scored by the model."""

    dtype = torch.float64  # of `values`: `ModelFunction.predict`'s

    def __init__(self, fn: ModelFunction, background: torch.Tensor, masks: torch.Tensor) -> None:
        self.fn = fn
        self.k, self.c, self.f = masks.shape
        self.masks = masks.to(device=background.device, dtype=torch.bool).reshape(self.k * self.c, self.f)
        self.others = background.repeat_interleave(self.c, dim=0)  # row k*C + c: background row k

    @torch.no_grad()
    def values(self, x: torch.Tensor, block_elements: int | None = None) -> torch.Tensor:
        """v[i, k, c] = P(default | x_i on coalition masks[k, c], background row k elsewhere), float64."""
        block_elements = block_elements or block_elements_for(x.device)
        rows = self.k * self.c
        out = torch.empty(x.shape[0], rows, dtype=torch.float64, device=x.device)
        r_step = max(1, min(rows, block_elements // self.f))
        a_step = max(1, block_elements // (self.f * r_step))
        for r0 in range(0, rows, r_step):
            mr, br = self.masks[r0 : r0 + r_step], self.others[r0 : r0 + r_step]
            for i0 in range(0, x.shape[0], a_step):
                hybrid = torch.where(mr[None], x[i0 : i0 + a_step, None, :], br[None])  # (a, r, F)
                out[i0 : i0 + a_step, r0 : r0 + r_step] = self.fn.predict(hybrid.reshape(-1, self.f)).view(
                    len(hybrid), -1
                )
        return out.reshape(x.shape[0], self.k, self.c)


def per_background_game(fn: ModelFunction, background: torch.Tensor, masks: torch.Tensor) -> BlockwiseGame | HybridGame:
    """The fastest game `fn`'s model allows, with its own coalitions masks[k] (K, C, F) per background row."""
    if fn.parts is not None:
        return BlockwiseGame(fn.parts, background, masks)
    return HybridGame(fn, background, masks)
