"""Stability: do SHAP, LIME and the surrogate's path point at the same factors for one applicant?

For each applicant, each available method names its top factors: the 4
features with the largest |attribution| for SHAP and LIME, the features the
surrogate tree tests on the applicant's path. Stability is the mean pairwise
overlap |A & B| / min(|A|, |B|) among the methods available (LIME is only
run for declined applicants; NaN rows are skipped). An explanation whose
methods disagree (stability below `STABILITY_FLAG_BELOW`) is flagged for a
human look rather than sent as if it were certain.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from ..constants import STABILITY_FLAG_BELOW

TOP_K = 4
MSG_FEATURES = "attributions have {cols} columns, expected {n} (one per feature)"


def top_factors(values: np.ndarray, features: tuple[str, ...] | list[str], k: int = TOP_K) -> list[frozenset | None]:
    """Per row, the k features with the largest |value| (zeros excluded); None for a NaN row."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[1] != len(features):
        raise ValueError(MSG_FEATURES.format(cols=values.shape[1], n=len(features)))
    order = np.argsort(-np.abs(np.nan_to_num(values)), axis=1, kind="stable")[:, :k]
    out: list[frozenset | None] = []
    for row, cols in zip(values, order, strict=True):
        out.append(None if np.isnan(row).any() else frozenset(features[j] for j in cols if row[j] != 0))
    return out


def path_factors(surrogate, frame: pd.DataFrame) -> list[frozenset]:
    """Per row, the features tested on its decision path in the surrogate tree (vectorised decision_path)."""
    tree = surrogate.tree_
    x = frame[list(surrogate.features)].to_numpy(np.float64)
    indicator = tree.decision_path(x).tocsr()
    split_feature = tree.tree_.feature
    out = []
    for i in range(len(x)):
        nodes = indicator.indices[indicator.indptr[i] : indicator.indptr[i + 1]]
        out.append(frozenset(surrogate.features[f] for f in split_feature[nodes] if f >= 0))
    return out


def overlap(a: frozenset, b: frozenset) -> float:
    return len(a & b) / min(len(a), len(b))


def stability(*factor_lists: list[frozenset | None]) -> np.ndarray:
    """Mean pairwise overlap per row over the methods that have a non-empty factor set (NaN if < 2)."""
    out = np.full(len(factor_lists[0]), np.nan)
    for i, sets in enumerate(zip(*factor_lists, strict=True)):
        present = [s for s in sets if s]
        if len(present) >= 2:
            out[i] = float(np.mean([overlap(a, b) for a, b in combinations(present, 2)]))
    return out


def unstable(values: np.ndarray, below: float = STABILITY_FLAG_BELOW) -> np.ndarray:
    """True where the methods agree too little for the explanation to be trusted as is."""
    return np.asarray(values) < below
