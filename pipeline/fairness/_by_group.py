"""Per-group rates with intervals (the fairness table) and each attribute's disparities and verdict.

`group_disparities` is the step both the audit and the mitigation comparison
run: it resamples every group, gathers each attribute's judged groups into
one `GroupRates`, reads the named disparities and adverse impact ratios off
it, and applies the verdict rules. It lives apart from `audit_fairness` so
that the comparison of alternative models can reuse it without importing the
audit that calls the comparison (no import cycle).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..constants import CI_LEVEL, INSUFFICIENT, MIN_GROUP_SIZE, MIN_OUTCOME_COUNT
from . import _verdicts as V
from ._bootstrap import RATES, bootstrap_threads, group_rates, indicator_matrix, percentile_interval
from ._disparities import adverse_impact_ratios, disparities
from ._groups import OVERALL, OVERALL_GROUP, AuditedAttribute, audited_attributes, group_labels
from ._rates import Estimate, GroupRates

STATUS_OK = "ok"
LOWEST_AIR = "lowest_adverse_impact_ratio"
# Read off the same computation as the demographic parity ratio (see _disparities.py).
LOWEST_AIR_SOURCE = "demographic_parity_ratio"


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
class _GroupStats:
    group: str
    count: int
    defaults: int
    declines: int
    sufficient: bool
    point: torch.Tensor  # (R,)
    reps: torch.Tensor | None  # (B, R) for judged groups


def _group_stats(indicators: torch.Tensor, labels: np.ndarray, groups: tuple[str, ...], n_boot: int,
                 gen: torch.Generator, weights: torch.Tensor | None = None) -> list[_GroupStats]:
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
        point, reps = group_rates(indicators, rows, n_boot if ok else 0, gen, weights)
        out.append(_GroupStats(g, count, defaults, declines, ok, point, reps if ok else None))
    return out


def _rows(attribute: str, kind: str, stats: list[_GroupStats], air: dict[str, tuple[float, float, float]]) -> list[dict]:
    rows = []
    for s in stats:
        row: dict[str, Any] = {
            "attribute": attribute,
            "kind": kind,
            "group": s.group,
            "status": STATUS_OK if s.sufficient else INSUFFICIENT,
            "count": s.count,
            "defaults": s.defaults,
            "declines": s.declines,
        }
        lo, hi = percentile_interval(s.reps, CI_LEVEL) if s.reps is not None else (None, None)
        for i, r in enumerate(RATES):
            row[r] = float(s.point[i])
            row[f"{r}_lo"] = float(lo[i]) if lo is not None else math.nan
            row[f"{r}_hi"] = float(hi[i]) if hi is not None else math.nan
        a = air.get(s.group, (math.nan, math.nan, math.nan))
        row["adverse_impact_ratio"], row["adverse_impact_ratio_lo"], row["adverse_impact_ratio_hi"] = a
        rows.append(row)
    return rows


def _intervals(estimates: Mapping[str, Estimate]) -> dict[str, dict[str, float]]:
    """value, interval and count of defined replicates of each scalar statistic (each by its own method)."""
    out = {}
    for name, e in estimates.items():
        lo, hi = e.interval(CI_LEVEL)
        out[name] = {"value": float(e.value), "lo": float(lo), "hi": float(hi),
                     "valid_replicates": int((~torch.isnan(e.replicates)).sum())}
    return out


def _criteria(disp: dict[str, dict[str, float]]) -> list[tuple[str, str]]:
    """(verdict, reason) of each criterion: four-fifths ratio, parity gap, equalized odds gap."""
    return [c.judge(disp[c.disparity]["value"], disp[c.disparity]["lo"], disp[c.disparity]["hi"]) for c in V.CRITERIA]


def _judge(attr: AuditedAttribute, stats: list[_GroupStats]) -> tuple[AttributeResult, dict]:
    judged = [s for s in stats if s.sufficient]
    insufficient = tuple(s.group for s in stats if not s.sufficient and s.count > 0)
    if len(judged) < 2:
        reason = (f"fewer than two groups have at least {MIN_GROUP_SIZE} applicants and {MIN_OUTCOME_COUNT} "
                  f"defaulters and non-defaulters ({len(judged)} do)")
        return AttributeResult(attr.name, attr.kind, tuple(s.group for s in judged), insufficient, None, {},
                               INSUFFICIENT, (reason,)), {}
    rates = GroupRates(tuple(s.group for s in judged), torch.stack([s.point for s in judged]),
                       torch.stack([s.reps for s in judged], dim=1))
    disp = _intervals(disparities(rates))
    if math.isnan(disp["surrogate_fidelity_difference"]["value"]):
        del disp["surrogate_fidelity_difference"]  # no surrogate decisions were given
    disp[LOWEST_AIR] = dict(disp[LOWEST_AIR_SOURCE])
    names = rates.groups
    air = adverse_impact_ratios(rates)
    lo, hi = air.interval(CI_LEVEL)
    air_by_group = {g: (float(air.value[i]), float(lo[i]), float(hi[i])) for i, g in enumerate(names)}
    verdicts = _criteria(disp)
    favoured = names[int(torch.argmax(air.value))]
    reasons = [f"{v.upper()}: {text}" for v, text in verdicts]
    reasons.append(f"lowest approval rate: {names[int(torch.argmin(air.value))]}; most favoured: {favoured}")
    if insufficient:
        reasons.append(f"not judged (insufficient data): {', '.join(insufficient)}")
    result = AttributeResult(attr.name, attr.kind, names, insufficient, favoured, disp,
                             V.worst([v for v, _ in verdicts]), tuple(reasons))
    return result, air_by_group


def group_disparities(X_test: pd.DataFrame, y_test: np.ndarray, decline: np.ndarray, p_default: np.ndarray, *,
                      device: torch.device, seed: int, n_boot: int,
                      surrogate_decisions: np.ndarray | None = None,
                      attributes: tuple[AuditedAttribute, ...] | None = None,
                      include_overall: bool = True,
                      row_weights: np.ndarray | None = None) -> tuple[pd.DataFrame, tuple[AttributeResult, ...]]:
    """Per-group rates with intervals (the table, led by an "overall" row) and per-attribute verdicts.

    `row_weights` (importance weights, one per row) measure a reweighted population: the
    shifted portfolios of `audit_shift`. Counts and the minimum-size rules stay on the rows
    actually observed (a weight does not add evidence), and the same seed draws the same
    resamples with or without weights, so shifted and unshifted figures are paired.
    """
    agree = None if surrogate_decisions is None else (np.asarray(surrogate_decisions) == np.asarray(decline)).astype(float)
    indicators = indicator_matrix(y_test, decline, p_default, agree, device)
    weights = None if row_weights is None else torch.as_tensor(np.asarray(row_weights, dtype=np.float64), device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    rows: list[dict] = []
    results = []
    with bootstrap_threads(device):
        if include_overall:
            everyone = np.full(len(X_test), OVERALL_GROUP, dtype=object)
            rows += _rows(OVERALL, OVERALL, _group_stats(indicators, everyone, (OVERALL_GROUP,), n_boot, gen, weights),
                          {})
        for attr in attributes or audited_attributes():
            stats = _group_stats(indicators, group_labels(X_test, attr), attr.groups, n_boot, gen, weights)
            result, air = _judge(attr, stats)
            results.append(result)
            rows += _rows(attr.name, attr.kind, stats, air)
    return pd.DataFrame(rows), tuple(results)
