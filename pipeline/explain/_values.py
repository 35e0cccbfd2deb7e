"""One immutable result type for feature attributions, whichever method made them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..columns import SHAP, explanation_column


@dataclass(frozen=True)
class Attributions:
    """Per-applicant attributions (n, len(features)) of `output` relative to `base`.

    For SHAP, `base + values.sum(1) == output` (efficiency); for Integrated
    Gradients `base` is f(baseline) and the same identity is completeness.
    Methods without a reference point (LIME, saliency, loss gradients) have
    `base` NaN; rows a method did not explain are NaN. `method` names the
    estimator and its settings so a report can say how the numbers were made.
    """

    values: np.ndarray
    base: float
    output: np.ndarray
    features: tuple[str, ...]
    method: str

    def __post_init__(self) -> None:
        for name in ("values", "output"):
            arr = np.array(getattr(self, name), dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def additivity_gap(self) -> np.ndarray:
        """|base + sum of values - output| per applicant (0 up to rounding for SHAP)."""
        return np.abs(self.base + self.values.sum(1) - self.output)

    def frame(self, method: str = SHAP) -> pd.DataFrame:
        """The values as applicants-table columns of `method` (pipeline.columns)."""
        return pd.DataFrame(self.values, columns=[explanation_column(method, f) for f in self.features])

    def relative_error(self, reference: Attributions) -> np.ndarray:
        """Per applicant ||phi - phi_ref||_2 / ||phi_ref||_2: the accuracy measure the bench reports."""
        num = np.linalg.norm(self.values - reference.values, axis=1)
        return num / np.maximum(np.linalg.norm(reference.values, axis=1), 1e-12)
