"""Counterfactuals: the smallest change a declined applicant could make that flips the decision.

A notice must say what would have changed the decision, and only in terms a
person can act on: history, age and personal attributes cannot change. The
schema says which model inputs are actionable and in which direction
(`Feature.mutable`, `Feature.direction`: the credit limit either way, the
latest repayment status only better, the latest payment only larger).

`counterfactuals` searches, for a batch of declined applicants at once on
the device, over candidate values seen in the training data (quantiles of
each actionable amount, rounded to two significant figures; every observed
code of a status) and prefers, in this order:

1. fewer changed features (one change before two, two before three);
2. a smaller change, measured in units of each feature's median absolute
   deviation in the training data (as DiCE does).

Every combination of candidate values is scored by the model, so within
those candidates the result is the best one, not a local optimum; each
answer is then verified with the model's own `predict_proba`. Where no
combination flips the decision, the result says so (`found` is False).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .. import schema as S
from ._function import ModelFunction, model_function
from ._method import Method, MethodResult, PortfolioInputs

MSG_NOT_DECLINED = (
    "counterfactuals explain declines, but the model approves {count} of the applicants passed"
    " (rows {rows}, probability below the threshold {threshold})"
)
MSG_NO_ACTIONABLE = "none of the model's inputs {features} is actionable in the schema (Feature.mutable)"
MSG_MISSING_COLUMNS = "{what} lacks model input column(s) {missing}"

QUANTILE_LEVELS = 64
# Margin below the threshold kept in the search, so the verification on the
# model's own device and precision cannot land back on the decline side.
_MARGIN = 1e-3
_JITTER = 1e-6
_ROWS_PER_CHUNK = {"cpu": 400_000, "cuda": 8_000_000}
NAME = "counterfactual"
TIMING = "lime_counterfactual"  # the summary's timing key, shared with LIME


@dataclass(frozen=True)
class Change:
    """One actionable feature changed, in the schema's words."""

    feature: str
    label: str
    before: float
    after: float

    @property
    def text(self) -> str:
        f = S.BY_NAME[self.feature]
        return f"{self.label}: {f.describe(self.before)} -> {f.describe(self.after)}"

    def to_dict(self) -> dict:
        return {"feature": self.feature, "label": self.label, "from": self.before, "to": self.after, "text": self.text}


@dataclass(frozen=True)
class Counterfactual:
    """What would have changed one applicant's decision, or that nothing actionable would have."""

    found: bool
    changes: tuple[Change, ...]
    probability: float | None  # the model's P(default) after the changes; None when none found
    original_probability: float
    actionable: tuple[str, ...]  # the features the search could change

    @property
    def text(self) -> str:
        if self.found:
            return "; ".join(c.text for c in self.changes)
        labels = ", ".join(S.BY_NAME[n].label.lower() for n in self.actionable)
        return f"No change to {labels} within the values seen in the data would have changed the decision"

    def to_dict(self) -> dict:
        """The `counterfactual` column's record (docs/outputs.md)."""
        return {"found": self.found, "changes": [c.to_dict() for c in self.changes], "probability": self.probability}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@dataclass(frozen=True)
class _Candidates:
    """Per actionable feature: candidate values (sorted), allowed direction, distance unit."""

    columns: tuple[int, ...]  # positions in model.features
    values: tuple[torch.Tensor, ...]
    directions: tuple[str, ...]
    units: tuple[float, ...]


def actionable_features(features: tuple[str, ...] | list[str]) -> list[str]:
    """The model inputs a person can change, per the schema."""
    return [n for n in features if S.BY_NAME[n].mutable and S.BY_NAME[n].direction != "none"]


def _round_significant(values: np.ndarray, digits: int = 2) -> np.ndarray:
    """Round to `digits` significant figures: NT$ 15,000 reads as a target, NT$ 14,837 does not."""
    magnitude = np.floor(np.log10(np.maximum(np.abs(values), 1.0)))
    step = 10.0 ** np.maximum(magnitude - digits + 1, 0)
    return np.round(values / step) * step


def _candidate_values(column: np.ndarray, feature: S.Feature) -> np.ndarray:
    """Values seen in training (codes), or rounded training quantiles kept inside the observed range."""
    if feature.is_categorical:
        return np.unique(column)
    levels = np.linspace(0.0, 1.0, QUANTILE_LEVELS)
    rounded = _round_significant(np.quantile(column, levels, method="inverted_cdf"))
    return np.unique(np.clip(rounded, column.min(), column.max()))


def _distance_unit(column: np.ndarray) -> float:
    mad = float(np.median(np.abs(column - np.median(column))))
    return mad if mad > 0 else float(column.std()) or 1.0


def _fit_candidates(features: list[str], train: np.ndarray, device: torch.device) -> _Candidates:
    names = actionable_features(features)
    if not names:
        raise ValueError(MSG_NO_ACTIONABLE.format(features=features))
    cols = tuple(features.index(n) for n in names)
    return _Candidates(
        columns=cols,
        values=tuple(
            torch.as_tensor(_candidate_values(train[:, j], S.BY_NAME[n]), dtype=torch.float64, device=device)
            for j, n in zip(cols, names, strict=True)
        ),
        directions=tuple(S.BY_NAME[n].direction for n in names),
        units=tuple(_distance_unit(train[:, j]) for j in cols),
    )


