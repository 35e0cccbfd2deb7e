"""Counterfactuals: the smallest change a declined applicant could really have made that flips the decision.

A notice must say what would have changed the decision, and only in terms a
person could act on, stated honestly (DESIGN.md, "What trust means here").
Everything about what may change lives in the schema as data
(`pipeline.schema`: `Feature.changed_by`, `direction`, `improves_to`,
`max_factor`, `pays`); this module searches within it and
`_plausibility.violations` is the one evaluator of those rules:

- only the applicant's own recent actions (last month's repayment status,
  only to a status their payments could have made it, and last month's
  payment, only larger and never more than was owed plus the stated slack)
  are searched first;
- the credit limit, which the lender sets, is searched only for applicants
  whom no action of their own would have approved, within the declared
  factor (at most doubled or halved), and is marked `by="lender"` so a
  notice offers it as a limit they could request, never as their action;
- relations between fields hold in every candidate: "paid in full" only
  when the payment covers the bill, no months late once everything owed was
  paid.

Candidates per applicant are values seen in training (quantiles of each
amount rounded to two significant figures, plus the applicant's own bill as
a payment: "pay the whole bill"), or the statuses its `improves_to` lists.
The search prefers, in this order: the applicant's own actions over a
limit change; fewer changed features; a smaller change (amounts in units of
their median absolute deviation in training, as DiCE does; a status by its
place in `improves_to`, easiest first). Every combination is scored, so the
result is the best within the candidates. Each answer is then verified with
the model's own `predict_proba`: it must land at least `margin` below the
threshold (the notice states that margin) and break no rule; otherwise the
result says that nothing plausible was found (`found` False).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .. import schema as S
from ..constants import COUNTERFACTUAL_MARGIN
from ._function import ModelFunction, model_function
from ._method import Method, MethodResult, PortfolioInputs
from ._plausibility import any_violation, plausibility_violations, violations

MSG_NOT_DECLINED = (
    "counterfactuals explain declines, but the model approves {count} of the applicants passed"
    " (rows {rows}, probability below the threshold {threshold})"
)
MSG_NO_ACTIONABLE = "none of the model's inputs {features} is actionable in the schema (Feature.changed_by)"
MSG_MISSING_COLUMNS = "{what} lacks model input column(s) {missing}"
MSG_MARGIN = "the counterfactual margin must be at least 0 and below the threshold {threshold}, got {margin}"

QUANTILE_LEVELS = 64
# The search keeps this much more margin than it promises, so the verification on the model's own
# device and precision cannot land between the promised margin and the threshold.
_SEARCH_SLACK = 1e-4
_JITTER = 1e-6
_ROWS_PER_CHUNK = {"cpu": 400_000, "cuda": 8_000_000}
NAME = "counterfactual"
TIMING = "lime_counterfactual"  # the summary's timing key, shared with LIME
BY_APPLICANT, BY_LENDER = "applicant", "lender"


@dataclass(frozen=True)
class Change:
    """One feature changed, in the schema's words; `by` says who controls it (applicant or lender)."""

    feature: str
    label: str
    before: float
    after: float
    by: str = BY_APPLICANT

    @property
    def text(self) -> str:
        f = S.BY_NAME[self.feature]
        return f"{self.label}: {f.describe(self.before)} -> {f.describe(self.after)}"

    def to_dict(self) -> dict:
        return {"feature": self.feature, "label": self.label, "from": self.before, "to": self.after,
                "by": self.by, "text": self.text}


@dataclass(frozen=True)
class Counterfactual:
    """What would have changed one applicant's decision, or that no plausible change would have."""

    found: bool
    changes: tuple[Change, ...]
    probability: float | None  # the model's P(default) after the changes; None when none found
    original_probability: float
    actionable: tuple[str, ...]  # the features the search could change
    margin: float = COUNTERFACTUAL_MARGIN  # `probability` is at most threshold - margin

    @property
    def by_applicant(self) -> bool:
        """Found with the applicant's own actions only (no change the lender controls)."""
        return self.found and all(c.by == BY_APPLICANT for c in self.changes)

    @property
    def text(self) -> str:
        if self.found:
            return "; ".join(c.text for c in self.changes)
        labels = ", ".join(S.BY_NAME[n].label.lower() for n in self.actionable)
        return f"No plausible change to {labels} would have changed the decision"

    def to_dict(self) -> dict:
        """The `counterfactual` column's record (docs/outputs.md)."""
        return {"found": self.found, "changes": [c.to_dict() for c in self.changes], "probability": self.probability,
                "margin": self.margin}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def actionable_features(features: tuple[str, ...] | list[str]) -> list[str]:
    """The model inputs someone (the applicant or the lender) can change going forward, per the schema."""
    return [n for n in features if S.BY_NAME[n].mutable]


