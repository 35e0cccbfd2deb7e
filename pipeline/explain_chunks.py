"""Explaining a portfolio in chunks and putting the pieces back together exactly.

Per-applicant work (SHAP, LIME, counterfactuals, reasons) splits by rows, so
the flow explains fixed-size chunks as separate tasks (locally or on a Dask
cluster) and resumes at chunk granularity. The global view is then rebuilt
from the chunks: every global importance is a mean of |attribution| over
applicants, so the row-weighted mean of the chunk means is the portfolio's
mean; gradient importances are rescaled from the chunk's to the portfolio's
feature standard deviation. Each method says how its numbers combine (its
`Method.importance_merges` and `merge_details` in pipeline.explain's
registry), so this module knows no method by name. The same chunking is used
by every runner, so local and distributed runs give identical outputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .constants import EXPLAIN_CHUNK_ROWS
from .explain import (
    METHODS,
    NOT_APPLICABLE,
    OVER_APPLICANTS,
    OVER_DECLINED,
    SAME_IN_EVERY_CHUNK,
    STD_SCALED,
    importance_merges,
    rank_agreement,
)


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
    rules = importance_merges()
    methods = {m for s in summaries for m in s["global_importance"]}
    for method in sorted(methods):
        rule = rules.get(method, OVER_APPLICANTS)
        have = [(s, f) for s, f in zip(summaries, frames, strict=True) if method in s["global_importance"]]
        parts = [s["global_importance"][method] for s, _ in have]
        if rule == OVER_DECLINED:
            weights = [s["declined"] for s, _ in have]
        else:
            weights = [s["applicants"] for s, _ in have]
        if rule == STD_SCALED:
            parts = [
                {k: (v / f[k].std(ddof=0) if f[k].std(ddof=0) > 0 else 0.0) for k, v in p.items()}
                for p, (_, f) in zip(parts, have, strict=True)
            ]
            merged[method] = {k: v * float(full[k].std(ddof=0)) for k, v in _weighted(parts, weights).items()}
        elif rule == SAME_IN_EVERY_CHUNK:
            merged[method] = parts[0]  # e.g. a property of the surrogate tree
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
    merged = {
        **first,
        "applicants": int(sum(n)),
        "declined": int(sum(s["declined"] for s in summaries)),
        "chunks": len(summaries),
        "global_importance": importance,
        "agreement": {
            a: {b: (float(v) if np.isfinite(v) else None) for b, v in row.items()} for a, row in agreement.iterrows()
        },
        "stability": {
            **first["stability"],
            "mean": (sum(m * w for m, w in stab_means if m is not None) / defined) if defined else None,
            "low": int(sum(s["stability"]["low"] for s in summaries)),
            "undefined": int(sum(s["stability"]["undefined"] for s in summaries)),
        },
    }
    if "elderly_rule" in first:
        counts = ("elderly", "age_counted_against", "declined_age_counted_against")
        merged["elderly_rule"] = {**first["elderly_rule"],
                                  **{k: int(sum(s["elderly_rule"][k] for s in summaries)) for k in counts}}
    skipped = first.get(NOT_APPLICABLE, {})
    for method in METHODS:
        if method.merge_details is not None and method.name not in skipped:
            merged.update(method.merge_details(summaries))
    merged["timings"] = {k: round(sum(s["timings"].get(k, 0.0) for s in summaries), 3) for k in first["timings"]}
    return merged
