"""Principal reasons: the factors that raised one applicant's risk the most, none withheld.

Regulation B (12 CFR 1002.9(b)(2)), CFPB Circular 2023-03 and the GDPR
(Art. 15(1)(h), as the CJEU read it in C-203/22) ask for the specific
reasons that actually drove the decision: at most four, naming the actual
factor and the applicant's own value ("Repayment status last month: 2
months late"). The policy, stated once: the reasons are exactly the model
inputs with the largest positive SHAP values (each pushed P(default) up
against the background), at most `MAX_REASONS`, ranked by contribution.
Nothing is skipped: an attribute that may not be given as a reason must not
be a model input (`pipeline.schema.DEFAULT_MODEL_FEATURES` leaves every
protected attribute out; a configuration that keeps one in discloses it like
any other reason).

Each reason also carries the `typical` value it was measured against (the
median of the background sample, or its most common code), so a notice can
say what about the value counts against the applicant ("lower than the
typical NT$ 140,000").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .. import schema as S
from ..constants import MAX_REASONS

# Contributions below this (in probability) are rounding noise, not a reason.
MIN_CONTRIBUTION = 1e-6
MSG_SHAPE = "values have {cols} columns, expected one per feature of {features}"


@dataclass(frozen=True)
class Reason:
    feature: str
    label: str
    value: float
    value_text: str
    contribution: float
    text: str
    typical: float | None = None  # what the contribution is measured against (see the module docstring)


def reason_for(feature: str, value: float, contribution: float, typical: float | None = None) -> Reason:
    f = S.BY_NAME[feature]
    shown = f.describe(value)
    return Reason(feature, f.label, float(value), shown, float(contribution), f"{f.label}: {shown}",
                  None if typical is None else float(typical))


def typical_values(reference: pd.DataFrame, features: tuple[str, ...] | list[str]) -> dict[str, float]:
    """Per feature, the value a contribution is measured against: the median, or the most common code."""
    out = {}
    for name in features:
        column = reference[name]
        out[name] = float(column.mode().iloc[0] if S.BY_NAME[name].is_categorical else column.median())
    return out


def principal_reasons(
    values: np.ndarray,
    frame: pd.DataFrame,
    features: tuple[str, ...] | list[str],
    max_reasons: int = MAX_REASONS,
    reference: pd.DataFrame | None = None,
) -> list[list[Reason]]:
    """Per row, the (at most `max_reasons`) inputs with the largest positive contribution, none skipped.

    `reference`: the background sample the values were measured against (for each reason's `typical`).
    """
    values = np.asarray(values, dtype=np.float64)
    features = list(features)
    if values.shape[1] != len(features):
        raise ValueError(MSG_SHAPE.format(cols=values.shape[1], features=features))
    typical = typical_values(reference, features) if reference is not None else {}
    raw = frame[features].to_numpy(np.float64)
    scored = np.where(values > MIN_CONTRIBUTION, values, -np.inf)
    order = np.argsort(-scored, axis=1, kind="stable")[:, :max_reasons]
    out = []
    for i, cols in enumerate(order):
        out.append([reason_for(features[j], raw[i, j], values[i, j], typical.get(features[j]))
                    for j in cols if np.isfinite(scored[i, j])])
    return out


def reasons_json(reasons: list[Reason]) -> str:
    """The `reasons` column of applicants.parquet: a JSON list of reason objects."""
    return json.dumps([asdict(r) for r in reasons])
