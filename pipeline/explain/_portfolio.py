"""Explain the whole portfolio in one call: the columns of applicants.parquet and the audit's global view.

`explain_portfolio` runs every explainer once over the portfolio and returns
one immutable `PortfolioExplanation`: per-applicant columns aligned row by
row with the frame (docs/outputs.md), global importance per method with
their rank agreement, and a JSON-able summary for audit.json. Reports and
flows consume this object; they never call an explainer themselves.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ._exact import grouped_shap
from ._gradients import integrated_gradients, loss_gradients, saliency
from ._importance import mean_abs, rank_agreement, scaled_by_std
from ._reasons import MAX_REASONS, principal_reasons, reasons_json
from ._shap_batched import DEFAULT_COALITIONS, batched_shap
from ._shap_reference import kernel_explainer_shap
from ._stability import STABILITY_FLAG_BELOW, TOP_K, path_factors, stability, top_factors, unstable
from ._tree import tree_shap
from ._values import Attributions

BACKENDS = ("batched", "shap")
MSG_BACKEND = "backend must be one of {choices}, got {backend!r}"
MSG_DECLINED = "declined must be a boolean mask of {rows} rows or integer row positions below {rows}"
IG_STEPS = 32

LIMITATIONS = {
    "shap": "Interventional SHAP against a random background sample: features are switched independently of each"
    " other, so hybrid applicants can be unlike any real one; values depend on the background.",
    "shapgroup": "Exact Shapley values of feature groups; a group's value is not the sum of its features' values.",
    "lime": "A local linear fit on quartile-binned perturbations: depends on the sampling seed and bins,"
    " computed for declined applicants only.",
    "tree_shap": "Explains the surrogate tree, not the MLP: where it differs from SHAP, the rules are a"
    " simplification of what the model does.",
    "gradient": "Loss gradients in raw units, scaled by each feature's standard deviation; blind to the code"
    " indicators of repayment status and education (step functions).",
    "saliency": "Local slope only; blind to code indicators like all gradient methods.",
    "integrated_gradients": "Straight path from the background mean; completeness fails where code indicators jump.",
}


@dataclass(frozen=True)
class PortfolioExplanation:
    """Everything computed by `explain_portfolio` (see the module docstring)."""

    columns: pd.DataFrame
    global_importance: dict[str, dict[str, float]]
    agreement: pd.DataFrame
    background: pd.DataFrame
    shap: Attributions
    grouped: Attributions
    tree: Attributions
    details: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The `explanations` section of audit.json (JSON-able)."""
        stab = self.columns["stability"].to_numpy(np.float64)
        return {
            **self.details,
            "global_importance": self.global_importance,
            "agreement": {
                a: {b: (float(v) if np.isfinite(v) else None) for b, v in row.items()}
                for a, row in self.agreement.iterrows()
            },
            "stability": {
                "top_k": TOP_K,
                "flag_below": STABILITY_FLAG_BELOW,
                "mean": float(np.nanmean(stab)) if np.isfinite(stab).any() else None,
                "low": int(np.sum(unstable(stab))),
                "undefined": int(np.sum(np.isnan(stab))),
            },
            "limitations": LIMITATIONS,
        }


def _positions(declined: np.ndarray, rows: int) -> np.ndarray:
    arr = np.asarray(declined)
    if arr.dtype == bool:
        if arr.shape != (rows,):
            raise ValueError(MSG_DECLINED.format(rows=rows))
        return np.flatnonzero(arr)
    if arr.size and (arr.min() < 0 or arr.max() >= rows):
        raise ValueError(MSG_DECLINED.format(rows=rows))
    return arr.astype(np.int64)


def _group_column(group: str) -> str:
    return "shapgroup_" + group.replace(" ", "_")


def _lime_and_counterfactuals(model, frame, rows, training_frame, device, seed, lime_samples):
    """The LIME and counterfactual engines (pipeline.explain._lime / _counterfactual) for the declined rows."""
    from ._counterfactual import counterfactuals
    from ._lime import lime_explain

    declined = frame.iloc[rows]
    lime = np.full((len(frame), len(model.features)), np.nan)
    cfs: list[str | None] = [None] * len(frame)
    if len(rows) == 0:
        return lime, cfs
    lime[rows] = lime_explain(model, declined, training_frame, device, seed, num_samples=lime_samples)
    for r, cf in zip(rows, counterfactuals(model, declined, training_frame, device, seed), strict=True):
        cfs[r] = cf.to_json()
    return lime, cfs


