"""Fairness: does the model treat protected groups differently, and how sure are we?

A *group* is the set of held-out applicants sharing a value of a protected
attribute (SEX, MARRIAGE, EDUCATION, AGE in bands) or of an intersection
(SEX x AGE band, SEX x EDUCATION). Per group the audit measures the model's
decisions (approval and decline rates), its errors (TPR, FPR, FNR, precision,
with "default" as the model's positive class), its ranking (ROC AUC) and its
calibration. A *disparity* compares groups: the demographic parity
difference and ratio of approval rates, the equalized odds difference, and
each group's adverse impact ratio (four-fifths rule). As in fairlearn's
`MetricFrame(...).difference()` / `.ratio()`, the groups' rates of one
attribute are one object (`GroupRates`) and each disparity is one reduction
of it (`demographic_parity_difference`, `lowest_adverse_impact_ratio`, ...);
the thresholds the verdicts apply live in `pipeline.constants`. Every rate and
disparity carries a stratified bootstrap interval computed in torch on the
chosen device; verdicts (pass / review / fail) are read off the intervals.

Point estimates follow fairlearn's MetricFrame definitions exactly; the
audit adds proxies (can the inputs reveal a protected attribute?), the cost
of unawareness and of mitigation (analysis only: production decisions are
unchanged) and explanation disparity (do declined groups get different
reasons?).

`audit_shift` repeats the audit on the held-out rows reweighted so that one
group's share moves by stated points (fairness under demographic shift), with
the same rules and weighted bootstrap intervals.
"""

from ..constants import (
    CI_LEVEL,
    EQUALIZED_ODDS_GAP_MAX,
    FAIL,
    FOUR_FIFTHS,
    INSUFFICIENT,
    MIN_GROUP_SIZE,
    MIN_OUTCOME_COUNT,
    PARITY_GAP_MAX,
    PASS,
    REVIEW,
)
from ._audit import CONVENTIONS, FairnessAudit, audit_fairness
from ._bootstrap import RATES, weighted_auc
from ._by_group import AttributeResult, group_disparities
from ._disparities import (
    DISPARITIES,
    adverse_impact_ratios,
    demographic_parity_difference,
    equalized_odds_difference,
    lowest_adverse_impact_ratio,
)
from ._groups import AuditedAttribute, audited_attributes, group_labels, grouping_notes
from ._rates import INTERVAL_METHOD, Estimate, GapEstimate, GroupRates
from ._shift import audit_shift, resolve_shifts, shift_weights
from ._verdicts import CRITERIA, Criterion

__all__ = [
    "CI_LEVEL",
    "CONVENTIONS",
    "CRITERIA",
    "DISPARITIES",
    "EQUALIZED_ODDS_GAP_MAX",
    "FAIL",
    "FOUR_FIFTHS",
    "INSUFFICIENT",
    "INTERVAL_METHOD",
    "MIN_GROUP_SIZE",
    "MIN_OUTCOME_COUNT",
    "PARITY_GAP_MAX",
    "PASS",
    "RATES",
    "REVIEW",
    "AttributeResult",
    "AuditedAttribute",
    "Criterion",
    "Estimate",
    "FairnessAudit",
    "GapEstimate",
    "GroupRates",
    "adverse_impact_ratios",
    "audit_fairness",
    "audit_shift",
    "audited_attributes",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "group_disparities",
    "group_labels",
    "grouping_notes",
    "lowest_adverse_impact_ratio",
    "resolve_shifts",
    "shift_weights",
    "weighted_auc",
]
