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

from ..device import DEVICE_CHOICES, resolve_device
from . import _verdicts as V
from ._bootstrap import RATES, bootstrap_threads, group_rates, indicator_matrix, percentile_interval
from ._disparities import DISPARITIES, adverse_impact_ratios, disparities
from ._groups import OVERALL, OVERALL_GROUP, AuditedAttribute, audited_attributes, group_labels, grouping_notes

MIN_BOOT = 1
MSG_N_BOOT = "n_boot must be an integer of at least {min}, got {got!r}"
MSG_LENGTHS = "X_test has {n} rows but {what} has {m}"
MSG_SURROGATE_LENGTH = "surrogate_decisions must have one entry per row of X_test ({n}), got {m}"

CONVENTIONS = (
    "Positive class of the model = default (label 1), decision decline. TPR = P(decline | default), "
    "FPR = P(decline | no default), FNR = P(approve | default), precision = P(default | decline). "
    "The favourable outcome is approval: demographic parity and the four-fifths rule use approval rates. "
    "Calibration: mean predicted P(default) minus observed default rate (calibration_gap) and Brier score."
)


@dataclass(frozen=True)
class AttributeResult:
    """Disparities of one attribute over its judged groups, with intervals and a verdict."""

    attribute: str
    kind: str
    groups_judged: tuple[str, ...]
    groups_insufficient: tuple[str, ...]
    favoured_group: str | None
    disparities: dict[str, dict[str, float]]
    verdict: str
    reasons: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "attribute": self.attribute,
            "kind": self.kind,
            "groups_judged": list(self.groups_judged),
            "groups_insufficient": list(self.groups_insufficient),
            "favoured_group": self.favoured_group,
            "disparities": self.disparities,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
        }


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
        raise KeyError(f"no audited attribute {name!r}; have {[a.attribute for a in self.attributes]}")

    def summary(self) -> dict:
        """JSON-able dict for audit.json under the key "fairness" (NaN written as null)."""
        return _jsonable({
            "settings": self.settings,
            "conventions": CONVENTIONS,
            "rules": V.RULES_TEXT,
            "thresholds": {
                "four_fifths": V.FOUR_FIFTHS,
                "parity_gap_max": V.PARITY_GAP_MAX,
                "equalized_odds_gap_max": V.EQUALIZED_ODDS_GAP_MAX,
                "ci_level": V.CI_LEVEL,
            },
            "min_group_size": V.MIN_GROUP_SIZE,
            "min_outcome_count": V.MIN_OUTCOME_COUNT,
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


# ---- per-group rates --------------------------------------------------------------------------
@dataclass(frozen=True)
class _GroupStats:
    group: str
    count: int
    defaults: int
    declines: int
    sufficient: bool
    point: torch.Tensor  # (R,)
    reps: torch.Tensor | None  # (B, R) for judged groups


def _group_stats(indicators: torch.Tensor, labels: np.ndarray, groups: tuple[str, ...], n_boot: int,
                 gen: torch.Generator) -> list[_GroupStats]:
    out = []
    dev = indicators.device
    for g in groups:
        rows_np = np.flatnonzero(labels == g)
        count = len(rows_np)
        if count == 0:
            nan = torch.full((len(RATES),), float("nan"), dtype=indicators.dtype, device=dev)
            out.append(_GroupStats(g, 0, 0, 0, False, nan, None))
            continue
        rows = torch.as_tensor(rows_np, device=dev)
        defaults = int(indicators[rows, 1].sum().item())
        declines = int(indicators[rows, 2].sum().item())
        ok = V.is_sufficient(count, defaults)
        point, reps = group_rates(indicators, rows, n_boot if ok else 0, gen)
        out.append(_GroupStats(g, count, defaults, declines, ok, point, reps if ok else None))
    return out


def _rows(attribute: str, kind: str, stats: list[_GroupStats], air: dict[str, tuple[float, float, float]]) -> list[dict]:
    rows = []
    for s in stats:
        row: dict[str, Any] = {
            "attribute": attribute,
            "kind": kind,
            "group": s.group,
            "status": "ok" if s.sufficient else V.INSUFFICIENT,
            "count": s.count,
            "defaults": s.defaults,
            "declines": s.declines,
        }
        lo, hi = percentile_interval(s.reps, V.CI_LEVEL) if s.reps is not None else (None, None)
        for i, r in enumerate(RATES):
            row[r] = float(s.point[i])
            row[f"{r}_lo"] = float(lo[i]) if lo is not None else math.nan
            row[f"{r}_hi"] = float(hi[i]) if hi is not None else math.nan
        a = air.get(s.group, (math.nan, math.nan, math.nan))
        row["adverse_impact_ratio"], row["adverse_impact_ratio_lo"], row["adverse_impact_ratio_hi"] = a
        rows.append(row)
    return rows


def _interval_dict(point: torch.Tensor, reps: torch.Tensor, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    lo, hi = percentile_interval(reps, V.CI_LEVEL)
    valid = (~torch.isnan(reps)).sum(dim=0)
    return {
        n: {"value": float(point[i]), "lo": float(lo[i]), "hi": float(hi[i]), "valid_replicates": int(valid[i])}
        for i, n in enumerate(names)
    }


def _judge(attr: AuditedAttribute, stats: list[_GroupStats]) -> tuple[AttributeResult, dict]:
    judged = [s for s in stats if s.sufficient]
    insufficient = tuple(s.group for s in stats if not s.sufficient and s.count > 0)
    if len(judged) < 2:
        reason = (f"fewer than two groups have at least {V.MIN_GROUP_SIZE} applicants and {V.MIN_OUTCOME_COUNT} "
                  f"defaulters and non-defaulters ({len(judged)} do)")
        return AttributeResult(attr.name, attr.kind, tuple(s.group for s in judged), insufficient, None, {},
                               V.INSUFFICIENT, (reason,)), {}
    points = torch.stack([s.point for s in judged])  # (G, R)
    reps = torch.stack([s.reps for s in judged], dim=1)  # (B, G, R)
    disp = _interval_dict(disparities(points), disparities(reps), DISPARITIES)
    if math.isnan(disp["surrogate_fidelity_difference"]["value"]):
        del disp["surrogate_fidelity_difference"]  # no surrogate decisions were given
    names = tuple(s.group for s in judged)
    air_point, air_reps = adverse_impact_ratios(points), adverse_impact_ratios(reps)
    lo, hi = percentile_interval(air_reps, V.CI_LEVEL)
    air = {g: (float(air_point[i]), float(lo[i]), float(hi[i])) for i, g in enumerate(names)}
    # The lowest ratio is the demographic parity ratio; its interval is that of the min over groups.
    disp["lowest_adverse_impact_ratio"] = dict(disp["demographic_parity_ratio"])
    verdicts = [
        V.ratio_verdict(*(disp["lowest_adverse_impact_ratio"][k] for k in ("value", "lo", "hi"))),
        V.gap_verdict(*(disp["demographic_parity_difference"][k] for k in ("value", "lo", "hi")),
                      V.PARITY_GAP_MAX, "approval-rate gap (demographic parity difference)"),
        V.gap_verdict(*(disp["equalized_odds_difference"][k] for k in ("value", "lo", "hi")),
                      V.EQUALIZED_ODDS_GAP_MAX, "equalized odds difference"),
    ]
    lowest = names[int(torch.argmin(air_point))]
    reasons = [f"{v.upper()}: {text}" for v, text in verdicts]
    reasons.append(f"lowest approval rate: {lowest}; most favoured: {names[int(torch.argmax(air_point))]}")
    if insufficient:
        reasons.append(f"not judged (insufficient data): {', '.join(insufficient)}")
    result = AttributeResult(attr.name, attr.kind, names, insufficient, names[int(torch.argmax(air_point))], disp,
                             V.worst([v for v, _ in verdicts]), tuple(reasons))
    return result, air


def group_disparities(X_test: pd.DataFrame, y_test: np.ndarray, decline: np.ndarray, p_default: np.ndarray, *,
                      device: torch.device, seed: int, n_boot: int,
                      surrogate_decisions: np.ndarray | None = None,
                      attributes: tuple[AuditedAttribute, ...] | None = None,
                      include_overall: bool = True) -> tuple[pd.DataFrame, tuple[AttributeResult, ...]]:
    """Per-group rates with intervals (the table, led by an "overall" row) and per-attribute verdicts."""
    agree = None if surrogate_decisions is None else (np.asarray(surrogate_decisions) == np.asarray(decline)).astype(float)
    indicators = indicator_matrix(y_test, decline, p_default, agree, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    rows: list[dict] = []
    results = []
    with bootstrap_threads(device):
        if include_overall:
            everyone = np.full(len(X_test), OVERALL_GROUP, dtype=object)
            rows += _rows(OVERALL, OVERALL, _group_stats(indicators, everyone, (OVERALL_GROUP,), n_boot, gen), {})
        for attr in attributes or audited_attributes():
            stats = _group_stats(indicators, group_labels(X_test, attr), attr.groups, n_boot, gen)
            result, air = _judge(attr, stats)
            results.append(result)
            rows += _rows(attr.name, attr.kind, stats, air)
    return pd.DataFrame(rows), tuple(results)


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
    decline = model.predict(X_test)
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
        "interval": f"{V.CI_LEVEL:.0%} percentile bootstrap (NaN replicates, e.g. a resample without declines for "
                    "precision, are left out and counted in valid_replicates)",
        "roc_auc_method": "the same replicates: weighted Mann-Whitney statistic over the resampling multiplicities",
        "n_test": int(len(X_test)),
        "n_train": int(len(X_train)),
        "model_features": list(model.features),
        "threshold": float(model.threshold_),
    }
    return FairnessAudit(table=table, attributes=results, settings=settings, proxies=proxy_rows,
                         comparison=comparison, explanation=explanation, timings=timings)
