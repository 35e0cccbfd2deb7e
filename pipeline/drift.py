"""What changed since the previous run: data drift (PSI), performance, fairness, flags.

Ongoing monitoring (SR 11-7) compares each run with the last one. The
population stability index per feature uses the previous run's data as the
reference distribution: quantile bins for amounts, one bin per code for
categorical features, so the same binning is reproducible from the two
applicants tables alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import schema as S
from .constants import PSI_SHIFT, PSI_STABLE
from .run_record import ChangesSection, RunRecord

PSI_BINS = 10
PSI_EPSILON = 1e-4  # floor on bin shares so an empty bin does not give an infinite PSI


def _edges(reference: np.ndarray, bins: int) -> np.ndarray:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    return np.concatenate([[-np.inf], edges[1:-1], [np.inf]])


def _shares(values: np.ndarray, feature: S.Feature, edges: np.ndarray | None) -> np.ndarray:
    if edges is None:
        codes = np.array(sorted(feature.allowed_codes) if feature.kind == "category" else range(-2, 10))
        counts = np.array([(values == c).sum() for c in codes], dtype=float)
    else:
        counts = np.histogram(values, bins=edges)[0].astype(float)
    return np.clip(counts / max(len(values), 1), PSI_EPSILON, None)


def psi(reference: np.ndarray, current: np.ndarray, feature: S.Feature, bins: int = PSI_BINS) -> float:
    """Population stability index of one feature: sum (cur - ref) * ln(cur / ref) over bins."""
    edges = None if feature.is_categorical else _edges(reference, bins)
    ref, cur = _shares(reference, feature, edges), _shares(current, feature, edges)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_reading(value: float) -> str:
    if value < PSI_STABLE:
        return "stable"
    return "moderate shift" if value < PSI_SHIFT else "significant shift"


def data_drift(previous: pd.DataFrame, current: pd.DataFrame) -> dict[str, dict]:
    """PSI and its reading for every schema feature present in both applicants tables."""
    out = {}
    for f in S.FEATURES:
        if f.name in previous and f.name in current:
            value = psi(previous[f.name].to_numpy(float), current[f.name].to_numpy(float), f)
            out[f.name] = {"label": f.label, "psi": value, "reading": psi_reading(value)}
    return out


def _delta(prev: float | None, cur: float | None) -> dict:
    both = prev is not None and cur is not None
    return {"previous": prev, "current": cur, "change": (cur - prev) if both else None}


HEADLINE_METRICS = ("roc_auc", "accuracy", "decline_rate", "ece")


def compare_runs(previous: RunRecord, current: RunRecord, prev_table: pd.DataFrame,
                 cur_table: pd.DataFrame) -> ChangesSection:
    """The record's 'what changed' section: drift, headline metrics, verdicts, flag counts."""

    def verdicts(record: RunRecord) -> dict:
        return dict(record.fairness.verdicts) if record.fairness else {}

    def flag_counts(record: RunRecord) -> dict:
        return dict(record.flags.counts) if record.flags else {}

    drift = data_drift(prev_table, cur_table)
    before, after = previous.held_out(), current.held_out()
    return ChangesSection(
        previous_run=previous.run_id,
        previous_created=previous.created,
        same_model=previous.model.model_hash == current.model.model_hash,
        same_data=previous.data.data_hash == current.data.data_hash,
        data_drift=drift,
        drifted_features=tuple(n for n, d in drift.items() if d["psi"] >= PSI_STABLE),
        performance={k: _delta(getattr(before, k), getattr(after, k)) for k in HEADLINE_METRICS},
        fairness_verdicts={"previous": verdicts(previous), "current": verdicts(current)},
        flag_counts={"previous": flag_counts(previous), "current": flag_counts(current)},
    )
