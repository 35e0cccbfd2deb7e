"""Global importance by every method, and whether the methods agree (Spearman rank correlation).

Each method's per-applicant attributions become one number per feature: the
mean absolute attribution over the applicants it explained. Gradient methods
are in raw units, so they are scaled by the feature's standard deviation.
The audit reports the rank agreement between methods: a ranking that only
one method supports is a weak basis for a conclusion about the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

MSG_NO_ROWS = "method {method!r} has no explained applicants (all rows are NaN)"


def mean_abs(values: np.ndarray, features: tuple[str, ...] | list[str], method: str = "") -> dict[str, float]:
    """Mean |attribution| per feature over the rows that have one (NaN rows skipped)."""
    values = np.asarray(values, dtype=np.float64)
    rows = ~np.isnan(values).any(axis=1)
    if not rows.any():
        raise ValueError(MSG_NO_ROWS.format(method=method))
    return {f: float(v) for f, v in zip(features, np.abs(values[rows]).mean(0), strict=True)}


def scaled_by_std(importance: dict[str, float], frame: pd.DataFrame) -> dict[str, float]:
    """Raw-unit gradient importance x feature standard deviation: comparable across units."""
    return {f: float(v * frame[f].std(ddof=0)) for f, v in importance.items()}


def rank_agreement(importances: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Spearman correlation between every pair of methods over the features they share (NaN: undefined)."""
    methods = list(importances)
    shared = [f for f in importances[methods[0]] if all(f in importances[m] for m in methods)]
    out = pd.DataFrame(np.eye(len(methods)), index=methods, columns=methods)
    for i, a in enumerate(methods):
        for b in methods[i + 1 :]:
            va = np.array([importances[a][f] for f in shared])
            vb = np.array([importances[b][f] for f in shared])
            # A method that ranks every feature equal (e.g. a one-split tree) has no ranking to agree with.
            defined = np.ptp(va) > 0 and np.ptp(vb) > 0
            out.loc[a, b] = out.loc[b, a] = float(spearmanr(va, vb).statistic) if defined else np.nan
    return out
