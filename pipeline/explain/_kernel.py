"""Kernel SHAP's two model-free halves: which coalitions to evaluate, and the weighted solve.

Kernel SHAP estimates Shapley values as the weighted least-squares fit of a
linear function of the coalition indicators to the coalition values, under the
efficiency constraint (the values sum to f(x) - base). Both halves depend only
on the number of features and the budget, not on the applicant, so the design
is drawn once and the solve becomes one precomputed linear operator applied to
every applicant's coalition values at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np

MSG_FEW_FEATURES = "Kernel SHAP needs at least 2 features, got {m}"
MSG_BUDGET = (
    "the coalition budget must be at least 2 * {m} = {need} (every size-1 coalition and its complement), got {budget}"
)


@dataclass(frozen=True)
class CoalitionDesign:
    """Coalitions (rows of `masks`, True = feature taken from the applicant) and their kernel weights.

    `exact_sizes` are the coalition sizes enumerated completely; the other
    sizes are sampled in complementary pairs, stratified by size.
    """

    masks: np.ndarray  # (C, M) bool
    weights: np.ndarray  # (C,) float64, sum 1
    exact_sizes: tuple[int, ...]

    @property
    def n_features(self) -> int:
        return int(self.masks.shape[1])

    def __len__(self) -> int:
        return int(self.masks.shape[0])


def size_weights(m: int) -> np.ndarray:
    """Total Shapley-kernel weight of each coalition size 1..m-1 (normalised), index = size - 1."""
    s = np.arange(1, m)
    w = (m - 1) / (s * (m - s))
    return w / w.sum()


def _all_of_size(m: int, size: int) -> np.ndarray:
    from itertools import combinations

    out = np.zeros((comb(m, size), m), dtype=bool)
    for r, idx in enumerate(combinations(range(m), size)):
        out[r, list(idx)] = True
    return out


def _sample_of_size(m: int, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` distinct random coalitions of one size (fewer when the size has fewer)."""
    count = min(count, comb(m, size))
    found = np.zeros((0, m), dtype=bool)
    while len(found) < count:
        draw = np.zeros((2 * count, m), dtype=bool)
        picks = rng.random((2 * count, m)).argsort(axis=1)[:, :size]
        np.put_along_axis(draw, picks, True, axis=1)
        both = np.concatenate([found, draw])
        _, first = np.unique(np.packbits(both, axis=1), axis=0, return_index=True)
        found = both[np.sort(first)][:count]
    return found


def kernel_design(m: int, budget: int, seed: int | tuple[int, ...] = 0) -> CoalitionDesign:
    """Exact enumeration of the smallest and largest sizes, paired stratified sampling of the rest.

    Sizes s and m-s are handled as a pair (they share a kernel weight). Pairs
    are enumerated from the outside in while their coalitions fit in the
    budget share their weight earns (the rule shap's KernelExplainer uses);
    the remaining budget is split over the remaining sizes in proportion to
    their weight and filled with distinct random coalitions plus their
    complements (paired sampling), each size keeping exactly its own total
    weight, which removes the variance of drawing sizes at random.
    """
    if m < 2:
        raise ValueError(MSG_FEW_FEATURES.format(m=m))
    if budget < 2 * m:
        raise ValueError(MSG_BUDGET.format(m=m, need=2 * m, budget=budget))
    rng = np.random.default_rng(seed)
    sw = size_weights(m)
    sizes_left = list(range(1, m // 2 + 1))  # the small size of each pair (m-s is its partner)
    masks: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    exact: list[int] = []
    left = budget
    while sizes_left:
        s = sizes_left[0]
        partner = m - s
        n_pair = comb(m, s) * (1 if partner == s else 2)
        weight_left = sum(sw[t - 1] + (sw[m - t - 1] if m - t != t else 0.0) for t in sizes_left)
        pair_weight = sw[s - 1] + (sw[partner - 1] if partner != s else 0.0)
        if left * pair_weight / weight_left < n_pair - 1e-8:
            break
        for t in {s, partner}:
            block = _all_of_size(m, t)
            masks.append(block)
            weights.append(np.full(len(block), sw[t - 1] / len(block)))
            exact.append(t)
        left -= n_pair
        sizes_left.pop(0)
    if sizes_left and left >= 2:
        pair_w = np.array([sw[s - 1] + (sw[m - s - 1] if m - s != s else 0.0) for s in sizes_left])
        pairs = np.floor(left / 2 * pair_w / pair_w.sum()).astype(int)
        pairs[np.argmax(pair_w)] += left // 2 - pairs.sum()  # spend the rounding remainder
        for s, k in zip(sizes_left, pairs, strict=True):
            if k <= 0:
                continue
            small = _sample_of_size(m, s, int(k), rng)
            if m - s == s:  # the middle size of an even m: a coalition and its complement share the size
                block = np.concatenate([small, ~small])
                masks.append(block)
                weights.append(np.full(len(block), sw[s - 1] / len(block)))
            else:
                masks += [small, ~small]
                weights += [
                    np.full(len(small), sw[s - 1] / len(small)),
                    np.full(len(small), sw[m - s - 1] / len(small)),
                ]
    mask = np.concatenate(masks)
    w = np.concatenate(weights)
    return CoalitionDesign(mask, w / w.sum(), tuple(sorted(exact)))


def constrained_wls_operator(design: CoalitionDesign) -> tuple[np.ndarray, np.ndarray]:
    """The solve as a linear map: phi[:-1] = (values - base - z_last * gap) @ L.T, phi[-1] = gap - sum(phi[:-1]).

    The efficiency constraint sum(phi) = gap = f(x) - base is imposed by
    eliminating the last feature (as shap's KernelExplainer does); what is left
    is an unconstrained weighted least squares whose normal matrix depends only
    on the design, so it is inverted once for every applicant.
    Returns L (M-1, C) and z_last (C,).
    """
    z = design.masks.astype(np.float64)
    last = z[:, -1]
    x = z[:, :-1] - last[:, None]
    xtw = x.T * design.weights
    op = np.linalg.pinv(xtw @ x) @ xtw  # pinv: a small sampled design may leave a direction unseen
    return op, last


def solve_shap(design: CoalitionDesign, values: np.ndarray, fx: np.ndarray, base: float) -> np.ndarray:
    """Shapley values (n, M) from coalition values (n, C); rows sum exactly to fx - base."""
    op, last = constrained_wls_operator(design)
    gap = np.asarray(fx, dtype=np.float64) - base
    y = np.asarray(values, dtype=np.float64) - base - gap[:, None] * last[None, :]
    head = y @ op.T
    return np.column_stack([head, gap - head.sum(1)])
