"""Explaining a portfolio in chunks and putting the pieces back together exactly.

Per-applicant work (SHAP, LIME, counterfactuals, reasons) splits by rows, so
the flow explains fixed-size chunks as separate tasks (locally or on a Dask
cluster) and resumes at chunk granularity. The global view is then rebuilt
from the chunks: every global importance is a mean of |attribution| over
applicants, so the row-weighted mean of the chunk means is the portfolio's
mean; gradient importances are rescaled from the chunk's to the portfolio's
feature standard deviation. The same chunking is used by every runner, so
local and distributed runs give identical outputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .constants import EXPLAIN_CHUNK_ROWS
from .explain import rank_agreement

_STD_SCALED = ("saliency", "gradient")  # importance = mean |grad| x feature std of the explained rows
_DECLINED_ONLY = ("lime",)


def chunk_bounds(n_rows: int, size: int = EXPLAIN_CHUNK_ROWS) -> list[tuple[int, int]]:
    """[start, stop) row ranges covering 0..n_rows."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return [(s, min(s + size, n_rows)) for s in range(0, n_rows, size)]


def _weighted(parts: list[dict[str, float]], weights: list[float]) -> dict[str, float]:
    total = float(sum(weights))
    return {f: sum(w * p[f] for p, w in zip(parts, weights, strict=True)) / total for f in parts[0]}


def merge_importance(summaries: list[dict], frames: list[pd.DataFrame], full: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Portfolio-level importance per method from the chunks' `global_importance`."""
    merged: dict[str, dict[str, float]] = {}
    methods = {m for s in summaries for m in s["global_importance"]}
    for method in sorted(methods):
        have = [(s, f) for s, f in zip(summaries, frames, strict=True) if method in s["global_importance"]]
        parts = [s["global_importance"][method] for s, _ in have]
        if method in _DECLINED_ONLY:
            weights = [s["declined"] for s, _ in have]
        else:
            weights = [s["applicants"] for s, _ in have]
        if method in _STD_SCALED:
            parts = [
                {k: (v / f[k].std(ddof=0) if f[k].std(ddof=0) > 0 else 0.0) for k, v in p.items()}
                for p, (_, f) in zip(parts, have, strict=True)
            ]
            merged[method] = {k: v * float(full[k].std(ddof=0)) for k, v in _weighted(parts, weights).items()}
        elif method == "surrogate_impurity":
            merged[method] = parts[0]  # a property of the tree, the same in every chunk
        else:
            merged[method] = _weighted(parts, weights)
    return merged


def merge_summaries(summaries: list[dict], frames: list[pd.DataFrame], full: pd.DataFrame) -> dict:
    """One `explanations` section for audit.json from the chunks' summaries."""
    if len(summaries) == 1:
        return summaries[0]
    first = summaries[0]
    importance = merge_importance(summaries, frames, full)
    agreement = rank_agreement(importance)
    n = [s["applicants"] for s in summaries]
    stab_means = [(s["stability"]["mean"], s["applicants"] - s["stability"]["undefined"]) for s in summaries]
    defined = sum(w for m, w in stab_means if m is not None)
    return {
        **first,
        "applicants": int(sum(n)),
        "declined": int(sum(s["declined"] for s in summaries)),
        "chunks": len(summaries),
        "global_importance": importance,
        "agreement": {
            a: {b: (float(v) if np.isfinite(v) else None) for b, v in row.items()} for a, row in agreement.iterrows()
        },
        "group_importance": _weighted([s["group_importance"] for s in summaries], n),
        "stability": {
            **first["stability"],
            "mean": (sum(m * w for m, w in stab_means if m is not None) / defined) if defined else None,
            "low": int(sum(s["stability"]["low"] for s in summaries)),
            "undefined": int(sum(s["stability"]["undefined"] for s in summaries)),
        },
        "shap": {**first["shap"], "max_additivity_gap": max(s["shap"]["max_additivity_gap"] for s in summaries)},
        "counterfactuals": {
            "declined": int(sum(s["counterfactuals"]["declined"] for s in summaries)),
            "found": int(sum(s["counterfactuals"]["found"] for s in summaries)),
        },
        "integrated_gradients": {
            "mean_completeness_gap": float(
                np.average([s["integrated_gradients"]["mean_completeness_gap"] for s in summaries], weights=n)
            )
        },
        "timings": {k: round(sum(s["timings"].get(k, 0.0) for s in summaries), 3) for k in first["timings"]},
    }
