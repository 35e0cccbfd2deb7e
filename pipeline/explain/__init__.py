"""Explanations: why the model scored each applicant as it did, and which features drive it overall.

An *explanation* attributes one applicant's probability of default to the
raw features the model reads (LIMIT_BAL, PAY_0, ...: never encoded columns),
relative to a reference. Every explainer takes the audited model through its
interface (`pipeline.audited_model`: `predict_proba`, and the `Differentiable`
/ `Blockwise` capabilities where a method needs or profits from them), never
through the model's layers. The package computes, for the whole portfolio:

- SHAP values (`shap_values`): interventional Shapley values of P(default)
  against a recorded background sample (`background_sample`); base + sum of
  values = P(default). A `TreeEnsemble` model gets exact TreeSHAP from its trees
  (`tree_ensemble_shap`); any other model Kernel SHAP, by backend: `batched_shap`
  (batched torch, on CPU or CUDA, any model through `predict_proba`) or
  `kernel_explainer_shap` (shap's KernelExplainer, the reference); `shap_variant`
  says which computed them;
  `exact_shap` / `grouped_shap` enumerate every coalition (exact; grouped
  over the schema's feature groups such as "repayment history");
- `tree_shap`: TreeExplainer values of the surrogate tree, to compare;
- LIME weights (`lime_explain`) and counterfactuals (`counterfactuals`:
  only changes the schema declares plausible, checked by
  `plausibility_violations` against its `RULES`);
- gradient attributions (`Differentiable` models only): loss gradients,
  saliency, Integrated Gradients (with its `completeness_gap`);
- principal reasons (`principal_reasons`: exactly the (at most four) inputs
  that raised the risk most, none withheld) and the `stability` of the top
  factors across SHAP, LIME and the surrogate's decision path;
- global importance per method and their Spearman agreement.

`explain_portfolio` runs every method of the registry (`METHODS`, one
`Method` per module) once and returns a `PortfolioExplanation`.
"""

from ._counterfactual import Change, Counterfactual, counterfactuals
from ._exact import exact_shap, grouped_shap, model_groups, shapley_from_table
from ._function import ModelFunction, model_function
from ._importance import mean_abs, rank_agreement, scaled_by_std
from ._integrated_gradients import completeness_gap, integrated_gradients
from ._kernel import CoalitionDesign, kernel_design, solve_shap
from ._lime import lime_explain, lime_reference
from ._loss_gradients import loss_gradients
from ._method import (
    IMPORTANCE_MERGES,
    OVER_APPLICANTS,
    OVER_DECLINED,
    SAME_IN_EVERY_CHUNK,
    STD_SCALED,
    Method,
    MethodResult,
    PortfolioInputs,
)
from ._plausibility import RULES, plausibility_violations
from ._portfolio import BACKENDS, LIMITATIONS, NOT_APPLICABLE, PortfolioExplanation, explain_portfolio
from ._reasons import MAX_REASONS, Reason, principal_reasons, reasons_json
from ._registry import METHODS, importance_merges
from ._saliency import saliency
from ._shap import ShapRun, shap_values, shap_variant
from ._shap_batched import DEFAULT_BACKGROUND_SIZE, DEFAULT_COALITIONS, background_sample, batched_shap
from ._shap_reference import REFERENCE_NSAMPLES, kernel_explainer_shap
from ._shap_tree import TREE_OUTPUT_TOLERANCE, TreeShapUnavailable, tree_ensemble_shap
from ._stability import STABILITY_FLAG_BELOW, TOP_K, path_factors, stability, top_factors, unstable
from ._tree import tree_shap
from ._values import Attributions

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKGROUND_SIZE",
    "DEFAULT_COALITIONS",
    "IMPORTANCE_MERGES",
    "LIMITATIONS",
    "MAX_REASONS",
    "METHODS",
    "NOT_APPLICABLE",
    "OVER_APPLICANTS",
    "OVER_DECLINED",
    "REFERENCE_NSAMPLES",
    "RULES",
    "SAME_IN_EVERY_CHUNK",
    "STABILITY_FLAG_BELOW",
    "STD_SCALED",
    "TOP_K",
    "TREE_OUTPUT_TOLERANCE",
    "Attributions",
    "Change",
    "CoalitionDesign",
    "Counterfactual",
    "Method",
    "MethodResult",
    "ModelFunction",
    "PortfolioExplanation",
    "PortfolioInputs",
    "Reason",
    "ShapRun",
    "TreeShapUnavailable",
    "background_sample",
    "batched_shap",
    "completeness_gap",
    "counterfactuals",
    "exact_shap",
    "explain_portfolio",
    "grouped_shap",
    "importance_merges",
    "integrated_gradients",
    "kernel_design",
    "kernel_explainer_shap",
    "lime_explain",
    "lime_reference",
    "loss_gradients",
    "mean_abs",
    "model_function",
    "model_groups",
    "path_factors",
    "plausibility_violations",
    "principal_reasons",
    "rank_agreement",
    "reasons_json",
    "saliency",
    "scaled_by_std",
    "shap_values",
    "shap_variant",
    "shapley_from_table",
    "solve_shap",
    "stability",
    "top_factors",
    "tree_ensemble_shap",
    "tree_shap",
    "unstable",
]
