"""Release gates: the audit's own policy, evaluated on the run record, so a scheduler can block a model.

A model-risk team runs the audit before a model goes live and needs one
answer it can act on in a pipeline: did the audit pass its policy, and if
not, which rule tripped. The policy (`[audit.gates]` in the configuration)
states the limits; `evaluate_gates` checks each one against the run record
(and the previous run's, for degradation) and returns every check with its
figure, limit and outcome. The command maps the outcome to its exit code
(0 passed, 1 the policy failed).

Each rule is one small function over the record: adding a rule touches this
module and its test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .run_record import GateCheck, GatesSection, RunRecord

VERDICTS = ("fail", "review", "insufficient data")
MSG_VERDICT = "fail_on_verdicts may hold {choices}, got {got!r}"
MSG_RANGE = "{name} must be between {lo} and {hi}, got {got!r}"


@dataclass(frozen=True)
class GatePolicy:
    """Limits a run must meet; None switches a rule off. Shipped defaults block only fairness failures."""

    fail_on_verdicts: tuple[str, ...] = ("fail",)
    min_auc: float | None = None
    max_psi: float | None = None
    max_flag_rate: float | None = None
    max_auc_drop: float | None = None
    max_decline_rate_change: float | None = None
    max_shift_degradation: float | None = None

    def __post_init__(self) -> None:
        for v in self.fail_on_verdicts:
            if v not in VERDICTS:
                raise ValueError(MSG_VERDICT.format(choices=VERDICTS, got=v))
        for name, lo, hi in (("min_auc", 0.0, 1.0), ("max_psi", 0.0, 10.0), ("max_flag_rate", 0.0, 1.0),
                             ("max_auc_drop", 0.0, 1.0), ("max_decline_rate_change", 0.0, 1.0),
                             ("max_shift_degradation", 0.0, 1.0)):
            value = getattr(self, name)
            if value is not None and not (lo <= value <= hi):
                raise ValueError(MSG_RANGE.format(name=name, lo=lo, hi=hi, got=value))


Rule = Callable[[RunRecord, RunRecord | None, GatePolicy], list[GateCheck]]


def _verdicts(record: RunRecord, _previous: RunRecord | None, policy: GatePolicy) -> list[GateCheck]:
    if record.fairness is None or not policy.fail_on_verdicts:
        return []
    return [
        GateCheck(rule="fairness_verdict", subject=attribute, figure=verdict, limit=" or ".join(policy.fail_on_verdicts),
                  passed=verdict not in policy.fail_on_verdicts,
                  message=f"fairness verdict for {attribute} is '{verdict}'")
        for attribute, verdict in record.fairness.verdicts.items()
    ]


def _limit(rule: str, subject: str, figure: float, limit: float, upper: bool, what: str) -> GateCheck:
    passed = figure <= limit if upper else figure >= limit
    relation = "at most" if upper else "at least"
    return GateCheck(rule=rule, subject=subject, figure=f"{figure:.4f}", limit=f"{relation} {limit:.4f}",
                     passed=passed, message=f"{what} is {figure:.4f}; the policy asks {relation} {limit:.4f}")


def _auc(record: RunRecord, _previous: RunRecord | None, policy: GatePolicy) -> list[GateCheck]:
    if policy.min_auc is None:
        return []
    return [_limit("min_auc", "model", record.held_out().roc_auc, policy.min_auc, False, "held-out ROC AUC")]


def _flag_rate(record: RunRecord, _previous: RunRecord | None, policy: GatePolicy) -> list[GateCheck]:
    if policy.max_flag_rate is None or record.flags is None or not record.flags.applicants:
        return []
    rate = record.flags.applicants_flagged / record.flags.applicants
    return [_limit("max_flag_rate", "review queue", rate, policy.max_flag_rate, True, "share of applicants flagged")]


def _drift(record: RunRecord, _previous: RunRecord | None, policy: GatePolicy) -> list[GateCheck]:
    if policy.max_psi is None or record.changes is None:
        return []
    return [_limit("max_psi", feature, d.psi, policy.max_psi, True, f"population stability index of {feature}")
            for feature, d in record.changes.data_drift.items()]


def _degradation(record: RunRecord, previous: RunRecord | None, policy: GatePolicy) -> list[GateCheck]:
    if previous is None:
        return []
    now, before = record.held_out(), previous.held_out()
    checks = []
    if policy.max_auc_drop is not None:
        checks.append(_limit("max_auc_drop", "model", before.roc_auc - now.roc_auc, policy.max_auc_drop, True,
                             "drop in held-out ROC AUC since the previous run"))
    if policy.max_decline_rate_change is not None:
        checks.append(_limit("max_decline_rate_change", "model", abs(now.decline_rate - before.decline_rate),
                             policy.max_decline_rate_change, True, "change in the decline rate since the previous run"))
    return checks


def _shift(record: RunRecord, _previous: RunRecord | None, policy: GatePolicy) -> list[GateCheck]:
    """Per shift and attribute, the verdict figure that degrades most under the shift, against the limit.

    Attributes the shift cannot move (`unchanged_by_construction`) and figures undefined before
    or after are not checks: nothing about them can trip or pass a limit.
    """
    if policy.max_shift_degradation is None or record.shift is None:
        return []
    checks = []
    for case in record.shift.cases:
        where = f"{case.attribute}: {case.group} {case.delta * 100:+g} points"
        for attribute in case.attributes:
            judged = [f for f in attribute.figures if f.degradation is not None]
            if attribute.unchanged_by_construction or not judged:
                continue
            worst = max(judged, key=lambda f: f.degradation)
            check = _limit("max_shift_degradation", f"{attribute.attribute} under {where}", worst.degradation,
                           policy.max_shift_degradation, True,
                           f"the degradation of the {worst.label} of {attribute.attribute} under the shift {where} "
                           f"({case.check}: {worst.before.value:.4f} -> {worst.after.value:.4f})")
            checks.append(check)
    return checks


RULES: dict[str, Rule] = {
    "fairness_verdict": _verdicts,
    "min_auc": _auc,
    "max_flag_rate": _flag_rate,
    "max_psi": _drift,
    "degradation": _degradation,
    "max_shift_degradation": _shift,
}


def evaluate_gates(record: RunRecord, policy: GatePolicy, previous: RunRecord | None = None) -> GatesSection:
    """Every check of the policy against this run; `passed` only when none failed."""
    checks = [c for rule in RULES.values() for c in rule(record, previous, policy)]
    return GatesSection(passed=all(c.passed for c in checks), checks=tuple(checks),
                        failed=tuple(c for c in checks if not c.passed))
