"""Sensitivity and stress tests: how the production model's decisions move when the inputs move.

SR 11-7 asks how a model behaves under conditions other than those it was
fitted on. Each case changes every held-out applicant's inputs in one stated
way (amounts up or down 10%, one month more late last month, the two oldest
months unknown) and re-scores them with the production model; the outcomes
stay as observed, so the ROC AUC says how well the model still ranks the same
people, and the decision figures say how many decisions a change of that size
would turn. The perturbations are written here, once, as data.

Every figure carries a paired bootstrap interval: each replicate resamples
the held-out rows once and scores both the unperturbed and the perturbed
inputs of the same resampled people, so a change (in AUC, in the decline
rate) and its interval compare like with like. Percentile intervals; the
figures are means of per-row values (and the AUC), whose replicates lie on
both sides of the estimate, and a share of 0 has the interval [0, 0].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from . import schema as S
from .constants import CI_LEVEL
from .run_record import Interval, StressCase, StressSection

AMOUNT_SHIFT = 0.10
STRESS_BOOTSTRAP = 1000  # replicates of the paired bootstrap
METHOD = (f"paired bootstrap of the held-out rows ({STRESS_BOOTSTRAP:,} replicates, percentile intervals): each "
          "replicate scores the same resampled applicants with and without the change")
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


def _one_month_later(status_column: str) -> Perturb:
    """The newest repayment status one month worse: n months late -> n + 1; paid (the status's
    unordered codes: no balance, paid in full, paid the minimum) -> 1 month late."""
    def perturb(frame: pd.DataFrame, training: pd.DataFrame) -> pd.DataFrame:  # noqa: ARG001
        out = frame.copy()
        status = out[status_column]
        worst = max(S.BY_NAME[status_column].codes)
        out[status_column] = np.where(status >= 1, np.minimum(status + 1, worst), 1).astype(status.dtype)
        return out
    return perturb


def _unknown(columns: tuple[str, ...]) -> Perturb:
    """These columns replaced by the training data's median (what an imputer would fill in)."""
    def perturb(frame: pd.DataFrame, training: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        for column in columns:
            if column in out.columns:
                out[column] = training[column].median()
        return out
    return perturb


def _listed(names: list[str]) -> str:
    """"a, b and c" with the first letter capitalised, for a case's description."""
    text = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return text[:1].upper() + text[1:]


def _group_titles(columns: tuple[str, ...]) -> str:
    """A case's subject: the columns' labels when there are one or two ("Credit amount"), else the
    schema's titles of their groups ("Bill statements and amounts paid")."""
    if len(columns) <= 2:
        return _listed([S.BY_NAME[c].label.lower() for c in columns])
    titles = dict.fromkeys(S.GROUP_TITLES.get(S.BY_NAME[c].group, S.BY_NAME[c].group) for c in columns)
    return _listed([t.lower() for t in titles])


def _amount_cases() -> list[Case]:
    """Amounts the applicant's own conduct sets, up and down; amounts the lender sets (a limit), down."""
    amounts = [f for f in S.FEATURES if f.kind == "amount"]
    own = tuple(f.name for f in amounts if f.changed_by != "lender")
    lender = tuple(f.name for f in amounts if f.changed_by == "lender")
    cases = []
    if own:
        cases += [Case("amounts_up", f"{_group_titles(own)} {AMOUNT_SHIFT:+.0%}", _scaled(own, 1 + AMOUNT_SHIFT)),
                  Case("amounts_down", f"{_group_titles(own)} {-AMOUNT_SHIFT:+.0%}", _scaled(own, 1 - AMOUNT_SHIFT))]
    if lender:
        cases.append(Case("limit_down", f"{_group_titles(lender)} {-AMOUNT_SHIFT:+.0%}",
                          _scaled(lender, 1 - AMOUNT_SHIFT)))
    return cases


def _history_cases() -> list[Case]:
    """For a schema with a monthly repayment history: the newest month one month later, and the two oldest
    months unknown (what a shorter history would leave)."""
    statuses = [f for f in S.FEATURES if f.kind == "repayment_status"]
    months = list(dict.fromkeys(f.month for f in S.FEATURES if f.month))
    cases = []
    if statuses:
        cases.append(Case("one_month_later", f"{statuses[0].label} one month later (paid on time becomes 1 month"
                          " late)", _one_month_later(statuses[0].name)))
    if len(months) > 2:
        oldest = months[-2:][::-1]
        columns = tuple(f.name for f in S.FEATURES if f.month in oldest)
        cases.append(Case("oldest_months_unknown", f"{' and '.join(oldest)} unknown (every value of those months"
                          " set to the training median)", _unknown(columns)))
    return cases


def cases() -> tuple[Case, ...]:
    """The stress cases the active schema allows (a case needs the fields it changes)."""
    return (*_amount_cases(), *_history_cases())


def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) multiplicities: how often each held-out row is drawn in each replicate (n draws each)."""
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    offsets = (np.arange(n_boot) * n)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=n_boot * n).reshape(n_boot, n)


def _auc_replicates(counts: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """ROC AUC of every replicate (weighted Mann-Whitney over the multiplicities; the fairness audit's function)."""
    import torch

    from .fairness import weighted_auc

    order = np.argsort(p, kind="stable")
    return weighted_auc(torch.as_tensor(counts[:, order]), torch.as_tensor(y[order], dtype=torch.float64),
                        torch.as_tensor(p[order], dtype=torch.float64)).numpy()


def _interval(value: float, replicates: np.ndarray) -> Interval:
    alpha = (1 - CI_LEVEL) / 2
    lo, hi = np.quantile(replicates, [alpha, 1 - alpha])
    return Interval(value=float(value), lo=float(lo), hi=float(hi), valid_replicates=len(replicates))


def stress_test(model, X_test: pd.DataFrame, y_test: np.ndarray, training: pd.DataFrame, *,  # noqa: ANN001
                seed: int = 0, n_boot: int = STRESS_BOOTSTRAP) -> StressSection:
    """Every case of `cases()` on the held-out rows, against the unperturbed scores of the same model."""
    y = np.asarray(y_test, dtype=int)
    threshold = model.threshold_
    base = model.predict_proba(X_test)[:, 1]
    base_decline = base >= threshold
    counts = _resamples(len(y), n_boot, seed)
    share = counts / len(y)  # a replicate's mean of a per-row value is share @ value
    base_auc = roc_auc_score(y, base)
    base_auc_reps = _auc_replicates(counts, y, base)
    base_rate_reps = share @ base_decline
    results = []
    for case in cases():
        p = model.predict_proba(case.perturb(X_test, training))[:, 1]
        decline = p >= threshold
        auc, auc_reps = float(roc_auc_score(y, p)), _auc_replicates(counts, y, p)
        rate_change = float(decline.mean() - base_decline.mean())
        changed = decline != base_decline
        results.append(StressCase(
            key=case.key, description=case.description, roc_auc=auc,
            decline_rate=float(decline.mean()), decline_rate_change=rate_change,
            decisions_changed=float(changed.mean()),
            mean_probability_change=float((p - base).mean()),
            roc_auc_ci=_interval(auc, auc_reps), roc_auc_change=_interval(auc - base_auc, auc_reps - base_auc_reps),
            decline_rate_change_ci=_interval(rate_change, share @ decline - base_rate_reps),
            decisions_changed_ci=_interval(float(changed.mean()), share @ changed),
        ))
    # The unperturbed figures are the performance section's (same model, same rows): not repeated here.
    return StressSection(rows=len(y), cases=tuple(results), method=METHOD, n_boot=n_boot, ci_level=CI_LEVEL)
