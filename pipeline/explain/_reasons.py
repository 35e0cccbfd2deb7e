"""Principal reasons: the factors that raised one applicant's risk the most, in plain words.

Regulation B (12 CFR 1002.9) and the GDPR ask for specific reasons: at most
four, naming the actual factor and the applicant's own value ("Repayment
status last month: 2 months late"), never a protected attribute. A reason is
a model input whose SHAP value is positive (it pushed P(default) up against
the background); they are ranked by that contribution. Protected attributes
(schema `Feature.protected`) are never named, even where they are inputs.
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
    value_text: str
    contribution: float
    text: str


def reason_for(feature: str, value: float, contribution: float) -> Reason:
    f = S.BY_NAME[feature]
    shown = f.describe(value)
    return Reason(feature, f.label, shown, float(contribution), f"{f.label}: {shown}")


def principal_reasons(
    values: np.ndarray, frame: pd.DataFrame, features: tuple[str, ...] | list[str], max_reasons: int = MAX_REASONS
) -> list[list[Reason]]:
    """Per row, up to `max_reasons` non-protected features with the largest positive contribution."""
    values = np.asarray(values, dtype=np.float64)
    features = list(features)
    if values.shape[1] != len(features):
        raise ValueError(MSG_SHAPE.format(cols=values.shape[1], features=features))
    allowed = np.array([not S.BY_NAME[f].protected for f in features])
    raw = frame[features].to_numpy(np.float64)
    scored = np.where(allowed[None, :] & (values > MIN_CONTRIBUTION), values, -np.inf)
    order = np.argsort(-scored, axis=1, kind="stable")[:, :max_reasons]
    out = []
    for i, cols in enumerate(order):
        out.append([reason_for(features[j], raw[i, j], values[i, j]) for j in cols if np.isfinite(scored[i, j])])
    return out


def reasons_json(reasons: list[Reason]) -> str:
    """The `reasons` column of applicants.parquet: a JSON list of reason objects."""
    return json.dumps([asdict(r) for r in reasons])
