"""The rules that turn disparities with intervals into verdicts (thresholds: `pipeline.constants`).

A verdict must survive challenge in both directions, so it is read off the
confidence interval, not the point estimate alone:

- fail: the whole interval lies on the wrong side of a threshold (the
  disparity is there even at the most favourable end of the evidence);
- pass: the whole interval lies on the acceptable side (absence of evidence
  is not taken as evidence of fairness);
- review: the interval straddles the threshold; the data cannot settle it
  and a person must look.

An attribute's verdict is the worst of its criteria; fewer than two groups
with enough data gives "insufficient data", never a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..constants import (
    CI_LEVEL,
    EQUALIZED_ODDS_GAP_MAX,
    FAIL,
    FOUR_FIFTHS,
    MIN_GROUP_SIZE,
    MIN_OUTCOME_COUNT,
    PARITY_GAP_MAX,
    PASS,
    REVIEW,
)

_SEVERITY = {PASS: 0, REVIEW: 1, FAIL: 2}

RULES_TEXT = (
    f"Intervals are {CI_LEVEL:.0%} stratified bootstrap intervals; those of gaps and of the lowest ratio are derived "
    "from one simultaneous max-|t| band over the signed difference (log ratio) of every pair of groups, "
    "so that they contain their estimates and hold for all pairs of an attribute at once. "
    f"Four-fifths rule: fail if the upper bound of the lowest adverse impact ratio is below {FOUR_FIFTHS}, "
    f"pass if its lower bound is at least {FOUR_FIFTHS}, review otherwise. "
    f"Demographic parity (approval-rate gap) and equalized odds (largest TPR or FPR gap): fail if the "
    f"lower bound exceeds {PARITY_GAP_MAX} / {EQUALIZED_ODDS_GAP_MAX}, pass if the upper bound is within it, "
    f"review otherwise. An attribute's verdict is the worst of the three. Groups with fewer than "
    f"{MIN_GROUP_SIZE} applicants or fewer than {MIN_OUTCOME_COUNT} defaulters or non-defaulters are "
    "'insufficient data' and take no part in disparities or verdicts."
)


def is_sufficient(count: int, defaults: int) -> bool:
    """Enough applicants and both outcomes to estimate every rate of a group."""
    return count >= MIN_GROUP_SIZE and min(defaults, count - defaults) >= MIN_OUTCOME_COUNT


def _fmt(x: float) -> str:
    return "undefined" if x is None or math.isnan(x) else f"{x:.3f}"


def _span(name: str, point: float, lo: float, hi: float) -> str:
    return f"{name} {_fmt(point)} ({CI_LEVEL:.0%} CI {_fmt(lo)} to {_fmt(hi)})"


def ratio_verdict(point: float, lo: float, hi: float, name: str = "lowest adverse impact ratio") -> tuple[str, str]:
    """Higher is better; the four-fifths threshold."""
    span = _span(name, point, lo, hi)
    if math.isnan(hi) or math.isnan(lo):
        return REVIEW, f"{span}: interval undefined"
    if hi < FOUR_FIFTHS:
        return FAIL, f"{span} is below {FOUR_FIFTHS} across the whole interval"
    if lo >= FOUR_FIFTHS:
        return PASS, f"{span} is at least {FOUR_FIFTHS} across the whole interval"
    return REVIEW, f"{span} straddles {FOUR_FIFTHS}"


def gap_verdict(point: float, lo: float, hi: float, limit: float, name: str) -> tuple[str, str]:
    """Lower is better; a maximum acceptable gap."""
    span = _span(name, point, lo, hi)
    if math.isnan(hi) or math.isnan(lo):
        return REVIEW, f"{span}: interval undefined"
    if lo > limit:
        return FAIL, f"{span} exceeds {limit} across the whole interval"
    if hi <= limit:
        return PASS, f"{span} is within {limit} across the whole interval"
    return REVIEW, f"{span} straddles {limit}"


def worst(verdicts: list[str]) -> str:
    return max(verdicts, key=_SEVERITY.__getitem__)


@dataclass(frozen=True)
class Criterion:
    """One verdict criterion: which recorded disparity it reads, its limit and which side is acceptable."""

    disparity: str
    label: str
    limit: float
    higher_is_better: bool
    short: str = ""  # the label where space is short (the conclusion on page 1 of the report)

    def judge(self, point: float, lo: float, hi: float) -> tuple[str, str]:
        if self.higher_is_better:
            return ratio_verdict(point, lo, hi, self.label)
        return gap_verdict(point, lo, hi, self.limit, self.label)


# The criteria an attribute's verdict is the worst of, in the order their reasons are written.
CRITERIA: tuple[Criterion, ...] = (
    Criterion("lowest_adverse_impact_ratio", "lowest adverse impact ratio", FOUR_FIFTHS, True,
              "lowest adverse impact ratio"),
    Criterion("demographic_parity_difference", "approval-rate gap (demographic parity difference)", PARITY_GAP_MAX,
              False, "approval-rate gap"),
    Criterion("equalized_odds_difference", "equalized odds difference", EQUALIZED_ODDS_GAP_MAX, False,
              "equalized odds difference"),
)
