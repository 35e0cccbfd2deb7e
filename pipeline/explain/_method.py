"""What one method of the portfolio explanation is: the contract between a method module and the registry.

Each method module (SHAP, grouped SHAP, the surrogate's TreeSHAP, saliency,
Integrated Gradients, LIME, counterfactuals, loss gradients) keeps its
algorithm behind one entry point and describes, in one `Method` value, how
it takes part in `explain_portfolio`: what it reads from the shared
`PortfolioInputs`, which applicants-table columns, global importances and
summary sections it returns (`MethodResult`), the limitation the audit
report prints, the model capability it needs, and how its numbers combine
when the portfolio is explained in chunks. `explain_portfolio` only loops
over the registry (`_registry.METHODS`), so adding or removing a method
touches its own module, its test and one line of the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..audited_model import AuditedModel, capability, members
from ..constants import COUNTERFACTUAL_MARGIN
from ._values import Attributions

# How a global importance of chunks combines into the portfolio's (pipeline.explain_chunks):
OVER_APPLICANTS = "applicants"  # a mean of |attribution| over applicants: weighted by each chunk's applicants
OVER_DECLINED = "declined"  # the same over declined applicants only
STD_SCALED = "std_scaled"  # mean |gradient| x the explained rows' feature std: rescaled to the portfolio's std
SAME_IN_EVERY_CHUNK = "fixed"  # a property of a fitted object (the surrogate tree), not of the rows
IMPORTANCE_MERGES = (OVER_APPLICANTS, OVER_DECLINED, STD_SCALED, SAME_IN_EVERY_CHUNK)
MSG_NOT_APPLICABLE = "not applicable: the model does not offer {capability} ({members})"
MSG_MERGE = "method {name!r}: importance merges must be among {choices}, got {unknown}"


@dataclass(frozen=True)
class PortfolioInputs:
    """Everything a method may read, the same object for every method of one `explain_portfolio` call.

    `declined` holds row positions in `frame`; `training_frame` is the
    training split (LIME's sampling statistics, counterfactual candidates);
    `labels` the observed labels of `frame`, or None when unknown;
    `counterfactual_margin` and `max_limit_factor` the audit configuration's
    `[audit.counterfactuals]` settings.
    """

    model: AuditedModel
    surrogate: Any
    frame: pd.DataFrame
    declined: np.ndarray
    background: pd.DataFrame
    training_frame: pd.DataFrame
    labels: np.ndarray | None
    device: torch.device
    seed: int
    backend: str
    n_coalitions: int
    lime_samples: int
    counterfactual_margin: float = COUNTERFACTUAL_MARGIN
    max_limit_factor: float | None = None  # None: the schema's Feature.max_factor

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.model.features)

    @property
    def rows(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class MethodResult:
    """What one method adds to the portfolio explanation.

    `attributions`: per-applicant values over every row of the frame (NaN
    rows where the method explains only some), read by the reasons and
    stability assembly. `columns`: numeric applicants-table columns;
    `records`: per-applicant JSON text columns (both aligned with the frame).
    `importance`: global importance per method key, in order. `description`:
    the summary's `methods` entry. `limitation`: this run's own wording of
    the method's limitation (e.g. which variant computed it), replacing
    `Method.limitation` in the summary the report prints. `details`: the
    method's own summary sections (e.g. `shap`, `counterfactuals`).
    """

    attributions: Attributions | None = None
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)
    records: Mapping[str, list] = field(default_factory=dict)
    importance: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    description: str | None = None
    limitation: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """One registered method: its name (key of its importance, limitation, not-applicable note) and its run.

    `run` returns None when there is nothing to compute for these inputs
    (e.g. loss gradients without labels): nothing is recorded, not even a
    timing. `needs`: the `pipeline.audited_model` capability it cannot run
    without. `timing`: the key its seconds go under in the summary's
    `timings` (methods sharing a key add up; default `name`).
    `importance_merges`: for each importance key it returns, one of
    `IMPORTANCE_MERGES`. `merge_details`: combines the chunks' summaries
    into this method's summary sections (None: the first chunk's stand).
    """

    name: str
    run: Callable[[PortfolioInputs], MethodResult | None]
    limitation: str | None = None
    needs: type | None = None
    timing: str | None = None
    importance_merges: Mapping[str, str] = field(default_factory=dict)
    merge_details: Callable[[list[dict]], dict] | None = None

    def __post_init__(self) -> None:
        unknown = {k: v for k, v in self.importance_merges.items() if v not in IMPORTANCE_MERGES}
        if unknown:
            raise ValueError(MSG_MERGE.format(name=self.name, choices=IMPORTANCE_MERGES, unknown=unknown))

    @property
    def timing_key(self) -> str:
        return self.timing or self.name

    def not_applicable(self, model: object) -> str | None:
        """Why this method cannot explain `model` (for the summary), or None when it can."""
        if self.needs is None or capability(model, self.needs) is not None:
            return None
        return MSG_NOT_APPLICABLE.format(capability=self.needs.__name__, members=", ".join(members(self.needs)))
