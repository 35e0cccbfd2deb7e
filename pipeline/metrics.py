"""Held-out performance of the default-risk model, as the audit report shows it.

Discrimination (ROC AUC), decisions at the policy threshold (accuracy,
confusion matrix) and calibration (Brier score, expected calibration error,
reliability curve): SR 11-7 outcomes analysis asks for all three.
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

CALIBRATION_BINS = 10
ROC_POINTS = 200


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Count-weighted mean |observed rate - mean predicted| over equal-width probability bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.sum() * abs(y[sel].mean() - p[sel].mean())
    return float(total / len(y))


def _thin(fpr: np.ndarray, tpr: np.ndarray, points: int) -> tuple[list[float], list[float]]:
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    return fpr[keep].round(5).tolist(), tpr[keep].round(5).tolist()


def performance(y: np.ndarray, p_default: np.ndarray, threshold: float) -> dict:
    """All performance figures of one split; decline (1) when p_default >= threshold."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p_default, dtype=float)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    fpr, tpr, _ = roc_curve(y, p)
    fx, ty = _thin(fpr, tpr, ROC_POINTS)
    observed, predicted = calibration_curve(y, p, n_bins=CALIBRATION_BINS, strategy="uniform")
    counts = np.histogram(p, bins=np.linspace(0, 1, CALIBRATION_BINS + 1))[0]
    return {
        "rows": int(len(y)),
        "roc_auc": float(roc_auc_score(y, p)),
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "decline_rate": float(pred.mean()),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "roc_curve": {"fpr": fx, "tpr": ty},
        "calibration_curve": {
            "mean_predicted": predicted.round(5).tolist(),
            "observed": observed.round(5).tolist(),
            "count": [int(c) for c in counts if c > 0],
        },
    }
