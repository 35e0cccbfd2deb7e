"""The methods `explain_portfolio` runs, in order: the one list to edit to add or remove a method.

The order is the order of the global importances (and so of the audit
report's importance chart and agreement table) and of the limitations.
Each entry is its module's `METHOD` (see `_method.Method`).
"""

from __future__ import annotations

from . import (
    _counterfactual,
    _exact,
    _integrated_gradients,
    _lime,
    _loss_gradients,
    _saliency,
    _shap,
    _tree,
)
from ._method import Method

METHODS: tuple[Method, ...] = (
    _shap.METHOD,
    _exact.METHOD,
    _tree.METHOD,
    _saliency.METHOD,
    _integrated_gradients.METHOD,
    _lime.METHOD,
    _counterfactual.METHOD,
    _loss_gradients.METHOD,
)


def limitations(methods: tuple[Method, ...] = METHODS) -> dict[str, str]:
    """{method: its limitation in one sentence}, for the audit report's methods chapter."""
    return {m.name: m.limitation for m in methods if m.limitation}


def importance_merges(methods: tuple[Method, ...] = METHODS) -> dict[str, str]:
    """{importance key: how chunk importances combine} over every method (see `_method.IMPORTANCE_MERGES`)."""
    return {key: rule for m in methods for key, rule in m.importance_merges.items()}
