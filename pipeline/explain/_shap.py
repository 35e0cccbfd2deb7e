"""SHAP values of P(default): the method's one entry point, the variant chosen by what the model offers.

`shap_values` computes interventional Shapley values of the audited model's
P(default) against a background sample. Which computation depends on the
model (`pipeline.audited_model`):

- a `TreeEnsemble` gets exact TreeSHAP from its trees (`_shap_tree`), whatever
  the backend: an exact value beats any estimate of it;
- any other model (or a tree model whose booster does not reproduce its
  `predict_proba`: the reason is recorded) gets Kernel SHAP, from the
  `batched` engine (`_shap_batched`: batched torch, any audited model, fast for
  `Blockwise` ones) or the shap library's KernelExplainer (`_shap_reference`,
  the reference).

The variant used is recorded in the summary (`shap.variant`, the method's
description) and in the limitation the audit report prints, so the report
says how its numbers were made. Its own check is efficiency: base + sum of
values = P(default) for every applicant (`Attributions.additivity_gap`),
reported in the summary.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from ..audited_model import TreeEnsemble, capability
from ..columns import SHAP_BASE, explanation_column
from ._importance import mean_abs
from ._method import OVER_APPLICANTS, Method, MethodResult, PortfolioInputs
from ._shap_batched import DEFAULT_COALITIONS, batched_shap
from ._shap_reference import kernel_explainer_shap
from ._shap_tree import TreeShapUnavailable, tree_ensemble_shap
from ._values import Attributions

NAME = "shap"
BACKENDS = ("batched", "shap")
MSG_BACKEND = "backend must be one of {choices}, got {backend!r}"
# The variants, as the summary's `shap.variant` and the report name them:
TREE = "TreeSHAP"
BATCHED_KERNEL = "batched Kernel SHAP"
LIBRARY_KERNEL = "shap KernelExplainer"
MSG_FALLBACK = "TreeSHAP not used: {why}"
LIMITATION = (
    "Interventional SHAP against a random background sample: features are switched independently of each"
    " other, so hybrid applicants can be unlike any real one; values depend on the background."
)
COMPUTED_BY = {
    TREE: " Computed exactly from the model's trees (TreeSHAP): no sampling error.",
    BATCHED_KERNEL: " Estimated by Kernel SHAP from sampled coalitions: small values carry sampling error.",
    LIBRARY_KERNEL: " Estimated by the shap library's Kernel SHAP from sampled coalitions: small values carry"
    " sampling error.",
}


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(MSG_BACKEND.format(choices=BACKENDS, backend=backend))
    return backend


@dataclass(frozen=True)
class ShapRun:
    """SHAP values, the variant that computed them, and why TreeSHAP was not used for a tree model (or None)."""

    result: Attributions
    variant: str
    why_not_tree: str | None = None


def shap_variant(
    model,
    frame: pd.DataFrame,
    background: pd.DataFrame,
    backend: str = "batched",
    device: torch.device | str = "cpu",
    seed: int = 0,
    n_coalitions: int = DEFAULT_COALITIONS,
) -> ShapRun:
    """`shap_values` with the variant that computed them (TREE, BATCHED_KERNEL or LIBRARY_KERNEL)."""
    check_backend(backend)
    why_not = None
    if capability(model, TreeEnsemble) is not None:
        try:
            return ShapRun(tree_ensemble_shap(model, frame, background), TREE)
        except TreeShapUnavailable as exc:
            why_not = MSG_FALLBACK.format(why=exc)
    if backend == "batched":
        run = ShapRun(batched_shap(model, frame, background, device, n_coalitions, seed), BATCHED_KERNEL, why_not)
    else:
        run = ShapRun(kernel_explainer_shap(model, frame, background, seed=seed, device=device), LIBRARY_KERNEL, why_not)
    if why_not is None:
        return run
    return replace(run, result=replace(run.result, method=f"{run.result.method} ({why_not})"))


def shap_values(
    model,
    frame: pd.DataFrame,
    background: pd.DataFrame,
    backend: str = "batched",
    device: torch.device | str = "cpu",
    seed: int = 0,
    n_coalitions: int = DEFAULT_COALITIONS,
) -> Attributions:
    """Interventional SHAP values (n, F) of P(default) for every row of `frame`; base + sum == P(default)."""
    return shap_variant(model, frame, background, backend, device, seed, n_coalitions).result


def max_additivity_gap(result: Attributions) -> float:
    """The efficiency check over all applicants: max |base + sum of values - P(default)| (0 for none)."""
    return float(result.additivity_gap().max()) if len(result.values) else 0.0


def limitation(run: ShapRun) -> str:
    """The limitation the report prints for this run: the general one, how the values were computed, and why."""
    return LIMITATION + COMPUTED_BY[run.variant] + (f" {run.why_not_tree}." if run.why_not_tree else "")


def _run(inputs: PortfolioInputs) -> MethodResult:
    run = shap_variant(
        inputs.model, inputs.frame, inputs.background, inputs.backend, inputs.device, inputs.seed, inputs.n_coalitions
    )
    result, variant = run.result, run.variant
    columns = {explanation_column(NAME, f): result.values[:, j] for j, f in enumerate(inputs.features)}
    columns[SHAP_BASE] = np.full(inputs.rows, result.base)
    return MethodResult(
        attributions=result,
        columns=columns,
        importance={NAME: mean_abs(result.values, inputs.features, NAME)},
        description=result.method,
        limitation=limitation(run),
        details={
            NAME: {
                "variant": variant,
                "base": result.base,
                "background_rows": len(inputs.background),
                "n_coalitions": inputs.n_coalitions if variant == BATCHED_KERNEL else None,
                "max_additivity_gap": max_additivity_gap(result),
            }
        },
    )


def _merge(summaries: list[dict]) -> dict:
    """The largest additivity gap of the chunks; where the variant differs by chunk, every variant is named and
    the description and limitation come from a chunk that fell back (they say why)."""
    variants = list(dict.fromkeys(s[NAME]["variant"] for s in summaries))
    said = next((s for s in summaries if s[NAME]["variant"] != TREE), summaries[0])
    return {
        NAME: {
            **summaries[0][NAME],
            "variant": " + ".join(variants),
            "max_additivity_gap": max(s[NAME]["max_additivity_gap"] for s in summaries),
        },
        "methods": {**summaries[0]["methods"], NAME: said["methods"][NAME]},
        "limitations": {**summaries[0]["limitations"], NAME: said["limitations"][NAME]},
    }


METHOD = Method(
    name=NAME, run=_run, limitation=LIMITATION, importance_merges={NAME: OVER_APPLICANTS}, merge_details=_merge
)
