"""The model being audited: what explainers, fairness checks and reports may ask of it, and nothing more.

An *audited model* is any classifier of default risk that reads the raw
applicant frame (LIMIT_BAL, PAY_0, ...; preprocessing is its own business)
and says, like a scikit-learn classifier, how likely each applicant is to
default. That is all an audit strictly needs, so a lender's own model can
be audited through a thin adapter:

- `AuditedModel` (required): `features`, `threshold_`, `predict_proba`.

Some explainers are exact or fast only when the model offers more; they ask
for it with `capability(model, X)` and fall back or report "not applicable"
otherwise, never reaching into a model's layers:

- `Differentiable`: the model as one torch function of the raw features
  (gradients, saliency, Integrated Gradients; LIME and the counterfactual
  search score samples with it on the device);
- `Blockwise`: additionally, that function written as a per-feature encoder
  feeding one linear layer and a head (`BlockwiseParts`), which lets Kernel
  SHAP and LIME compute each feature's share of the first layer once and
  recombine shares instead of running the whole network per sample;
- `TreeEnsemble`: the model is a tree ensemble whose native booster reads
  the raw features in `features` order and whose probability is exactly
  `predict_proba`'s column 1, which lets SHAP be computed exactly by
  TreeSHAP instead of estimated from sampled coalitions.

`pipeline.model.CreditModel` implements the first three. Torch is imported only
for type checking here: the protocols cost nothing to import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import torch

MSG_NOT_AUDITABLE = (
    "an audited model needs `features`, `threshold_` and `predict_proba(frame)` (pipeline.audited_model.AuditedModel);"
    " {model} lacks {missing} (not fitted yet?)"
)
MSG_MISSING_CAPABILITY = "{what} needs a model with the {capability} capability ({members}); {model} does not offer it"
_REQUIRED = ("features", "threshold_", "predict_proba")


@runtime_checkable
class AuditedModel(Protocol):
    """What every audited model offers (the scikit-learn classifier contract, for one positive class).

    `features`: the raw model inputs, in the order every tensor and array
    argument uses. `threshold_`: applicants with P(default) at or above it
    are declined. `predict_proba(frame)`: (n, 2) array; column 1 is
    P(default) of each row of the raw applicant frame.
    """

    features: tuple[str, ...]
    threshold_: float

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray: ...


@runtime_checkable
class Differentiable(Protocol):
    """A model that is one torch function of its raw features."""

    def torch_function(self, device: torch.device | str) -> torch.nn.Module:
        """A module on `device` mapping float32 raw features (n, F), `features` order, to P(default) (n,).

        It must not move or alter the model itself (return a copy when the
        model lives elsewhere); explainers differentiate through it.
        """
        ...


@dataclass(frozen=True)
class BlockwiseParts:
    """P(default) written as  head(bias + sum_j encode_blocks(x)[j] @ weight[:, block j].T).

    `encode_blocks(x)`: raw features (n, F) -> F tensors, block j (n,
    block_widths[j]) depending on feature j only (a feature-separable
    encoding). `weight` (H, sum of widths) and `bias` (H,) are the first
    linear layer over the concatenated blocks; `head` maps first-layer
    pre-activations (..., H) to P(default) (...) and may overwrite its input
    (explainers pass scratch tensors). Kernel SHAP's coalition values and
    LIME's perturbed samples then cost one add of precomputed per-feature
    shares plus the head, instead of the whole network.
    """

    encode_blocks: Callable[[torch.Tensor], Sequence[torch.Tensor]]
    block_widths: tuple[int, ...]
    weight: torch.Tensor
    bias: torch.Tensor
    head: Callable[[torch.Tensor], torch.Tensor]


@runtime_checkable
class Blockwise(Differentiable, Protocol):
    """A differentiable model that also exposes its per-feature encoder and the layers after it."""

    def blockwise(self, device: torch.device | str) -> BlockwiseParts:
        """The parts of `torch_function(device)`, on `device`, for share-wise evaluation."""
        ...


@runtime_checkable
class TreeEnsemble(Protocol):
    """A model that is a tree ensemble shap.TreeExplainer can read (XGBoost, LightGBM, scikit-learn trees)."""

    def tree_booster(self) -> object:
        """The native model: an xgboost.Booster, a lightgbm.Booster or a fitted scikit-learn tree ensemble.

        Its input columns are the raw features in `features` order (no
        preprocessing outside it) and its probability of class 1 is
        `predict_proba(frame)[:, 1]`. The explainer checks this on every
        call and falls back to Kernel SHAP, saying why, when it does not hold
        (e.g. a calibration layered on top of the trees), so a wrong booster
        costs speed, never correctness.
        """
        ...


P = TypeVar("P")


def check_auditable(model: object) -> AuditedModel:
    """`model` itself, once it is known to offer what every audit step needs; ValueError saying what lacks."""
    missing = [name for name in _REQUIRED if not hasattr(model, name)]
    if missing:
        raise ValueError(MSG_NOT_AUDITABLE.format(model=type(model).__name__, missing=missing))
    return model  # type: ignore[return-value]


def capability(model: object, protocol: type[P]) -> P | None:
    """`model` typed as `protocol` when it offers it (e.g. `capability(m, Differentiable)`), else None."""
    return model if isinstance(model, protocol) else None  # type: ignore[return-value]


def members(protocol: type) -> list[str]:
    """The public members a capability protocol asks for, for messages."""
    own = {n for klass in protocol.__mro__ if klass not in (Protocol, object) for n in vars(klass)}
    return sorted(n for n in own if not n.startswith("_"))


class MissingCapability(TypeError):
    """An explainer was asked of a model that lacks the capability it needs."""

    def __init__(self, what: str, model: object, protocol: type) -> None:
        super().__init__(
            MSG_MISSING_CAPABILITY.format(
                what=what,
                capability=protocol.__name__,
                members=", ".join(members(protocol)),
                model=type(model).__name__,
            )
        )
        self.protocol = protocol


def require(model: object, protocol: type[P], what: str) -> P:
    """`model` typed as `protocol`, or MissingCapability naming `what` needed it."""
    found = capability(model, protocol)
    if found is None:
        raise MissingCapability(what, model, protocol)
    return found


def decisions(model: AuditedModel, frame: pd.DataFrame) -> np.ndarray:
    """1 = decline, 0 = approve: P(default) at or above the model's threshold (every model's policy)."""
    return (model.predict_proba(frame)[:, 1] >= model.threshold_).astype(np.int64)
