"""Exact Shapley values by enumerating every coalition: grouped values, and a reference.

With P players there are 2^P coalitions. For the schema's feature groups
(5 groups among the model inputs: 32 coalitions) this is cheap for the whole
portfolio, so grouped values are exact, not estimated. For single features
it is the ground truth used to check the Kernel SHAP estimators when P is
small enough (tests) or a device is large enough.

Grouped values are enumerated for every kind of model, tree ensembles
included: a group's Shapley value is not the sum of its features' Shapley
values (for f = x1*x2*x3 with groups {x1, x2} and {x3}, each feature gets 1/3
so the sum gives the first group 2/3, while the two-player game gives each
group 1/2), so TreeSHAP's per-feature values cannot be summed into them.
"""

from __future__ import annotations

from math import factorial

import numpy as np
import pandas as pd
import torch

from .. import schema as S
from ..columns import explanation_column
from ._function import model_function
from ._game import coalition_values
from ._importance import mean_abs
from ._method import Method, MethodResult, PortfolioInputs
from ._values import Attributions

MSG_TOO_MANY_PLAYERS = "exact enumeration of {p} players needs 2^{p} coalitions; at most {limit} players are allowed"
MSG_GROUP_UNKNOWN = "group {group!r} names feature(s) {missing} that are not model inputs {features}"
MSG_GROUP_COVER = "groups must cover every model input exactly once; not covered: {missing}, repeated: {repeated}"
MAX_EXACT_PLAYERS = 24
NAME = "shapgroup"
LIMITATION = "Exact Shapley values of feature groups; a group's value is not the sum of its features' values."


def all_coalitions(p: int) -> np.ndarray:
    """(2^p, p) bool; row r holds the players whose bit is set in r."""
    if p > MAX_EXACT_PLAYERS:
        raise ValueError(MSG_TOO_MANY_PLAYERS.format(p=p, limit=MAX_EXACT_PLAYERS))
    r = np.arange(2**p)[:, None]
    return ((r >> np.arange(p)[None, :]) & 1).astype(bool)


def shapley_from_table(values: np.ndarray) -> np.ndarray:
    """phi_j = sum_{S not containing j} |S|!(p-|S|-1)!/p! (v(S+j) - v(S)); `values` (n, 2^p) by bitmask."""
    n, size = values.shape
    p = int(np.log2(size))
    sizes = np.array([bin(r).count("1") for r in range(size)])
    weight = np.array([factorial(s) * factorial(p - s - 1) / factorial(p) for s in range(p)])
    out = np.empty((n, p))
    for j in range(p):
        without = np.flatnonzero(((np.arange(size) >> j) & 1) == 0)
        out[:, j] = (values[:, without | (1 << j)] - values[:, without]) @ weight[sizes[without]]
    return out


def model_groups(features: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
    """The schema's feature groups restricted to the model inputs, in schema order."""
    return S.feature_groups(tuple(features))


def _group_masks(features: list[str], groups: dict[str, list[str]]) -> np.ndarray:
    members = [m for names in groups.values() for m in names]
    for g, names in groups.items():
        missing = [m for m in names if m not in features]
        if missing:
            raise ValueError(MSG_GROUP_UNKNOWN.format(group=g, missing=missing, features=features))
    repeated = sorted({m for m in members if members.count(m) > 1})
    uncovered = [f for f in features if f not in members]
    if repeated or uncovered:
        raise ValueError(MSG_GROUP_COVER.format(missing=uncovered, repeated=repeated))
    player = np.array([[f in names for f in features] for names in groups.values()])  # (P, F)
    return all_coalitions(len(groups)) @ player.astype(int) > 0  # (2^P, F)


@torch.no_grad()
def exact_shap(
    model,
    frame: pd.DataFrame,
    background: pd.DataFrame,
    device: torch.device | str = "cpu",
    groups: dict[str, list[str]] | None = None,
) -> Attributions:
    """Exact interventional Shapley values of P(default), per feature or per group of features.

    `groups=None` makes every model input its own player (2^F coalitions:
    only for small F or a large device); otherwise one player per group.
    """
    fn = model_function(model, device)
    features = list(fn.features)
    players = groups if groups is not None else {f: [f] for f in features}
    masks = _group_masks(features, players)
    x = fn.tensor(frame)
    bg = fn.tensor(background, "background")
    table = coalition_values(fn, x, bg, torch.as_tensor(masks, device=fn.device)).cpu().numpy()
    fx = fn.predict(x).cpu().numpy()
    base = float(fn.predict(bg).mean())
    # The full and empty coalitions are f(x) and the base by definition; using the direct
    # predictions there makes the efficiency identity exact, not just up to float32 rounding.
    table[:, -1], table[:, 0] = fx, base
    return Attributions(
        values=shapley_from_table(table),
        base=base,
        output=fx,
        features=tuple(players),
        method=f"exact interventional Shapley over {len(players)} {'groups' if groups else 'features'}"
        f" ({len(masks)} coalitions) x {len(background)} background rows",
    )


def grouped_shap(
    model, frame: pd.DataFrame, background: pd.DataFrame, device: torch.device | str = "cpu"
) -> Attributions:
    """Exact Shapley values of the schema's feature groups ("repayment history", ...)."""
    return exact_shap(model, frame, background, device, groups=model_groups(model.features))


def _run(inputs: PortfolioInputs) -> MethodResult:
    grouped = grouped_shap(inputs.model, inputs.frame, inputs.background, inputs.device)
    return MethodResult(
        attributions=grouped,
        columns={explanation_column(NAME, g): grouped.values[:, j] for j, g in enumerate(grouped.features)},
        description=grouped.method,
        details={
            "group_importance": mean_abs(grouped.values, grouped.features, NAME),
            "groups": {g: [f for f in inputs.features if S.BY_NAME[f].group == g] for g in grouped.features},
        },
    )


def _merge(summaries: list[dict]) -> dict:
    """Group importance of the portfolio: the chunks' means weighted by their applicants."""
    weights = [s["applicants"] for s in summaries]
    parts = [s["group_importance"] for s in summaries]
    total = float(sum(weights))
    return {
        "group_importance": {g: sum(w * p[g] for p, w in zip(parts, weights, strict=True)) / total for g in parts[0]}
    }


METHOD = Method(name=NAME, run=_run, limitation=LIMITATION, merge_details=_merge)