def _round_significant(values: np.ndarray, digits: int = 2) -> np.ndarray:
    """Round to `digits` significant figures: NT$ 15,000 reads as a target, NT$ 14,837 does not."""
    magnitude = np.floor(np.log10(np.maximum(np.abs(values), 1.0)))
    step = 10.0 ** np.maximum(magnitude - digits + 1, 0)
    return np.round(values / step) * step


def _grid(column: np.ndarray, feature: S.Feature) -> np.ndarray:
    """Every code of a status (the schema's and those seen), or rounded training quantiles in the observed range."""
    if feature.is_categorical:
        return np.union1d(np.unique(column), np.array(sorted(feature.allowed_codes), dtype=np.float64))
    levels = np.linspace(0.0, 1.0, QUANTILE_LEVELS)
    rounded = _round_significant(np.quantile(column, levels, method="inverted_cdf"))
    return np.unique(np.clip(rounded, column.min(), column.max()))


def _distance_unit(column: np.ndarray) -> float:
    mad = float(np.median(np.abs(column - np.median(column))))
    return mad if mad > 0 else float(column.std()) or 1.0


@dataclass(frozen=True)
class _Axis:
    """One actionable feature: where it sits, who controls it, its candidate grid and distance unit."""

    column: int  # position in model.features
    feature: S.Feature
    grid: torch.Tensor  # (G,) float64
    unit: float
    max_factor: float | None

    @property
    def by(self) -> str:
        return BY_LENDER if self.feature.changed_by == BY_LENDER else BY_APPLICANT


def _axes(features: list[str], train: np.ndarray, device: torch.device,
          max_factor: Mapping[str, float]) -> tuple[_Axis, ...]:
    names = actionable_features(features)
    if not names:
        raise ValueError(MSG_NO_ACTIONABLE.format(features=features))
    out = []
    for name in names:
        j, f = features.index(name), S.BY_NAME[name]
        out.append(_Axis(j, f, torch.as_tensor(_grid(train[:, j], f), dtype=torch.float64, device=device),
                         _distance_unit(train[:, j]), max_factor.get(name, f.max_factor)))
    return tuple(out)


