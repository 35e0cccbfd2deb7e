"""Names of the applicants-table columns that explanation methods write (docs/outputs.md).

One explanation value per applicant and feature (or feature group) becomes
the column `<method>_<name>`: `shap_PAY_0`, `lime_LIMIT_BAL`,
`shapgroup_repayment_history` (spaces in a group's name become `_`). The
explainers write these names and reports, flags and the review app read
them back, so both sides ask this module instead of slicing string
prefixes: `"shap_base"` also starts with `"shap_"` and is not a feature.

Torch-free on purpose: notice workers and the review app import it.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

SHAP = "shap"
SHAP_GROUP = "shapgroup"
LIME = "lime"
METHODS = (SHAP, SHAP_GROUP, LIME)
SHAP_BASE = "shap_base"  # the base value, not a feature: never one of the method's columns
_SEPARATOR = "_"
_RESERVED = frozenset({SHAP_BASE})
MSG_METHOD = "explanation columns exist for the methods {choices}, got {method!r}"


def _check(method: str) -> None:
    if method not in METHODS:
        raise ValueError(MSG_METHOD.format(choices=METHODS, method=method))


def explanation_column(method: str, name: str) -> str:
    """The column holding `method`'s value for feature (or group) `name`: ("shap", "PAY_0") -> "shap_PAY_0"."""
    _check(method)
    return f"{method}{_SEPARATOR}{name.replace(' ', _SEPARATOR)}"


def explained_name(column: str, method: str, names: Iterable[str] | None = None) -> str | None:
    """The inverse of `explanation_column`: the feature or group a column of `method` is about, else None.

    Without `names` the part after the prefix is returned as written (a
    group's spaces stay `_`); with `names` (features or group names) only a
    column of one of them matches, and its name is returned exactly.
    """
    _check(method)
    prefix = method + _SEPARATOR
    if column in _RESERVED or not column.startswith(prefix):
        return None
    if names is None:
        return column[len(prefix) :]
    return next((n for n in names if explanation_column(method, n) == column), None)


def columns_of(frame: pd.DataFrame | Iterable[str], method: str, names: Iterable[str] | None = None) -> dict[str, str]:
    """{column: feature or group name} of `method`'s columns in `frame` (or a list of column names), in order.

    `names` restricts the result to the columns of those features or groups
    (e.g. the schema's feature names, to skip anything else that happens to
    share the prefix).
    """
    columns = frame.columns if isinstance(frame, pd.DataFrame) else frame
    known = None if names is None else list(names)
    out: dict[str, str] = {}
    for column in map(str, columns):
        name = explained_name(column, method, known)
        if name is not None:
            out[column] = name
    return out
