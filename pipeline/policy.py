"""How probabilities of default become approve/decline decisions.

The threshold is a business decision, not a model property, so it is
configuration with a few named policies; the chosen number is recorded in
the model metadata and every report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from sklearn.metrics import roc_curve

PolicyKind = Literal["fixed", "decline_rate", "max_youden"]


@dataclass(frozen=True)
class ThresholdPolicy:
    """`fixed`: decline at P(default) >= value; `decline_rate`: decline the riskiest `value`
    share of the validation split; `max_youden`: the threshold maximising TPR - FPR on it."""

    kind: PolicyKind = "fixed"
    value: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "decline_rate", "max_youden"):
            raise ValueError(f"threshold policy must be fixed, decline_rate or max_youden, got {self.kind!r}")
        if not 0.0 < self.value < 1.0:
            raise ValueError(f"threshold policy value must be between 0 and 1, got {self.value}")

    def threshold(self, p_default: np.ndarray, y: np.ndarray) -> float:
        if self.kind == "fixed":
            return float(self.value)
        if self.kind == "decline_rate":
            return float(np.quantile(p_default, 1.0 - self.value))
        fpr, tpr, thr = roc_curve(y, p_default)
        return float(np.clip(thr[np.argmax(tpr - fpr)], 0.0, 1.0))

    def describe(self, threshold: float) -> str:
        return f"decline when the estimated probability of default is {threshold:.1%} or more ({self.kind} policy)"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ThresholdPolicy:
        return cls(kind=d["kind"], value=float(d["value"]))


def policy_of(model: object) -> ThresholdPolicy:
    """The policy that set a model's threshold: the project's MLP keeps its own; a lender's model declares a
    fixed threshold on its card, so its challengers are held to that same fixed cut-off."""
    own = getattr(model, "policy", None)
    return own if isinstance(own, ThresholdPolicy) else ThresholdPolicy("fixed", float(model.threshold_))  # type: ignore[attr-defined]
