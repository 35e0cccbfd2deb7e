"""SHAP values of the surrogate tree (shap's TreeExplainer), to compare with the audited model's.

The surrogate imitates the model's decisions; explaining the tree with the
same interventional definition and the same background as the model shows
where the readable rules and the model lean on different features. (A model
that is itself a tree ensemble has its own SHAP computed by TreeSHAP too:
`_shap_tree`.)
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import shap

from ._importance import mean_abs
from ._method import OVER_APPLICANTS, SAME_IN_EVERY_CHUNK, Method, MethodResult, PortfolioInputs
from ._values import Attributions

NAME = "tree_shap"
IMPURITY = "surrogate_impurity"
LIMITATION = (
    "Explains the surrogate tree, not the audited model: where it differs from SHAP, the rules are a"
    " simplification of what the model does."
)


def tree_shap(surrogate, frame: pd.DataFrame, background: pd.DataFrame) -> Attributions:
    """Interventional TreeExplainer values of the tree's P(decline), over `surrogate.features`."""
    features = list(surrogate.features)
    x = frame[features].to_numpy(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's notices about background size; values unaffected
        explainer = shap.TreeExplainer(
            surrogate.tree_,
            data=background[features].to_numpy(np.float64),
            feature_perturbation="interventional",
            model_output="probability",
        )
        raw = np.asarray(explainer.shap_values(x, check_additivity=True))
    decline = list(surrogate.tree_.classes_).index(1) if 1 in surrogate.tree_.classes_ else -1
    values = raw[..., decline] if raw.ndim == 3 else raw
    base = float(np.asarray(explainer.expected_value).reshape(-1)[decline])
    return Attributions(
        values=values,
        base=base,
        output=surrogate.tree_.predict_proba(x)[:, decline],
        features=tuple(features),
        method=f"shap {shap.__version__} TreeExplainer on the surrogate tree, interventional,"
        f" {len(background)} background rows, output P(decline)",
    )


def _run(inputs: PortfolioInputs) -> MethodResult:
    tree = tree_shap(inputs.surrogate, inputs.frame, inputs.background)
    surrogate = inputs.surrogate
    return MethodResult(
        attributions=tree,
        importance={
            NAME: mean_abs(tree.values, tree.features, NAME),
            IMPURITY: dict(zip(surrogate.features, map(float, surrogate.tree_.feature_importances_), strict=True)),
        },
        description=tree.method,
    )


METHOD = Method(
    name=NAME,
    run=_run,
    limitation=LIMITATION,
    importance_merges={NAME: OVER_APPLICANTS, IMPURITY: SAME_IN_EVERY_CHUNK},
)
