"""The cost of unawareness and of mitigation, as an analysis beside the production model.

Three questions a challenger asks, answered on the same train/test split:
does leaving the protected inputs out change accuracy or disparities (the
production model without SEX and MARRIAGE vs the same model trained with every
schema input), and what would a post-processing mitigation cost (fairlearn's
ThresholdOptimizer on the production scores, group-specific thresholds for
SEX under demographic parity or equalized odds)? Nothing here changes the
production decisions; ThresholdOptimizer also needs SEX at decision time,
which the production model deliberately does not use.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from .. import schema as S
from ._by_group import group_disparities
from ._groups import audited_attributes

MITIGATION_CONSTRAINTS: tuple[str, ...] = ("demographic_parity", "equalized_odds")
MITIGATION_OBJECTIVE = "accuracy_score"  # what the thresholds maximise under the constraint
# Replicates for the comparison's disparity intervals: a side analysis, so fewer than the audit's.
COMPARISON_BOOT = 200


def _variant(name: str, description: str, X_test: pd.DataFrame, y: np.ndarray, decline: np.ndarray,
             p_default: np.ndarray | None, *, device: torch.device, seed: int) -> dict:
    singles = tuple(a for a in audited_attributes() if a.kind == "attribute")
    # Disparities depend on decisions only; without scores (ThresholdOptimizer) the AUC/calibration columns are unused.
    scores = p_default if p_default is not None else decline.astype(np.float64)
    _, results = group_disparities(X_test, y, decline, scores, device=device, seed=seed, n_boot=COMPARISON_BOOT,
                                   attributes=singles, include_overall=False)
    return {
        "variant": name,
        "description": description,
        "roc_auc": float(roc_auc_score(y, p_default)) if p_default is not None else None,
        "accuracy": float(accuracy_score(y, decline)),
        "balanced_accuracy": float(balanced_accuracy_score(y, decline)),
        "approval_rate": float(np.mean(decline == 0)),
        "disparities": {
            r.attribute: {k: r.disparities[k] for k in ("demographic_parity_difference", "lowest_adverse_impact_ratio",
                                                        "equalized_odds_difference") if k in r.disparities}
            | {"verdict": r.verdict}
            for r in results
        },
    }


class _Scores(ClassifierMixin, BaseEstimator):
    """Any audited model as the fitted scikit-learn classifier ThresholdOptimizer(prefit=True) expects
    (a lender's model is not a scikit-learn estimator); it only forwards `predict_proba`."""

    def __init__(self, model: object = None) -> None:
        self.model = model

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> _Scores:  # noqa: ARG002 - prefit: never trained here
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(X)  # type: ignore[union-attr]

    def __sklearn_is_fitted__(self) -> bool:
        return True

    @property
    def classes_(self) -> np.ndarray:
        return np.array([0, 1])


def _threshold_optimizer(model, X_train, y_train, X_test, constraints: str, attribute: str,
                         seed: int) -> np.ndarray:
    """Decisions (1 = decline) of group-specific thresholds on the production model's P(default)."""
    opt = ThresholdOptimizer(estimator=_Scores(model), constraints=constraints, prefit=True, predict_method="predict_proba",
                             objective=MITIGATION_OBJECTIVE)
    with warnings.catch_warnings():
        # fairlearn warns that a prefit estimator is used as is: that is the point here.
        warnings.filterwarnings("ignore", message=".*prefit.*", category=UserWarning)
        opt.fit(X_train, np.asarray(y_train, dtype=int), sensitive_features=X_train[attribute].to_numpy())
        return np.asarray(opt.predict(X_test, sensitive_features=X_test[attribute].to_numpy(),
                                      random_state=seed), dtype=np.int64)


def unawareness_and_mitigation(X_train: pd.DataFrame, y_train, X_test: pd.DataFrame, y_test, model, *, seed: int,
                               device: torch.device) -> dict:
    """Performance and disparities of the production model, an aware model and ThresholdOptimizer variants."""
    y = np.asarray(y_test, dtype=np.int64)
    p_prod = model.predict_proba(X_test)[:, 1]
    variants = [_variant("production", f"production model, inputs exclude {', '.join(S.EXCLUDED_FROM_MODEL)}",
                         X_test, y, (p_prod >= model.threshold_).astype(np.int64), p_prod, device=device, seed=seed)]
    if hasattr(model, "get_params") and hasattr(model, "fit"):  # a model the audit trained can be retrained
        # Same hyper-parameters, every schema input (sklearn.clone refuses CreditModel: it normalises `device`).
        params = {**model.get_params(deep=False), "features": S.FEATURE_NAMES, "seed": seed, "device": device}
        aware = type(model)(**params).fit(X_train, y_train)
        variants.append(_variant("with protected inputs", "same architecture and training, every schema input"
                                 " including " + ", ".join(S.PROTECTED), X_test, y, aware.predict(X_test),
                                 aware.predict_proba(X_test)[:, 1], device=device, seed=seed))
    attribute = S.SPEC.fairness.mitigate  # the schema's [fairness] mitigate
    for c in MITIGATION_CONSTRAINTS if attribute else ():
        decline = _threshold_optimizer(model, X_train, y_train, X_test, c, attribute, seed)
        variants.append(_variant(f"ThresholdOptimizer ({c.replace('_', ' ')} on {attribute})",
                                 f"fairlearn ThresholdOptimizer, prefit on the production model's P(default), "
                                 f"{c} constraint for {attribute}, maximising {MITIGATION_OBJECTIVE}, "
                                 f"randomised thresholds seeded {seed}; uses {attribute} at decision time",
                                 X_test, y, decline, None, device=device, seed=seed))
    return {
        "note": "analysis only: the production decisions are not changed",
        "split": {"n_train": int(len(X_train)), "n_test": int(len(X_test))},
        "comparison_n_boot": COMPARISON_BOOT,
        "variants": variants,
    }