def explain_portfolio(
    model,
    surrogate,
    frame: pd.DataFrame,
    declined: np.ndarray,
    background: pd.DataFrame,
    device: torch.device | str = "cpu",
    seed: int = 0,
    backend: str = "batched",
    training_frame: pd.DataFrame | None = None,
    labels: np.ndarray | None = None,
    n_coalitions: int = DEFAULT_COALITIONS,
    lime_samples: int = 5000,
    max_reasons: int = MAX_REASONS,
) -> PortfolioExplanation:
    """SHAP (+ grouped, + surrogate TreeSHAP), LIME and counterfactuals (declined rows), gradients, reasons, stability.

    `declined`: boolean mask or row positions of the declined applicants.
    `training_frame`: the training split, for LIME's sampling statistics and the
    counterfactual candidate values (defaults to `background`). `labels`: the
    observed labels of `frame`, for the loss-gradient importance (skipped if None).
    """
    if backend not in BACKENDS:
        raise ValueError(MSG_BACKEND.format(choices=BACKENDS, backend=backend))
    device = torch.device(device)
    rows = _positions(declined, len(frame))
    features = tuple(model.features)
    training_frame = background if training_frame is None else training_frame
    timings: dict[str, float] = {}

    def timed(step, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        timings[step] = round(time.perf_counter() - start, 3)
        return out

    if backend == "batched":
        shap_values = timed("shap", batched_shap, model, frame, background, device, n_coalitions, seed)
    else:
        shap_values = timed("shap", kernel_explainer_shap, model, frame, background, seed=seed, device=device)
    grouped = timed("shapgroup", grouped_shap, model, frame, background, device)
    tree = timed("tree_shap", tree_shap, surrogate, frame, background)
    lime, cfs = timed(
        "lime_counterfactual", _lime_and_counterfactuals, model, frame, rows, training_frame, device, seed, lime_samples
    )
    baseline = background[list(features)].to_numpy(np.float64).mean(0)
    ig = timed("integrated_gradients", integrated_gradients, model, frame, baseline, device, IG_STEPS)
    sal = timed("saliency", saliency, model, frame, device)

    importance = {
        "shap": mean_abs(shap_values.values, features, "shap"),
        "tree_shap": mean_abs(tree.values, tree.features, "tree_shap"),
        "surrogate_impurity": dict(
            zip(surrogate.features, map(float, surrogate.tree_.feature_importances_), strict=True)
        ),
        "saliency": scaled_by_std(mean_abs(sal, features, "saliency"), frame),
        "integrated_gradients": mean_abs(ig, features, "integrated_gradients"),
    }
    if len(rows):
        importance["lime"] = mean_abs(lime, features, "lime")
    if labels is not None:
        grads = timed("gradient", loss_gradients, model, frame, labels, device)
        importance["gradient"] = scaled_by_std(mean_abs(grads, features, "gradient"), frame)
    importance_groups = mean_abs(grouped.values, grouped.features, "shapgroup")

    reasons = timed("reasons", principal_reasons, shap_values.values, frame, features, max_reasons)
    stab = stability(
        top_factors(shap_values.values, features), top_factors(lime, features), path_factors(surrogate, frame)
    )

    shap_top = top_factors(shap_values.values, features)
    tree_top = top_factors(tree.values, tree.features)
    tree_vs_mlp = stability(shap_top, tree_top)  # pairwise overlap of the two top-4 sets

    cols = {f"shap_{f}": shap_values.values[:, j] for j, f in enumerate(features)}
    cols["shap_base"] = np.full(len(frame), shap_values.base)
    cols.update({_group_column(g): grouped.values[:, j] for j, g in enumerate(grouped.features)})
    cols.update({f"lime_{f}": lime[:, j] for j, f in enumerate(features)})
    cols["reasons"] = [reasons_json(r) for r in reasons]
    cols["counterfactual"] = cfs
    cols["stability"] = stab
    columns = pd.DataFrame(cols, index=frame.index)

    with torch.no_grad():
        f_base = float(model.net_(torch.as_tensor(baseline[None], dtype=torch.float32, device=model.device)).cpu()[0])
    completeness = np.abs(ig.sum(1) - (shap_values.output - f_base))
    details = {
        "backend": backend,
        "device": str(device),
        "seed": seed,
        "applicants": len(frame),
        "declined": len(rows),
        "features": list(features),
        "methods": {
            "shap": shap_values.method,
            "shapgroup": grouped.method,
            "tree_shap": tree.method,
            "lime": f"batched LIME (pipeline.explain._lime), {lime_samples} samples, declined applicants only",
            "integrated_gradients": f"{IG_STEPS}-step midpoint rule from the background mean",
        },
        "shap": {
            "base": shap_values.base,
            "background_rows": len(background),
            "n_coalitions": n_coalitions if backend == "batched" else None,
            "max_additivity_gap": float(shap_values.additivity_gap().max()) if len(frame) else 0.0,
        },
        "group_importance": importance_groups,
        "groups": {g: [f for f in features if f in _members(g)] for g in grouped.features},
        "counterfactuals": {
            "declined": len(rows),
            "found": int(sum(1 for c in cfs if c is not None and json.loads(c)["found"])),
        },
        "surrogate_vs_mlp": {
            "mean_top4_overlap": float(np.nanmean(tree_vs_mlp)) if np.isfinite(tree_vs_mlp).any() else None,
            "note": "overlap of the top-4 features by |SHAP| of the MLP and by |TreeSHAP| of the surrogate",
        },
        "integrated_gradients": {"mean_completeness_gap": float(completeness.mean()) if len(frame) else 0.0},
        "timings": timings,
    }
    return PortfolioExplanation(
        columns=columns,
        global_importance=importance,
        agreement=rank_agreement(importance),
        background=background.copy(),
        shap=shap_values,
        grouped=grouped,
        tree=tree,
        details=details,
    )


def _members(group: str) -> list[str]:
    from .. import schema as S

    return [f.name for f in S.FEATURES if f.group == group]