def _effort(feature: S.Feature, current: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(m, G) cost of moving a status from `current` (m, 1) to each grid code: place in improves_to (1 = easiest)."""
    cost = torch.full((len(current), len(grid)), torch.inf, dtype=torch.float64, device=grid.device)
    for code, targets in feature.improves_to.items():
        rows = current[:, 0] == code
        for rank, target in enumerate(targets, start=1):
            cost[rows[:, None] & (grid == target)[None, :]] = float(rank)
    return cost


def _candidates(axis: _Axis, x: torch.Tensor, features: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per applicant of x (m, F): candidate values (m, G') and their cost (m, G'), inf where not allowed.

    Allowed here: the single-feature rules (direction, reachable status, factor, range, a payment
    at most what was owed plus the slack); rules across fields are checked on whole candidates.
    """
    f, current = axis.feature, x[:, axis.column : axis.column + 1]
    values = axis.grid[None, :].expand(len(x), -1)
    if f.pays is not None and f.pays.bill in features:
        # paying the whole bill, or what each status needs (the minimum), is always a candidate
        owed = x[:, features.index(f.pays.bill)].clamp(min=0)[:, None]
        shares = sorted({share for share in f.pays.min_share.values()})
        values = torch.cat([values, *(torch.ceil(owed * share) for share in shares)], dim=1)
    if f.improves_to:
        cost = _effort(f, current, values[0])
    else:
        cost = (values - current).abs() / axis.unit
        if f.direction == "increase":
            cost = torch.where(values > current, cost, torch.inf)
        elif f.direction == "decrease":
            cost = torch.where(values < current, cost, torch.inf)
    cost = torch.where(values != current, cost, torch.inf)
    single = violations({f.name: current}, {f.name: values}, {f.name: axis.max_factor} if axis.max_factor else None)
    if f.pays is not None and f.pays.bill in features:
        owed = x[:, features.index(f.pays.bill)].clamp(min=0)[:, None]
        single["payment_above_owed"] = values > owed * (1 + f.pays.slack_fraction) + f.pays.slack_amount
    cost = torch.where(any_violation(single), torch.inf, cost)
    return values, cost


def _search_subset(fn: ModelFunction, x: torch.Tensor, axes: tuple[_Axis, ...], features: list[str],
                   limit: float, max_factor: Mapping[str, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Best plausible flip per applicant changing exactly `axes`: cost (m,) (inf where none), values (m, k)."""
    cands = [_candidates(a, x, features) for a in axes]
    index = torch.cartesian_prod(*(torch.arange(v.shape[1], device=x.device) for v, _ in cands)).view(-1, len(axes))
    m, g = len(x), len(index)
    cost = torch.zeros((m, g), dtype=torch.float64, device=x.device)
    chosen = []
    for k, (values, c) in enumerate(cands):
        cost += c[:, index[:, k]]
        chosen.append(values[:, index[:, k]])
    before = {n: x[:, j : j + 1] for j, n in enumerate(features)}
    after = dict(before)
    for a, v in zip(axes, chosen, strict=True):
        after[a.feature.name] = v
    cost = torch.where(any_violation(violations(before, after, max_factor)), torch.inf, cost)
    keep = torch.isfinite(cost)
    if keep.any():
        rows = x[:, None, :].expand(m, g, x.shape[1]).clone()
        for a, v in zip(axes, chosen, strict=True):
            rows[:, :, a.column] = v
        p = torch.full((m, g), torch.inf, dtype=torch.float64, device=x.device)
        p[keep] = fn.predict(rows[keep].to(fn.dtype))
        cost = torch.where(p <= limit, cost, torch.inf)
    best = cost.argmin(1)
    values = torch.stack([v.gather(1, best[:, None]).squeeze(1) for v in chosen], dim=1)
    return cost.gather(1, best[:, None]).squeeze(1), values


def _subsets(axes: tuple[_Axis, ...]) -> list[list[tuple[_Axis, ...]]]:
    """Tiers of subsets, each tier by size: the applicant's own actions, then those with a lender change."""
    own = [a for a in axes if a.by == BY_APPLICANT]
    tiers = [[s for size in range(1, len(own) + 1) for s in itertools.combinations(own, size)]]
    with_lender = [s for size in range(1, len(axes) + 1) for s in itertools.combinations(axes, size)
                   if any(a.by == BY_LENDER for a in s)]
    tiers.append(sorted(with_lender, key=len))
    return [t for t in tiers if t]


@torch.no_grad()
def _search(fn: ModelFunction, x: torch.Tensor, axes: tuple[_Axis, ...], features: list[str], limit: float,
            budget: int, max_factor: Mapping[str, float]) -> list[dict[int, float] | None]:
    """Per applicant: {feature column: new value} of the preferred plausible flip; None if none.

    Within a tier, sizes are tried in turn, each only for the applicants no
    smaller change flips; applicants are chunked so a chunk scores at most
    `budget` candidate rows.
    """
    result: list[dict[int, float] | None] = [None] * len(x)
    todo = np.arange(len(x))
    for tier in _subsets(axes):
        for size in sorted({len(s) for s in tier}):
            if len(todo) == 0:
                return result
            best_cost = np.full(len(todo), np.inf)
            for subset in (s for s in tier if len(s) == size):
                width = int(np.prod([len(a.grid) + 4 for a in subset]))
                step = max(1, budget // width)
                for start in range(0, len(todo), step):
                    part = todo[start : start + step]
                    rows = x[torch.as_tensor(part, device=x.device)]
                    cost, values = _search_subset(fn, rows, subset, features, limit, max_factor)
                    cost, values = cost.cpu().numpy(), values.cpu().numpy()
                    for i in np.flatnonzero(cost < best_cost[start : start + step]):
                        best_cost[start + i] = cost[i]
                        result[part[i]] = {a.column: float(values[i, s]) for s, a in enumerate(subset)}
            todo = todo[np.isinf(best_cost)]
    return result


def _matrix(frame: pd.DataFrame, features: list[str], what: str) -> np.ndarray:
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(MSG_MISSING_COLUMNS.format(what=what, missing=missing))
    return frame[features].to_numpy(np.float64)


def limit_factors(max_limit_factor: float | None) -> dict[str, float]:
    """The configured factor for every lender-controlled amount with a declared factor (`{}`: the schema's)."""
    if max_limit_factor is None:
        return {}
    return {f.name: float(max_limit_factor) for f in S.FEATURES if f.changed_by == BY_LENDER and f.max_factor}


def counterfactuals(
    model,
    frame_declined: pd.DataFrame,
    training_frame: pd.DataFrame,
    device: torch.device | str,
    seed: int = 0,
    margin: float = COUNTERFACTUAL_MARGIN,
    max_limit_factor: float | None = None,
) -> list[Counterfactual]:
    """One `Counterfactual` per row of `frame_declined`, each verified with `model.predict_proba`.

    `margin`: a counterfactual must bring P(default) to at most threshold -
    margin. `max_limit_factor`: overrides the schema's factor for the credit
    limit. The search is exhaustive over the candidates, hence deterministic;
    `seed` is accepted for the common explainer signature and not used.
    """
    del seed
    if not 0 <= margin < model.threshold_:
        raise ValueError(MSG_MARGIN.format(threshold=model.threshold_, margin=margin))
    fn = model_function(model, device)
    device, features = fn.device, list(fn.features)
    x_all = _matrix(frame_declined, features, "frame_declined")
    train = _matrix(training_frame, features, "training_frame")
    original = model.predict_proba(frame_declined)[:, 1]
    # a hair below the threshold is float jitter between batchings, not an approval
    approved = np.flatnonzero(original < model.threshold_ - _JITTER)
    if len(approved):
        raise ValueError(
            MSG_NOT_DECLINED.format(count=len(approved), rows=approved[:10].tolist(), threshold=model.threshold_)
        )
    factors = limit_factors(max_limit_factor)
    axes = _axes(features, train, device, factors)
    budget = _ROWS_PER_CHUNK["cuda" if device.type == "cuda" else "cpu"]
    limit = model.threshold_ - margin - _SEARCH_SLACK
    choices = _search(fn, torch.as_tensor(x_all, device=device), axes, features, limit, budget, factors)
    return _verified(model, frame_declined, features, x_all, original, choices, axes, margin, factors)


def _verified(model, frame, features, x_all, original, choices, axes, margin, factors) -> list[Counterfactual]:
    """Apply each chosen change to the applicant's row, ask the model itself and check every rule again."""
    changed = frame[features].copy()
    for i, choice in enumerate(choices):
        for col, value in (choice or {}).items():
            changed.iat[i, col] = changed.dtypes.iloc[col].type(value)  # status codes stay integers
    p = model.predict_proba(changed)[:, 1]
    broken = plausibility_violations(frame[features], changed, features, factors).any(axis=1).to_numpy()
    by = {a.column: a.by for a in axes}
    actionable = tuple(features[a.column] for a in axes)
    out = []
    for i, choice in enumerate(choices):
        flips = choice is not None and p[i] <= model.threshold_ - margin and not broken[i]
        changes = tuple(
            Change(features[c], S.BY_NAME[features[c]].label, float(x_all[i, c]), v, by[c])
            for c, v in sorted((choice or {}).items())
        )
        out.append(
            Counterfactual(
                found=bool(flips),
                changes=changes if flips else (),
                probability=float(p[i]) if flips else None,
                original_probability=float(original[i]),
                actionable=actionable,
                margin=margin,
            )
        )
    return out


def _run(inputs: PortfolioInputs) -> MethodResult:
    """Counterfactuals of the declined rows, as the `counterfactual` column's JSON records (None elsewhere)."""
    records: list[str | None] = [None] * inputs.rows
    found = by_applicant = broken = 0
    rows = inputs.declined
    margin, factor = inputs.counterfactual_margin, inputs.max_limit_factor
    if len(rows):
        frame = inputs.frame.iloc[rows]
        results = counterfactuals(inputs.model, frame, inputs.training_frame, inputs.device, inputs.seed,
                                  margin=margin, max_limit_factor=factor)
        features = list(inputs.features)
        after = frame[features].copy()
        for k, (r, cf) in enumerate(zip(rows, results, strict=True)):
            records[r] = cf.to_json()
            found += int(cf.found)
            by_applicant += int(cf.by_applicant)
            for c in cf.changes:
                after.iat[k, features.index(c.feature)] = c.after
        # an independent recount over the written records: zero unless the search has a bug
        broken = int(plausibility_violations(frame[features], after, features, limit_factors(factor)).any(axis=1).sum())
    declared = [f.max_factor for f in S.FEATURES if f.changed_by == BY_LENDER and f.max_factor]
    details = {"declined": len(rows), "found": found, "found_by_applicant": by_applicant, "violations": broken,
               "margin": margin, "max_limit_factor": factor if factor is not None else (declared or [None])[0]}
    return MethodResult(records={NAME: records}, details={"counterfactuals": details})


_COUNTS = ("declined", "found", "found_by_applicant", "violations")


def _merge(summaries: list[dict]) -> dict:
    """Counts add up over chunks; the settings are the same in every chunk."""
    first = summaries[0]["counterfactuals"]
    merged = {key: int(sum(s["counterfactuals"][key] for s in summaries)) for key in _COUNTS}
    return {"counterfactuals": {**first, **merged}}


METHOD = Method(name=NAME, run=_run, timing=TIMING, merge_details=_merge)
