"""The fairness audit: one call computes everything, one immutable result holds it.

`audit_fairness` measures the production model's held-out decisions per
protected group and intersection, bootstraps every rate and disparity on the
chosen torch device, turns the intervals into verdicts, and (optionally) adds
the proxy analysis, the cost of unawareness and of mitigation, and the
explanation disparity. The production decisions are never changed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..audited_model import decisions
from ..constants import CI_LEVEL, EQUALIZED_ODDS_GAP_MAX, FOUR_FIFTHS, MIN_GROUP_SIZE, MIN_OUTCOME_COUNT, PARITY_GAP_MAX
from ..device import DEVICE_CHOICES, resolve_device
from ._by_group import AttributeResult, group_disparities
from ._groups import grouping_notes
from ._rates import INTERVAL_METHOD
from ._verdicts import RULES_TEXT

MIN_BOOT = 1
MSG_N_BOOT = "n_boot must be an integer of at least {min}, got {got!r}"
MSG_LENGTHS = "X_test has {n} rows but {what} has {m}"
MSG_SURROGATE_LENGTH = "surrogate_decisions must have one entry per row of X_test ({n}), got {m}"
MSG_NO_ATTRIBUTE = "no audited attribute {name!r}; have {have}"

CONVENTIONS = (
    "Positive class of the model = default (label 1), decision decline. TPR = P(decline | default), "
    "FPR = P(decline | no default), FNR = P(approve | default), precision = P(default | decline). "
    "The favourable outcome is approval: demographic parity and the four-fifths rule use approval rates. "
    "Calibration: mean predicted P(default) minus observed default rate (calibration_gap) and Brier score."
)


@dataclass(frozen=True)
class FairnessAudit:
    """Everything the fairness audit computed; `table` -> fairness.parquet, `summary()` -> audit.json.

    `timings` (seconds per step) stay out of the summary so that the same seed, data and
    device give the same audit.json.
    """

    table: pd.DataFrame
    attributes: tuple[AttributeResult, ...]
    settings: dict[str, Any]
    proxies: tuple[dict, ...] = ()
    comparison: dict | None = None
    explanation: dict | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def attribute(self, name: str) -> AttributeResult:
        for a in self.attributes:
            if a.attribute == name:
                return a
        raise KeyError(MSG_NO_ATTRIBUTE.format(name=name, have=[a.attribute for a in self.attributes]))

    def summary(self) -> dict:
        """JSON-able dict for audit.json under the key "fairness" (NaN written as null)."""
        return _jsonable({
            "settings": self.settings,
            "conventions": CONVENTIONS,
            "rules": RULES_TEXT,
            "thresholds": {
                "four_fifths": FOUR_FIFTHS,
                "parity_gap_max": PARITY_GAP_MAX,
                "equalized_odds_gap_max": EQUALIZED_ODDS_GAP_MAX,
                "ci_level": CI_LEVEL,
            },
            "min_group_size": MIN_GROUP_SIZE,
            "min_outcome_count": MIN_OUTCOME_COUNT,
            "grouping": grouping_notes(),
            "attributes": [a.to_dict() for a in self.attributes],
            "verdicts": {a.attribute: a.verdict for a in self.attributes},
            "proxies": list(self.proxies),
            "unawareness_and_mitigation": self.comparison,
            "explanation_disparity": self.explanation,
        })


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _check_inputs(X_test: pd.DataFrame, y_test, n_boot: int, reasons, surrogate_decisions) -> None:
    if not isinstance(n_boot, int | np.integer) or n_boot < MIN_BOOT:
        raise ValueError(MSG_N_BOOT.format(min=MIN_BOOT, got=n_boot))
    if len(y_test) != len(X_test):
        raise ValueError(MSG_LENGTHS.format(n=len(X_test), what="y_test", m=len(y_test)))
    if surrogate_decisions is not None and len(surrogate_decisions) != len(X_test):
        raise ValueError(MSG_SURROGATE_LENGTH.format(n=len(X_test), m=len(surrogate_decisions)))


def audit_fairness(X_train: pd.DataFrame, y_train, X_test: pd.DataFrame, y_test, model, *,
                   device: str | torch.device = "auto", seed: int = 0, n_boot: int = 1000,
                   reasons: pd.Series | None = None, surrogate_decisions: np.ndarray | None = None,
                   compare_models: bool = True, proxies: bool = True) -> FairnessAudit:
    """Audit the fitted `model`'s held-out decisions on `X_test` for group differences.

    `reasons`: optional principal reasons of declined test applicants (Series indexed like
    X_test; each entry a list of feature names, or of dicts with a "feature" key, most
    important first). `surrogate_decisions`: optional surrogate tree decisions (0/1) per
    row of X_test, for per-group fidelity. `compare_models=False` skips the retraining
    of a model with protected inputs and the ThresholdOptimizer analysis (~10 s);
    `proxies=False` skips the proxy models.
    """
    _check_inputs(X_test, y_test, n_boot, reasons, surrogate_decisions)
    dev = resolve_device(device) if device in DEVICE_CHOICES else torch.device(device)
    y = np.asarray(y_test, dtype=np.int64)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    p_default = model.predict_proba(X_test)[:, 1]
    decline = decisions(model, X_test)
    table, results = group_disparities(X_test, y, decline, p_default, device=dev, seed=seed, n_boot=n_boot,
                                       surrogate_decisions=surrogate_decisions)
    timings["groups_and_bootstrap"] = time.perf_counter() - t0
    proxy_rows: tuple[dict, ...] = ()
    if proxies:
        from ._proxies import proxy_strength

        t0 = time.perf_counter()
        proxy_rows = tuple(proxy_strength(X_train, model.features, seed=seed))
        timings["proxies"] = time.perf_counter() - t0
    comparison = None
    if compare_models:
        from ._mitigation import unawareness_and_mitigation

        t0 = time.perf_counter()
        comparison = unawareness_and_mitigation(X_train, y_train, X_test, y, model, seed=seed, device=dev)
        timings["unawareness_and_mitigation"] = time.perf_counter() - t0
    explanation = None
    if reasons is not None or surrogate_decisions is not None:
        from ._explanations import explanation_disparity

        t0 = time.perf_counter()
        explanation = explanation_disparity(X_test, decline, reasons, table, seed=seed, n_boot=n_boot)
        timings["explanation_disparity"] = time.perf_counter() - t0
    settings = {
        "n_boot": int(n_boot),
        "seed": int(seed),
        "device": str(dev),
        "resampling": "stratified: rows resampled with replacement within each group, group sizes fixed",
        "interval": f"{CI_LEVEL:.0%} bootstrap; {INTERVAL_METHOD} (NaN replicates, e.g. a resample without "
                    "declines for precision, are left out and counted in valid_replicates)",
        "roc_auc_method": "the same replicates: weighted Mann-Whitney statistic over the resampling multiplicities",
        "n_test": int(len(X_test)),
        "n_train": int(len(X_train)),
        "model_features": list(model.features),
        "threshold": float(model.threshold_),
    }
    return FairnessAudit(table=table, attributes=results, settings=settings, proxies=proxy_rows,
                         comparison=comparison, explanation=explanation, timings=timings)
