"""Between-group disparities of one attribute, per bootstrap replicate.

fairlearn's definitions, applied to the groups with enough data:
demographic parity difference = max - min approval rate, ratio = min / max
approval rate; equalized odds difference = the larger of the TPR gap and the
FPR gap (max - min over groups); adverse impact ratio of a group = its
approval rate over the highest group approval rate (the four-fifths rule).
Each replicate recomputes the favoured group, as fairlearn's bootstrap does.
"""

from __future__ import annotations

import torch

from ._bootstrap import RATE_INDEX

DISPARITIES: tuple[str, ...] = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "tpr_difference",
    "fpr_difference",
    "surrogate_fidelity_difference",
)


def _range(x: torch.Tensor) -> torch.Tensor:
    return torch.amax(x, dim=-1) - torch.amin(x, dim=-1)


def disparities(rates: torch.Tensor) -> torch.Tensor:
    """rates (..., G, R) -> (..., len(DISPARITIES)); NaN where a group's rate is undefined."""
    approval = rates[..., RATE_INDEX["approval_rate"]]
    tpr_gap = _range(rates[..., RATE_INDEX["tpr"]])
    fpr_gap = _range(rates[..., RATE_INDEX["fpr"]])
    top = torch.amax(approval, dim=-1)
    ratio = torch.where(top > 0, torch.amin(approval, dim=-1) / torch.where(top > 0, top, 1.0), float("nan"))
    out = {
        "demographic_parity_difference": _range(approval),
        "demographic_parity_ratio": ratio,
        "equalized_odds_difference": torch.maximum(tpr_gap, fpr_gap),
        "tpr_difference": tpr_gap,
        "fpr_difference": fpr_gap,
        "surrogate_fidelity_difference": _range(rates[..., RATE_INDEX["surrogate_fidelity"]]),
    }
    return torch.stack([out[d] for d in DISPARITIES], dim=-1)


def adverse_impact_ratios(rates: torch.Tensor) -> torch.Tensor:
    """rates (..., G, R) -> (..., G): each group's approval rate over the most favoured group's."""
    approval = rates[..., RATE_INDEX["approval_rate"]]
    top = torch.amax(approval, dim=-1, keepdim=True)
    return torch.where(top > 0, approval / torch.where(top > 0, top, 1.0), float("nan"))
