"""The conclusion on page 1 of the audit report: fit for use, fit with conditions, or not fit.

A validator signs a conclusion, not a list of figures, and must be able to
see why it was reached. So the conclusion is derived from the run's other
sections by the rules in `RULES` (the one place they are written; their
limits are in `pipeline.constants`), and each finding becomes a `Condition`
that names its subject, the groups concerned, the figure with its interval
(taken from the section that computed it, never recomputed), the limit and
the action asked. Any blocking finding makes the model "not fit"; otherwise
any condition makes it "fit with conditions"; otherwise it is "fit for use".
"""

from __future__ import annotations

import math

import pandas as pd

from . import schema as S
from .constants import (
    BLOCKING,
    CALIBRATION_ECE_MAX,
    CONDITION,
    FAIL,
    FIT,
    FIT_WITH_CONDITIONS,
    INSUFFICIENT,
    NOT_FIT,
    PASS,
)
from .fairness import CRITERIA
from .run_record import AttributeVerdict, ConclusionSection, Condition, Interval, RunRecord

RULES: tuple[str, ...] = (
    "Not fit if any fairness criterion fails (its whole interval is beyond the limit).",
    "Not fit if the model's ROC AUC interval does not lie wholly above 0.5 (it ranks applicants no better than "
    "the majority-class baseline).",
    "A condition for every fairness criterion under review (its interval straddles the limit): a person reviews "
    "the gap between the groups named.",
    "A condition if a challenger trained on the same split has a higher ROC AUC across the whole interval of the "
    "paired difference.",
    f"A condition if held-out accuracy is not above approving everyone's, or the expected calibration error "
    f"exceeds {CALIBRATION_ECE_MAX}.",
    "A condition if the surrogate tree agrees with the model no more often than a tree that approves everyone.",
    "A condition for every attribute that could not be judged (insufficient data), and for every governance "
    "field (model owner, validator, risk tier) left unset.",
    f"Conclusion: '{NOT_FIT}' if any blocking finding, else '{FIT_WITH_CONDITIONS}' if any condition, "
    f"else '{FIT}'.",
)

ACTION_FAIRNESS_FAIL = ("Do not use the model for decisions until the disparity is mitigated and the model "
                        "re-validated (the fairness section compares mitigated alternatives).")
ACTION_FAIRNESS_REVIEW = ("Owner and compliance review the gap; justify or mitigate before sign-off; "
                          "re-test in the next run.")
ACTION_NO_RANKING = "Do not use the model: it ranks applicants no better than chance on held-out data."
ACTION_CHALLENGER = ("Justify the production model over the simpler {name} (explainability, stability) or adopt "
                     "the challenger after its own validation.")
ACTION_ACCURACY = ("Justify the threshold by the costs of the two errors (declined good payers, approved defaulters) "
                   "or revise it.")
ACTION_CALIBRATION = ("Recalibrate before the probabilities are used as chances of default (pricing, limits); "
                      "approve/decline decisions at the threshold may continue.")
ACTION_SURROGATE = "Do not use the surrogate tree's rules to describe the model's decisions."
ACTION_INSUFFICIENT = ("Collect enough held-out applicants in these groups (or merge groups) to judge them; until "
                       "then, monitor their approval rates run by run.")
ACTION_GOVERNANCE = "Set them in [audit.governance] of the configuration before sign-off."


RATE_NAMES = {"approval_rate": "approval rate", "tpr": "TPR, defaulters declined",
              "fpr": "FPR, good payers declined"}


def _extremes(table: pd.DataFrame | None, attribute: str, rate: str) -> tuple[str, ...]:
    """(lowest, highest) judged group of one rate of an attribute, from the fairness table."""
    if table is None or rate not in table.columns:
        return ()
    rows = table[(table["attribute"] == attribute) & (table["status"] == "ok")].dropna(subset=[rate])
    if len(rows) < 2:
        return ()
    return str(rows.loc[rows[rate].idxmin(), "group"]), str(rows.loc[rows[rate].idxmax(), "group"])


def _compared(a: AttributeVerdict, disparity: str) -> str:
    """The rate whose gap a criterion reads: approval, or the larger of the two error-rate gaps."""
    if disparity != "equalized_odds_difference":
        return "approval_rate"
    tpr, fpr = a.disparities.get("tpr_difference"), a.disparities.get("fpr_difference")
    return "tpr" if tpr is not None and (fpr is None or (tpr.value or 0) >= (fpr.value or 0)) else "fpr"


