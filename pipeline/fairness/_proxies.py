"""Proxies: can the model's inputs reveal a protected attribute?

Leaving SEX and MARRIAGE out of the model does not make it blind to them if
other inputs predict them. For each protected attribute a gradient-boosting
classifier is trained to predict it (in its audited groups) from the model's
other inputs; its cross-validated ROC AUC (one-vs-rest macro average for more
than two groups) says how much of the attribute the inputs carry: 0.5 is
none, 1.0 is all of it. Permutation importance on a held-out fold names the
inputs that carry it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from .. import schema as S
from ..constants import INSUFFICIENT
from ._groups import audited_attributes, group_labels

PROXY_FOLDS = 3
PROXY_MAX_ROWS = 6000  # a subsample estimates an AUC to about +-0.01 and keeps this step to seconds
PROXY_TREES = 50
# One OpenMP thread: gradient boosting on a shared, oversubscribed machine is ~20x slower with more.
PROXY_THREADS = 1
PROXY_MIN_CLASS = 30  # groups rarer than this in the sample are dropped from the proxy model (stated)
TOP_PROXY_FEATURES = 5
# Reading of the cross-validated AUC, stated in the summary.
STRONG_PROXY_AUC = 0.70
MODERATE_PROXY_AUC = 0.60


def _strength(auc: float) -> str:
    if auc >= STRONG_PROXY_AUC:
        return "strong"
    if auc >= MODERATE_PROXY_AUC:
        return "moderate"
    return "weak"


def _auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    if len(classes) == 2:
        return float(roc_auc_score(y == classes[1], proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))


def _scorer(classes: np.ndarray):
    def score(est, X, y):
        return _auc(np.asarray(y), est.predict_proba(X), classes)

    return score


def _one_attribute(X: pd.DataFrame, target: np.ndarray, predictors: list[str], seed: int) -> dict:
    values, counts = np.unique(target, return_counts=True)
    dropped = [str(v) for v, c in zip(values, counts, strict=True) if c < PROXY_MIN_CLASS]
    keep = ~np.isin(target, dropped)
    Xk, yk = X.loc[keep, predictors].to_numpy(np.float64), target[keep]
    classes = np.unique(yk)
    if len(classes) < 2:
        return {"status": INSUFFICIENT, "groups": [str(c) for c in classes], "groups_dropped": dropped, "n": int(len(yk))}
    proba = np.zeros((len(yk), len(classes)))
    folds = StratifiedKFold(PROXY_FOLDS, shuffle=True, random_state=seed)
    importance = None
    for k, (tr, te) in enumerate(folds.split(Xk, yk)):
        clf = HistGradientBoostingClassifier(max_iter=PROXY_TREES, random_state=seed).fit(Xk[tr], yk[tr])
        proba[te] = clf.predict_proba(Xk[te])
        if k == 0:
            importance = permutation_importance(clf, Xk[te], yk[te], scoring=_scorer(classes), n_repeats=2,
                                                random_state=seed).importances_mean
    auc = _auc(yk, proba, classes)
    majority = classes[np.argmax([np.mean(yk == c) for c in classes])]
    order = np.argsort(-importance)[:TOP_PROXY_FEATURES]
    return {
        "status": "ok",
        "roc_auc": auc,
        "baseline_roc_auc": 0.5,
        "accuracy": float(accuracy_score(yk, classes[np.argmax(proba, axis=1)])),
        "baseline_accuracy": float(np.mean(yk == majority)),
        "strength": _strength(auc),
        "groups": [str(c) for c in classes],
        "groups_dropped": dropped,
        "n": int(len(yk)),
        "top_features": [{"feature": predictors[i], "label": S.BY_NAME[predictors[i]].label,
                          "auc_drop": float(importance[i])} for i in order],
    }


def proxy_strength(X: pd.DataFrame, model_features: tuple[str, ...], *, seed: int = 0) -> list[dict]:
    """For every protected attribute: how well the model's other inputs predict it (cross-validated)."""
    rng = np.random.default_rng(seed)
    if len(X) > PROXY_MAX_ROWS:
        X = X.iloc[np.sort(rng.choice(len(X), PROXY_MAX_ROWS, replace=False))]
    with threadpool_limits(PROXY_THREADS):
        return _all_attributes(X, model_features, seed)


def _all_attributes(X: pd.DataFrame, model_features: tuple[str, ...], seed: int) -> list[dict]:
    out = []
    for attr in audited_attributes():
        if attr.kind != "attribute":
            continue
        (column,) = attr.columns
        predictors = [f for f in model_features if f != column]
        row = _one_attribute(X, group_labels(X, attr), predictors, seed)
        out.append({
            "attribute": attr.name,
            "model_input": column in model_features,
            "predictors": "model inputs" + (f" other than {column}" if column in model_features else ""),
            "method": f"HistGradientBoostingClassifier, {PROXY_FOLDS}-fold cross-validated ROC AUC"
                      f" (one-vs-rest macro for more than two groups), {len(X)} training rows",
            **row,
        })
    return out
