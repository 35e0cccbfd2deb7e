"""The named between-group disparities, each one reduction of an attribute's `GroupRates`.

fairlearn's definitions, applied to the groups with enough data:
demographic parity difference = max - min approval rate, ratio = min / max
approval rate; equalized odds difference = the larger of the TPR gap and the
FPR gap (max - min over groups); adverse impact ratio of a group = its
approval rate over the highest group approval rate (the four-fifths rule; its
threshold is `pipeline.constants.FOUR_FIFTHS`). The lowest adverse impact
ratio *is* the demographic parity ratio, so both names read one computation.
Each replicate recomputes the favoured group, as fairlearn's bootstrap does.
Approval, not decline, is the favourable outcome whose rates are compared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from ._rates import Estimate, GroupRates

APPROVAL = "approval_rate"


def demographic_parity_difference(rates: GroupRates) -> Estimate:
    return rates.difference(APPROVAL)


def adverse_impact_ratios(rates: GroupRates) -> Estimate:
    """Each group's approval rate over the most favoured group's: value (G,), replicates (B, G)."""
    return rates.ratio_to_max(APPROVAL)


def lowest_adverse_impact_ratio(rates: GroupRates) -> Estimate:
    """The four-fifths statistic: the lowest adverse impact ratio, i.e. the demographic parity ratio."""
    return rates.ratio(APPROVAL)


def equalized_odds_difference(rates: GroupRates) -> Estimate:
    return rates.difference("tpr").maximum(rates.difference("fpr"))


# Name (as written to audit.json, in that order) -> reduction.
REDUCTIONS: Mapping[str, Callable[[GroupRates], Estimate]] = MappingProxyType({
    "demographic_parity_difference": demographic_parity_difference,
    "demographic_parity_ratio": lowest_adverse_impact_ratio,
    "equalized_odds_difference": equalized_odds_difference,
    "tpr_difference": lambda r: r.difference("tpr"),
    "fpr_difference": lambda r: r.difference("fpr"),
    "surrogate_fidelity_difference": lambda r: r.difference("surrogate_fidelity"),
})
DISPARITIES: tuple[str, ...] = tuple(REDUCTIONS)


def disparities(rates: GroupRates) -> dict[str, Estimate]:
    """Every named disparity of one attribute, in `DISPARITIES` order."""
    return {name: reduce(rates) for name, reduce in REDUCTIONS.items()}