def _fairness(record: RunRecord, table: pd.DataFrame | None) -> list[Condition]:
    if record.fairness is None:
        return []
    out = []
    for a in record.fairness.attributes:
        if a.verdict == INSUFFICIENT:
            out.append(Condition(rule="fairness_insufficient", severity=CONDITION, subject=S.attribute_label(a.attribute),
                                 groups=a.groups_insufficient or a.groups_judged,
                                 figure="groups with enough applicants to judge", limit_text="at least two",
                                 action=ACTION_INSUFFICIENT))
            continue
        for c in CRITERIA:
            d = a.disparities.get(c.disparity)
            if d is None or d.value is None:
                continue
            verdict, _ = c.judge(d.value, math.nan if d.lo is None else d.lo, math.nan if d.hi is None else d.hi)
            if verdict == PASS:
                continue
            rate = _compared(a, c.disparity)
            groups = _extremes(table, a.attribute, rate)
            blocking = verdict == FAIL
            out.append(Condition(
                rule="fairness_fail" if blocking else "fairness_review", severity=BLOCKING if blocking else CONDITION,
                subject=S.attribute_label(a.attribute), groups=groups, basis=RATE_NAMES[rate] if groups else "",
                figure=c.short or c.label, value=d, limit=c.limit, limit_text=f"{'at least' if c.higher_is_better else 'at most'} {c.limit:g}",
                action=ACTION_FAIRNESS_FAIL if blocking else ACTION_FAIRNESS_REVIEW,
            ))
    return out


def _performance(record: RunRecord) -> list[Condition]:
    out = []
    held_out = record.held_out()
    bench = record.benchmarks
    if bench is not None:
        auc = bench.production.roc_auc
        if auc.lo is not None and auc.lo <= 0.5:
            out.append(Condition(rule="no_ranking", severity=BLOCKING, subject="Production model", figure="ROC AUC",
                                 value=auc, limit=0.5, limit_text="above 0.5", action=ACTION_NO_RANKING))
        for c in bench.challengers:
            if c.auc_difference is not None and c.auc_difference.lo is not None and c.auc_difference.lo > 0:
                out.append(Condition(rule="challenger_better", severity=CONDITION, subject=c.name,
                                     figure="ROC AUC minus the production model's", value=c.auc_difference, limit=0.0,
                                     limit_text="at most 0", action=ACTION_CHALLENGER.format(name=c.name.lower())))
    baseline = record.approve_everyone_accuracy()
    if held_out.accuracy <= baseline:
        out.append(Condition(rule="accuracy_baseline", severity=CONDITION, subject="Production model",
                             figure="accuracy (held out)", value=Interval(value=held_out.accuracy, lo=None, hi=None),
                             limit=baseline, limit_text=f"above approving everyone's {baseline:.1%}",
                             action=ACTION_ACCURACY))
    if held_out.ece > CALIBRATION_ECE_MAX:
        out.append(Condition(rule="calibration", severity=CONDITION, subject="Production model",
                             figure="expected calibration error (held out)",
                             value=Interval(value=held_out.ece, lo=None, hi=None), limit=CALIBRATION_ECE_MAX,
                             limit_text=f"at most {CALIBRATION_ECE_MAX:g}", action=ACTION_CALIBRATION))
    surrogate = record.surrogate
    if surrogate.fidelity_approve_all_test is not None and surrogate.fidelity_test <= surrogate.fidelity_approve_all_test:
        out.append(Condition(rule="surrogate_baseline", severity=CONDITION, subject="Surrogate tree",
                             figure="fidelity (held out)", value=Interval(value=surrogate.fidelity_test, lo=None, hi=None),
                             limit=surrogate.fidelity_approve_all_test,
                             limit_text=f"above an approve-everyone tree's {surrogate.fidelity_approve_all_test:.1%}",
                             action=ACTION_SURROGATE))
    return out


def _governance(record: RunRecord) -> list[Condition]:
    g = record.governance
    fields = {"model owner": g.model_owner if g else "", "validator": g.validator if g else "",
              "risk tier": g.risk_tier if g else ""}
    unset = tuple(name for name, value in fields.items() if not value.strip())
    if not unset:
        return []
    return [Condition(rule="governance", severity=CONDITION, subject="Governance", groups=unset,
                      figure="fields not set", limit_text="all set", action=ACTION_GOVERNANCE)]


def conclude(record: RunRecord, fairness_table: pd.DataFrame | None = None) -> ConclusionSection:
    """The conclusion of a run from its record (and the fairness table, to name the groups of each gap)."""
    conditions = [*_fairness(record, fairness_table), *_performance(record), *_governance(record)]
    conditions.sort(key=lambda c: c.severity != BLOCKING)  # blocking findings first, otherwise in rule order
    if any(c.severity == BLOCKING for c in conditions):
        outcome = NOT_FIT
    elif conditions:
        outcome = FIT_WITH_CONDITIONS
    else:
        outcome = FIT
    return ConclusionSection(outcome=outcome, rules=RULES, conditions=tuple(conditions))
