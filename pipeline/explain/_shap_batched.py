"""Kernel SHAP for the whole portfolio in batched torch: the `batched` backend.

The function explained is raw applicant -> P(default) (the audited model's
`predict_proba`, or its torch function when it offers one), with
interventional (marginal) coalition values against a recorded background
sample. What makes it fast (see `_game.py` for the model side):

- for a `Blockwise` model the first layer is precomputed per feature for
  applicants and background, and its background half per coalition, so a
  coalition costs one add and the small layers after the first layer (any
  other model has its hybrid rows scored in large blocks instead);
- many applicants x coalitions x background rows go through one matrix
  multiply on the chosen device;
- each background row gets its own coalitions (same exact part, independent
  sampled part), so sampling errors of the one-row games average out;
- coalitions: the smallest and largest sizes are enumerated exactly, the rest
  sampled in complementary pairs, stratified by size (`_kernel.py`);
- the constrained least-squares solve is a precomputed linear operator per
  background row, applied to a whole block of applicants at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ._function import model_function
from ._game import per_background_game
from ._kernel import constrained_wls_operator, kernel_design
from ._values import Attributions

MSG_NO_BACKGROUND = "the background sample is empty; pass at least one row of raw features"
MSG_SMALL_TRAIN = "background_sample needs at least 1 row, got a frame of {n} rows"
DEFAULT_BACKGROUND_SIZE = 100
DEFAULT_COALITIONS = 256
_VALUES_BLOCK = 1 << 22  # applicants x background x coalitions held at once


def background_sample(train_frame: pd.DataFrame, n: int = DEFAULT_BACKGROUND_SIZE, seed: int = 0) -> pd.DataFrame:
    """`n` rows drawn at random without replacement from the training split (seeded).

    A random sample (not k-means centroids) keeps every background row a real
    applicant with valid codes, so hybrid rows stay inside the data's support;
    the original index is kept so the saved sample says which rows were used.
    """
    if len(train_frame) < 1:
        raise ValueError(MSG_SMALL_TRAIN.format(n=len(train_frame)))
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(train_frame), size=min(n, len(train_frame)), replace=False))
    return train_frame.iloc[pick].copy()


@torch.no_grad()
def batched_shap(
    model,
    frame: pd.DataFrame,
    background: pd.DataFrame,
    device: torch.device | str = "cpu",
    n_coalitions: int = DEFAULT_COALITIONS,
    seed: int = 0,
) -> Attributions:
    """Interventional Kernel SHAP values of P(default) for every row of `frame`.

    `n_coalitions` is the number of coalitions per background row (so the
    network sees n_coalitions x len(background) hybrid rows per applicant).
    Returns Attributions over `model.features`; base + sum == P(default).
    """
    if len(background) == 0:
        raise ValueError(MSG_NO_BACKGROUND)
    fn = model_function(model, device)
    device, features = fn.device, list(fn.features)
    x = fn.tensor(frame)
    bg = fn.tensor(background, "background")
    k, f = bg.shape[0], len(features)
    designs = [kernel_design(f, n_coalitions, (seed, j)) for j in range(k)]
    masks = torch.as_tensor(np.stack([d.masks for d in designs]), device=device)
    # phi_head = mean_k L_k (v_k - f(b_k) - gap_k z_last_k): the v-part is one GEMM over the flattened
    # (k, c) index; the parts that do not depend on the coalition values are folded into two vectors.
    ops = [constrained_wls_operator(d) for d in designs]
    c = len(designs[0])
    op = np.stack([o for o, _ in ops])  # (K, F-1, C)
    game = per_background_game(fn, bg, masks)
    # in the dtype the game's values come in (float32 on the blockwise path), so the GEMM needs no cast
    op_flat = torch.as_tensor(op.transpose(0, 2, 1).reshape(k * c, f - 1) / k, dtype=game.dtype, device=device)
    row_sum = torch.as_tensor(op.sum(2) / k, device=device)  # (K, F-1): L_k @ 1
    last_term = torch.as_tensor(np.einsum("kjc,kc->kj", op, np.stack([z for _, z in ops])) / k, device=device)
    fx = fn.predict(x)
    fb = fn.predict(bg)
    base = fb.mean()
    values = torch.empty(len(frame), f, dtype=torch.float64, device=device)
    step = max(1, _VALUES_BLOCK // (k * c))
    for i0 in range(0, len(frame), step):
        fxi = fx[i0 : i0 + step]
        v = game.values(x[i0 : i0 + step]).reshape(len(fxi), k * c)
        gap = fxi[:, None] - fb[None, :]  # (a, K): f(x) - f(b_k)
        head = (v @ op_flat).double() - fb @ row_sum - gap @ last_term
        values[i0 : i0 + step, :-1] = head
        values[i0 : i0 + step, -1] = (fxi - base) - head.sum(1)
    exact = ",".join(map(str, designs[0].exact_sizes)) or "none"
    return Attributions(
        values=values.cpu().numpy(),
        base=float(base),
        output=fx.cpu().numpy(),
        features=tuple(features),
        method=f"batched kernel SHAP: {len(designs[0])} coalitions per background row x {k} rows,"
        f" exact sizes {exact}, paired stratified sampling, seed {seed}",
    )
