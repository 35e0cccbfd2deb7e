"""Sensitivity and stress tests: how the production model's decisions move when the inputs move.

SR 11-7 asks how a model behaves under conditions other than those it was
fitted on. Each case changes every held-out applicant's inputs in one stated
way (amounts up or down 10%, one month more late last month, the two oldest
months unknown) and re-scores them with the production model; the outcomes
stay as observed, so the ROC AUC says how well the model still ranks the same
people, and the decision figures say how many decisions a change of that size
would turn. The perturbations are written here, once, as data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from . import schema as S
from .run_record import StressCase, StressSection

AMOUNT_SHIFT = 0.10
BILLS = tuple(f.name for f in S.FEATURES if f.name.startswith("BILL_AMT"))
PAYMENTS = tuple(f.name for f in S.FEATURES if f.name.startswith("PAY_AMT"))
STATUSES = tuple(f.name for f in S.FEATURES if f.kind == "repayment_status")
LATEST_STATUS = STATUSES[0]
MAX_MONTHS_LATE = max(S.PAY_STATUS_MEANINGS)
# The two oldest months of history (April and May): what a shorter history would leave unknown.
OLDEST_MONTHS = tuple(n for n in (*STATUSES[-2:], *BILLS[-2:], *PAYMENTS[-2:]))

Perturb = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class Case:
    key: str
    description: str
    perturb: Perturb  # (held-out frame, training frame) -> changed copy of the held-out frame


def _scaled(columns: tuple[str, ...], factor: float) -> Perturb:
    def perturb(frame: pd.DataFrame, training: pd.DataFrame) -> pd.DataFrame:  # noqa: ARG001
        out = frame.copy()
        present = [c for c in columns if c in out.columns]
        out[present] = out[present] * factor
        return out
    return perturb


def _one_month_later(frame: pd.DataFrame, training: pd.DataFrame) -> pd.DataFrame:  # noqa: ARG001
    """Last month's status one month worse: n months late -> n + 1; paid (codes -2, -1, 0) -> 1 month late."""
    out = frame.copy()
    status = out[LATEST_STATUS]
    out[LATEST_STATUS] = np.where(status >= 1, np.minimum(status + 1, MAX_MONTHS_LATE), 1).astype(status.dtype)
    return out


def _oldest_months_unknown(frame: pd.DataFrame, training: pd.DataFrame) -> pd.DataFrame:
    """The two oldest months replaced by the training data's median (what an imputer would fill in)."""
    out = frame.copy()
    for column in OLDEST_MONTHS:
        if column in out.columns:
            out[column] = training[column].median()
    return out


CASES: tuple[Case, ...] = (
    Case("amounts_up", f"Bills and payments {AMOUNT_SHIFT:+.0%}", _scaled(BILLS + PAYMENTS, 1 + AMOUNT_SHIFT)),
    Case("amounts_down", f"Bills and payments {-AMOUNT_SHIFT:+.0%}", _scaled(BILLS + PAYMENTS, 1 - AMOUNT_SHIFT)),
    Case("limit_down", f"Credit limit {-AMOUNT_SHIFT:+.0%}", _scaled(("LIMIT_BAL",), 1 - AMOUNT_SHIFT)),
    Case("one_month_later", "Last month's repayment one month later (paid on time becomes 1 month late)",
         _one_month_later),
    Case("oldest_months_unknown", "April and May unknown (status, bill and payment set to the training median)",
         _oldest_months_unknown),
)


def stress_test(model, X_test: pd.DataFrame, y_test: np.ndarray, training: pd.DataFrame) -> StressSection:  # noqa: ANN001
    """Every case in `CASES` on the held-out rows, against the unperturbed scores of the same model."""
    y = np.asarray(y_test, dtype=int)
    threshold = model.threshold_
    base = model.predict_proba(X_test)[:, 1]
    base_decline = base >= threshold
    cases = []
    for case in CASES:
        p = model.predict_proba(case.perturb(X_test, training))[:, 1]
        decline = p >= threshold
        cases.append(StressCase(
            key=case.key, description=case.description, roc_auc=float(roc_auc_score(y, p)),
            decline_rate=float(decline.mean()), decline_rate_change=float(decline.mean() - base_decline.mean()),
            decisions_changed=float((decline != base_decline).mean()),
            mean_probability_change=float((p - base).mean()),
        ))
    # The unperturbed figures are the performance section's (same model, same rows): not repeated here.
    return StressSection(rows=len(y), cases=tuple(cases))