def _allowed(direction: str, current: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(m, G) mask of grid values that are a change in the allowed direction."""
    if direction == "increase":
        return grid > current
    if direction == "decrease":
        return grid < current
    return grid != current


def _search_subset(fn: ModelFunction, x: torch.Tensor, cand: _Candidates, subset: tuple[int, ...], threshold: float):
    """Best flip (cost, grid values) per applicant changing exactly the features in `subset`.

    x: (m, F) float64. Returns cost (m,) (inf where none) and the chosen values (m, len(subset)).
    """
    grids = torch.cartesian_prod(*(cand.values[k] for k in subset)).view(-1, len(subset))  # (G, k)
    m, g = len(x), len(grids)
    ok = torch.ones((m, g), dtype=torch.bool, device=x.device)
    cost = torch.zeros((m, g), dtype=torch.float64, device=x.device)
    rows = x[:, None, :].expand(m, g, x.shape[1]).clone()
    for i, k in enumerate(subset):
        col = cand.columns[k]
        current = x[:, col : col + 1]
        ok &= _allowed(cand.directions[k], current, grids[None, :, i])
        cost += (grids[None, :, i] - current).abs() / cand.units[k]
        rows[:, :, col] = grids[None, :, i]
    p = fn(rows.view(-1, x.shape[1]).to(fn.dtype)).view(m, g)
    ok &= p < threshold - _MARGIN
    cost = torch.where(ok, cost, torch.inf)
    best = cost.argmin(1)
    return cost.gather(1, best[:, None]).squeeze(1), grids[best]


@torch.no_grad()
def _search(
    fn: ModelFunction, x: torch.Tensor, cand: _Candidates, threshold: float, budget: int
) -> list[dict[int, float] | None]:
    """Per applicant: {feature column: new value} of the sparsest, then cheapest, flip; None if none.

    Sizes are tried in turn, each only for the applicants no smaller change
    flips; applicants are chunked so a chunk scores at most `budget` rows.
    """
    result: list[dict[int, float] | None] = [None] * len(x)
    todo = np.arange(len(x))
    n = len(cand.columns)
    for size in range(1, n + 1):
        if len(todo) == 0:
            break
        best_cost = np.full(len(todo), np.inf)
        for subset in itertools.combinations(range(n), size):
            step = max(1, budget // int(np.prod([len(cand.values[k]) for k in subset])))
            for start in range(0, len(todo), step):
                part = todo[start : start + step]
                cost, values = _search_subset(fn, x[torch.as_tensor(part, device=x.device)], cand, subset, threshold)
                cost, values = cost.cpu().numpy(), values.cpu().numpy()
                for i in np.flatnonzero(cost < best_cost[start : start + step]):
                    best_cost[start + i] = cost[i]
                    result[part[i]] = {cand.columns[k]: float(values[i, s]) for s, k in enumerate(subset)}
        todo = todo[np.isinf(best_cost)]
    return result


def _matrix(frame: pd.DataFrame, features: list[str], what: str) -> np.ndarray:
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(MSG_MISSING_COLUMNS.format(what=what, missing=missing))
    return frame[features].to_numpy(np.float64)


def counterfactuals(
    model,
    frame_declined: pd.DataFrame,
    training_frame: pd.DataFrame,
    device: torch.device | str,
    seed: int = 0,
) -> list[Counterfactual]:
    """One `Counterfactual` per row of `frame_declined`, each verified with `model.predict_proba`.

    The search is exhaustive over the candidate grid, hence deterministic;
    `seed` is accepted for the common explainer signature and not used.
    """
    del seed
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
    cand = _fit_candidates(features, train, device)
    budget = _ROWS_PER_CHUNK["cuda" if device.type == "cuda" else "cpu"]
    choices = _search(fn, torch.as_tensor(x_all, device=device), cand, model.threshold_, budget)
    return _verified(model, frame_declined, features, x_all, original, choices, cand)


def _verified(model, frame, features, x_all, original, choices, cand) -> list[Counterfactual]:
    """Apply each chosen change to the applicant's row and ask the model itself."""
    changed = frame[features].copy()
    for i, choice in enumerate(choices):
        for col, value in (choice or {}).items():
            changed.iat[i, col] = changed.dtypes.iloc[col].type(value)  # status codes stay integers
    p = model.predict_proba(changed)[:, 1]
    actionable = tuple(features[c] for c in cand.columns)
    out = []
    for i, choice in enumerate(choices):
        flips = choice is not None and p[i] < model.threshold_
        changes = tuple(
            Change(features[c], S.BY_NAME[features[c]].label, float(x_all[i, c]), v)
            for c, v in sorted((choice or {}).items())
        )
        out.append(
            Counterfactual(
                found=bool(flips),
                changes=changes if flips else (),
                probability=float(p[i]) if flips else None,
                original_probability=float(original[i]),
                actionable=actionable,
            )
        )
    return out


def _run(inputs: PortfolioInputs) -> MethodResult:
    """Counterfactuals of the declined rows, as the `counterfactual` column's JSON records (None elsewhere)."""
    records: list[str | None] = [None] * inputs.rows
    found = 0
    rows = inputs.declined
    if len(rows):
        results = counterfactuals(
            inputs.model, inputs.frame.iloc[rows], inputs.training_frame, inputs.device, inputs.seed
        )
        for r, cf in zip(rows, results, strict=True):
            records[r] = cf.to_json()
            found += int(cf.found)
    return MethodResult(records={NAME: records}, details={"counterfactuals": {"declined": len(rows), "found": found}})


def _merge(summaries: list[dict]) -> dict:
    """Counts add up over chunks."""
    return {
        "counterfactuals": {
            key: int(sum(s["counterfactuals"][key] for s in summaries)) for key in ("declined", "found")
        }
    }


METHOD = Method(name=NAME, run=_run, timing=TIMING, merge_details=_merge)
