"""Explain the whole portfolio in one call: the columns of applicants.parquet and the audit's global view.

`explain_portfolio` runs every registered method (`_registry.METHODS`) once
over the portfolio, then assembles what needs several of them: principal
reasons (from SHAP), Regulation B's elderly-rule check (where AGE is an
input: how many applicants aged 62 or more have age counted against them),
the stability of the top factors (SHAP, LIME, the surrogate's path) and the
overlap of the surrogate's and the model's top features. It returns one immutable `PortfolioExplanation`: per-applicant
columns aligned row by row with the frame (docs/outputs.md), global
importance per method with their rank agreement, and a JSON-able summary for
audit.json. Reports and flows consume this object; they never call an
explainer themselves. A method the model cannot support (a gradient method
for a model that is not `Differentiable`) is listed under `not_applicable`
in the summary instead of failing the run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .. import schema as S
from ..audited_model import check_auditable
from ..constants import COUNTERFACTUAL_MARGIN, ELDERLY_AGE
from ._importance import rank_agreement
from ._method import Method, MethodResult, PortfolioInputs
from ._reasons import MAX_REASONS, MIN_CONTRIBUTION, principal_reasons, reasons_json
from ._registry import METHODS, limitations
from ._shap import BACKENDS, MSG_BACKEND, check_backend
from ._shap_batched import DEFAULT_COALITIONS
from ._stability import STABILITY_FLAG_BELOW, TOP_K, path_factors, stability, top_factors, unstable
from ._values import Attributions

__all__ = ["BACKENDS", "LIMITATIONS", "MSG_BACKEND", "MSG_DECLINED", "PortfolioExplanation", "explain_portfolio"]

MSG_DECLINED = "declined must be a boolean mask of {rows} rows or integer row positions below {rows}"
LIMITATIONS = limitations()
NOT_APPLICABLE = "not_applicable"  # summary key: {method: why it could not explain this model}
# The assembly's own per-applicant columns (docs/outputs.md); the methods' columns come first.
REASONS, STABILITY = "reasons", "stability"
SURROGATE_NOTE = "overlap of the top-4 features by |SHAP| of the audited model and by |TreeSHAP| of the surrogate"


@dataclass(frozen=True)
class PortfolioExplanation:
    """Everything computed by `explain_portfolio` (see the module docstring).

    `attributions`: each method's per-applicant values by method name
    (`shap`, `shapgroup`, `tree_shap`, `lime`, ... as far as they ran).
    """

    columns: pd.DataFrame
    global_importance: dict[str, dict[str, float]]
    agreement: pd.DataFrame
    background: pd.DataFrame
    attributions: Mapping[str, Attributions]
    details: dict = field(default_factory=dict)

    @property
    def shap(self) -> Attributions:
        return self.attributions["shap"]

    @property
    def grouped(self) -> Attributions | None:
        return self.attributions.get("shapgroup")

    @property
    def tree(self) -> Attributions | None:
        return self.attributions.get("tree_shap")

    def summary(self) -> dict:
        """The `explanations` section of audit.json (JSON-able)."""
        stab = self.columns[STABILITY].to_numpy(np.float64)
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


def _run_methods(
    methods: tuple[Method, ...], inputs: PortfolioInputs
) -> tuple[dict[str, MethodResult], dict[str, float], dict[str, str]]:
    """Each method's result by name, seconds by timing key, and why the others could not run."""
    results: dict[str, MethodResult] = {}
    seconds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for method in methods:
        reason = method.not_applicable(inputs.model)
        if reason is not None:
            skipped[method.name] = reason
            continue
        start = time.perf_counter()
        result = method.run(inputs)
        if result is not None:
            results[method.name] = result
            seconds[method.timing_key] = seconds.get(method.timing_key, 0.0) + time.perf_counter() - start
    return results, seconds, skipped


def _top_factor_stability(results: dict[str, MethodResult], inputs: PortfolioInputs) -> np.ndarray:
    """Per applicant, how far SHAP, LIME (where it ran) and the surrogate's path agree on the top factors."""
    factors = [top_factors(results[m].attributions.values, inputs.features) for m in ("shap", "lime") if m in results]
    return stability(*factors, path_factors(inputs.surrogate, inputs.frame))


