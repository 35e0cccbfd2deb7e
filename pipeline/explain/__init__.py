"""Explanations: why the model scored each applicant as it did, and which features drive it overall.

An *explanation* attributes one applicant's probability of default to the
raw features the model reads (LIMIT_BAL, PAY_0, ...: never encoded columns),
relative to a reference. The package computes, for the whole portfolio:

- SHAP values: interventional Shapley values of P(default) against a recorded
  background sample (`background_sample`); base + sum of values = P(default).
  Backends: `batched_shap` (Kernel SHAP in batched torch, on CPU or CUDA) and
  `kernel_explainer_shap` (shap's KernelExplainer, the reference);
  `exact_shap` / `grouped_shap` enumerate every coalition (exact; grouped
  over the schema's feature groups such as "repayment history");
- `tree_shap`: TreeExplainer values of the surrogate tree, to compare;
- LIME weights (`lime_explain`) and counterfactuals (`counterfactuals`);
- gradient attributions: loss gradients, saliency, Integrated Gradients;
- principal reasons (`principal_reasons`: at most four risk-raising,
  non-protected factors in plain words) and the `stability` of the top
  factors across SHAP, LIME and the surrogate's decision path;
- global importance per method and their Spearman agreement.

`explain_portfolio` runs all of it once and returns a `PortfolioExplanation`.
"""

from ._counterfactual import Change, Counterfactual, counterfactuals
from ._exact import exact_shap, grouped_shap, model_groups, shapley_from_table
from ._gradients import integrated_gradients, loss_gradients, saliency
from ._importance import mean_abs, rank_agreement, scaled_by_std
from ._kernel import CoalitionDesign, kernel_design, solve_shap
from ._lime import lime_explain, lime_reference
from ._portfolio import BACKENDS, LIMITATIONS, PortfolioExplanation, explain_portfolio
from ._reasons import MAX_REASONS, Reason, principal_reasons, reasons_json
from ._shap_batched import DEFAULT_BACKGROUND_SIZE, DEFAULT_COALITIONS, background_sample, batched_shap
from ._shap_reference import REFERENCE_NSAMPLES, kernel_explainer_shap
from ._stability import STABILITY_FLAG_BELOW, TOP_K, path_factors, stability, top_factors, unstable
from ._tree import tree_shap
from ._values import Attributions

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKGROUND_SIZE",
    "DEFAULT_COALITIONS",
    "LIMITATIONS",
    "MAX_REASONS",
    "REFERENCE_NSAMPLES",
    "STABILITY_FLAG_BELOW",
    "TOP_K",
    "Attributions",
    "Change",
    "CoalitionDesign",
    "Counterfactual",
    "PortfolioExplanation",
    "Reason",
    "background_sample",
    "batched_shap",
    "counterfactuals",
    "exact_shap",
    "explain_portfolio",
    "grouped_shap",
    "integrated_gradients",
    "kernel_design",
    "kernel_explainer_shap",
    "lime_explain",
    "lime_reference",
    "loss_gradients",
    "mean_abs",
    "model_groups",
    "path_factors",
    "principal_reasons",
    "rank_agreement",
    "reasons_json",
    "saliency",
    "scaled_by_std",
    "shapley_from_table",
    "solve_shap",
    "stability",
    "top_factors",
    "tree_shap",
    "unstable",
]
