"""Fairness: does the model treat protected groups differently, and how sure are we?

A *group* is the set of held-out applicants sharing a value of a protected
attribute (SEX, MARRIAGE, EDUCATION, AGE in bands) or of an intersection
(SEX x AGE band, SEX x EDUCATION). Per group the audit measures the model's
decisions (approval and decline rates), its errors (TPR, FPR, FNR, precision,
with "default" as the model's positive class), its ranking (ROC AUC) and its
calibration. A *disparity* compares groups: the demographic parity
difference and ratio of approval rates, the equalized odds difference, and
each group's adverse impact ratio (four-fifths rule). Every rate and
disparity carries a stratified bootstrap interval computed in torch on the
chosen device; verdicts (pass / review / fail) are read off the intervals.

Point estimates follow fairlearn's MetricFrame definitions exactly; the
audit adds proxies (can the inputs reveal a protected attribute?), the cost
of unawareness and of mitigation (analysis only: production decisions are
unchanged) and explanation disparity (do declined groups get different
reasons?).
"""

from ._audit import CONVENTIONS, AttributeResult, FairnessAudit, audit_fairness, group_disparities
from ._bootstrap import RATES, weighted_auc
from ._disparities import DISPARITIES
from ._groups import AuditedAttribute, audited_attributes, group_labels, grouping_notes
from ._verdicts import (
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

__all__ = [
    "CI_LEVEL",
    "CONVENTIONS",
    "DISPARITIES",
    "EQUALIZED_ODDS_GAP_MAX",
    "FAIL",
    "FOUR_FIFTHS",
    "INSUFFICIENT",
    "MIN_GROUP_SIZE",
    "MIN_OUTCOME_COUNT",
    "PARITY_GAP_MAX",
    "PASS",
    "RATES",
    "REVIEW",
    "AttributeResult",
    "AuditedAttribute",
    "FairnessAudit",
    "audit_fairness",
    "audited_attributes",
    "group_disparities",
    "group_labels",
    "grouping_notes",
    "weighted_auc",
]