def _surrogate_vs_model(results: dict[str, MethodResult]) -> dict:
    shap, tree = results["shap"].attributions, results["tree_shap"].attributions
    overlap = stability(top_factors(shap.values, shap.features), top_factors(tree.values, tree.features))
    return {
        "mean_top4_overlap": float(np.nanmean(overlap)) if np.isfinite(overlap).any() else None,
        "note": SURROGATE_NOTE,
    }


def elderly_rule(shap: np.ndarray, frame: pd.DataFrame, features: tuple[str, ...], declined: np.ndarray) -> dict:
    """Regulation B, 12 CFR 1002.6(b)(2)(ii): applicants aged ELDERLY_AGE or more whose age raised their risk.

    Where age is not a model input nothing can count it against anyone: `age_is_input` False, counts 0.
    """
    age = S.SPEC.fairness.age  # the schema's age column
    if age is None or age not in features:
        return {"age_is_input": False, "min_age": ELDERLY_AGE, "elderly": int((frame[age] >= ELDERLY_AGE).sum())
                if age in frame else 0, "age_counted_against": 0, "declined_age_counted_against": 0}
    elderly = frame[age].to_numpy(np.float64) >= ELDERLY_AGE
    against = elderly & (np.nan_to_num(shap[:, features.index(age)]) > MIN_CONTRIBUTION)
    was_declined = np.zeros(len(frame), dtype=bool)
    was_declined[declined] = True
    return {"age_is_input": True, "min_age": ELDERLY_AGE, "elderly": int(elderly.sum()),
            "age_counted_against": int(against.sum()),
            "declined_age_counted_against": int((against & was_declined).sum())}


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
    counterfactual_margin: float = COUNTERFACTUAL_MARGIN,
    max_limit_factor: float | None = None,
) -> PortfolioExplanation:
    """Every registered method over `frame` (LIME and counterfactuals for the declined rows), reasons, stability.

    `model`: any audited model (pipeline.audited_model). `declined`: boolean
    mask or row positions of the declined applicants. `training_frame`: the
    training split, for LIME's sampling statistics and the counterfactual
    candidate values (defaults to `background`). `labels`: the observed labels
    of `frame`, for the loss-gradient importance (skipped if None).
    `counterfactual_margin`, `max_limit_factor`: the counterfactual search's
    settings (`[audit.counterfactuals]`; None: the schema's limit factor).
    """
    check_backend(backend)
    inputs = PortfolioInputs(
        model=check_auditable(model),
        surrogate=surrogate,
        frame=frame,
        declined=_positions(declined, len(frame)),
        background=background,
        training_frame=background if training_frame is None else training_frame,
        labels=labels,
        device=torch.device(device),
        seed=seed,
        backend=backend,
        n_coalitions=n_coalitions,
        lime_samples=lime_samples,
        counterfactual_margin=counterfactual_margin,
        max_limit_factor=max_limit_factor,
    )
    results, seconds, skipped = _run_methods(METHODS, inputs)
    start = time.perf_counter()
    shap = results["shap"].attributions.values
    reasons = principal_reasons(shap, frame, inputs.features, max_reasons, reference=background)
    elderly = elderly_rule(shap, frame, inputs.features, inputs.declined)
    seconds["reasons"] = time.perf_counter() - start

    cols = {name: values for r in results.values() for name, values in r.columns.items()}
    cols[REASONS] = [reasons_json(r) for r in reasons]
    cols.update({name: values for r in results.values() for name, values in r.records.items()})
    cols[STABILITY] = _top_factor_stability(results, inputs)
    importance = {key: dict(values) for r in results.values() for key, values in r.importance.items()}

    details = {
        "backend": backend,
        "device": str(inputs.device),
        "seed": seed,
        "applicants": inputs.rows,
        "declined": len(inputs.declined),
        "features": list(inputs.features),
        "methods": {name: r.description for name, r in results.items() if r.description is not None},
        "limitations": {**LIMITATIONS, **{name: r.limitation for name, r in results.items() if r.limitation}},
        "elderly_rule": elderly,
    }
    for r in results.values():
        details.update(r.details)
    if "tree_shap" in results:
        details["surrogate_vs_mlp"] = _surrogate_vs_model(results)
    if skipped:
        details[NOT_APPLICABLE] = skipped
    details["timings"] = {key: round(s, 3) for key, s in seconds.items()}
    return PortfolioExplanation(
        columns=pd.DataFrame(cols, index=frame.index),
        global_importance=importance,
        agreement=rank_agreement(importance),
        background=background.copy(),
        attributions={name: r.attributions for name, r in results.items() if r.attributions is not None},
        details=details,
    )
