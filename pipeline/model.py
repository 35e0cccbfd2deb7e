"""The default-risk model: a PyTorch MLP with its preprocessing, sklearn-style.

`CreditModel` follows the scikit-learn contract (parameters in `__init__`,
`fit` returns self, learned attributes end in `_`, `predict_proba` returns
one column per class) so the surrogate tree, fairlearn and the explainers can
treat it like any estimator. It implements every protocol of
`pipeline.audited_model`: `AuditedModel`, and, for on-device explainers,
`Differentiable` (`torch_function`: the whole `raw applicant -> probability
of default` function) and `Blockwise` (`blockwise`: that function as
per-feature encoder, first layer and head). Explainers use those methods,
never `net_` itself.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sklearn.base import BaseEstimator
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from . import schema as S
from ._encoding import DefaultRiskNet
from ._io import atomic_write_bytes, atomic_write_text
from ._loading import VALIDATION_FRACTION  # held out for early stopping and calibration
from .audited_model import BlockwiseParts
from .policy import ThresholdPolicy
from .versions import library_versions

WEIGHTS_FILE = "model.pt"
META_FILE = "model.json"
ProgressFn = Callable[[int, float, float], None]

MSG_META_UNREADABLE = "{file}: cannot read the model metadata ({reason})"
MSG_META_NOT_JSON = "{file}: not valid JSON model metadata ({reason})"
MSG_META_NOT_OBJECT = "{file}: expected a JSON object of model metadata, got {kind}"
MSG_META_KEY = "{file}: key {key!r} must be {expected}, got {value}"
MSG_META_MISSING = "{file}: key {key!r} is missing; it must be {expected}"
MSG_NO_HASH = (
    "{file}: no model_hash: the weights in {weights} cannot be verified, so they are not loaded;"
    " save the model again with credit-audit, which records the hash"
)
MSG_WEIGHTS = "{file}: cannot read the model weights ({reason})"
MSG_ARCHITECTURE = "{file}: the weights do not fit the architecture described in {meta} ({reason})"
MSG_HASH_MISMATCH = "{directory}: model weights do not match the model_hash in {meta}"


class ModelFileError(ValueError):
    """A saved model folder is missing, malformed or altered; the message names the file and key."""


class _Policy(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    kind: Literal["fixed", "decline_rate", "max_youden"] = Field(description='"fixed", "decline_rate" or "max_youden"')
    value: float = Field(gt=0, lt=1, description="a number strictly between 0 and 1")


class _Metadata(BaseModel):
    """What `load` relies on in model.json (other keys are informational and kept as written)."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)
    format: Literal[1] = Field(description="1 (the only format this version reads)")
    features: list[Literal[S.FEATURE_NAMES]] = Field(  # type: ignore[valid-type]
        min_length=1, description="a non-empty list of schema feature names")
    hidden: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        min_length=1, max_length=8, description="a list of 1 to 8 layer widths from 1 to 4096")
    dropout: float = Field(ge=0, lt=1, description="a number at least 0 and below 1")
    threshold: float = Field(ge=0, le=1, description="a number between 0 and 1")
    policy: _Policy = Field(description='an object {"kind": ..., "value": ...}')
    seed: int = Field(ge=0, description="a whole number of at least 0")
    best_epoch: int = Field(ge=0, description="a whole number of at least 0")
    n_train: int = Field(ge=1, description="a whole number of at least 1")
    history: list[dict] = Field(default_factory=list, description="a list of per-epoch records")
    data_hash: str = Field(default="", description="text (the training data's hash)")
    model_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="64 lowercase hex digits (SHA-256)")


def seed_everything(seed: int) -> None:
    """Same seed, same device -> same weights and predictions."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True, warn_only=True)


class CreditModel(BaseEstimator):
    """MLP classifier of default risk with class-weighted training and early stopping."""

    def __init__(
        self,
        features: tuple[str, ...] = S.DEFAULT_MODEL_FEATURES,
        hidden: tuple[int, ...] = (64, 32),
        dropout: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        batch_size: int = 256,
        max_epochs: int = 60,
        patience: int = 6,
        validation_fraction: float = VALIDATION_FRACTION,
        policy: ThresholdPolicy | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        self.features = tuple(features)
        self.hidden = tuple(hidden)
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.policy = policy or ThresholdPolicy()
        self.device = torch.device(device)
        self.seed = seed

    # ---- training -------------------------------------------------------
    def _tensor(self, frame: pd.DataFrame) -> torch.Tensor:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"the frame lacks model input column(s) {missing}")
        # copy=True: pandas 3 may hand out a read-only view, which torch refuses to wrap.
        return torch.as_tensor(frame[list(self.features)].to_numpy(np.float32, copy=True), device=self.device)

    def fit(self, frame: pd.DataFrame, y: pd.Series | np.ndarray, progress: ProgressFn | None = None) -> CreditModel:
        """Train on raw features; hold out a stratified validation split for early stopping and calibration."""
        seed_everything(self.seed)
        y = np.asarray(y, dtype=np.float32)
        idx_tr, idx_va = train_test_split(
            np.arange(len(y)), test_size=self.validation_fraction, stratify=y, random_state=self.seed
        )
        x = self._tensor(frame)
        yt = torch.as_tensor(y, device=self.device)
        net = DefaultRiskNet(list(self.features), self.hidden, self.dropout).to(self.device)
        net.encoder.fit(x[idx_tr])
        pos_weight = torch.tensor((1 - y[idx_tr].mean()) / y[idx_tr].mean(), device=self.device)
        self.history_ = self._train(net, x, yt, idx_tr, idx_va, pos_weight, progress)
        self._calibrate(net, x[idx_va], yt[idx_va])
        self.net_ = net.eval()
        self.threshold_ = self.policy.threshold(self._proba(x[idx_va]), y[idx_va])
        self.n_train_ = len(y)
        return self

    def _train(self, net, x, y, idx_tr, idx_va, pos_weight, progress) -> list[dict]:
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        gen = torch.Generator().manual_seed(self.seed)
        tr = torch.as_tensor(idx_tr, device=self.device)
        best, best_state, stale, history = -np.inf, None, 0, []
        for epoch in range(self.max_epochs):
            net.train()
            order = tr[torch.randperm(len(tr), generator=gen).to(self.device)]
            total = 0.0
            for batch in order.split(self.batch_size):
                opt.zero_grad()
                loss = loss_fn(net.logit(x[batch]), y[batch])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(batch)
            net.eval()
            with torch.no_grad():
                val_auc = roc_auc_score(y[idx_va].cpu().numpy(), net.logit(x[idx_va]).cpu().numpy())
            history.append({"epoch": epoch + 1, "train_loss": total / len(tr), "val_auc": float(val_auc)})
            if progress:
                progress(epoch + 1, total / len(tr), float(val_auc))
            if val_auc > best + 1e-4:
                best, stale = val_auc, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break
        net.load_state_dict(best_state)
        self.best_epoch_ = int(np.argmax([h["val_auc"] for h in history]) + 1)
        return history

    @staticmethod
    def _calibrate(net: DefaultRiskNet, x: torch.Tensor, y: torch.Tensor) -> None:
        """Platt scaling: fit a, b in sigmoid(a*logit + b) by maximum likelihood on validation data."""
        with torch.no_grad():
            z = net.logit(x)
        ab = torch.tensor([1.0, 0.0], device=z.device, requires_grad=True)
        opt = torch.optim.LBFGS([ab], lr=0.5, max_iter=100)

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(ab[0] * z + ab[1], y)
            loss.backward()
            return loss

        opt.step(closure)
        net.calib.copy_(ab.detach())

    # ---- prediction -----------------------------------------------------
    def _check_fitted(self) -> None:
        check_is_fitted(self, "net_", msg="This CreditModel is not fitted yet; call fit() or CreditModel.load() first")

    @torch.no_grad()
    def _proba(self, x: torch.Tensor, chunk: int = 65536) -> np.ndarray:
        return torch.cat([self.net_(part) for part in x.split(chunk)]).cpu().numpy().astype(np.float64)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Columns: P(no default), P(default), as scikit-learn classifiers do."""
        self._check_fitted()
        p = self._proba(self._tensor(frame))
        return np.column_stack([1 - p, p])

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """1 = decline (predicted default at or above the threshold), 0 = approve."""
        return (self.predict_proba(frame)[:, 1] >= self.threshold_).astype(np.int64)

    classes_ = np.array([0, 1])

    # ---- capabilities of pipeline.audited_model -------------------------
    def torch_function(self, device: str | torch.device | None = None) -> torch.nn.Module:
        """`Differentiable`: float32 raw features (n, F) -> P(default) (n,), in eval mode, on `device`.

        The model's own network when it already lives there, otherwise a copy,
        so explaining on another device never moves the caller's model.
        """
        self._check_fitted()
        device = self.device if device is None else torch.device(device)
        net = self.net_
        if next(net.parameters()).device != device:
            net = copy.deepcopy(net).to(device)
        return net.eval()

    def blockwise(self, device: str | torch.device | None = None) -> BlockwiseParts:
        """`Blockwise`: the parts of `torch_function(device)` (per-feature encoder, first layer, head)."""
        return self.torch_function(device).blockwise()

    def to(self, device: str | torch.device) -> CreditModel:
        """Move the fitted network (explainers may run on another device than training)."""
        self.device = torch.device(device)
        if hasattr(self, "net_"):
            self.net_.to(self.device)
        return self

    def architecture(self) -> str:
        """The network in one line, for the record and the report (the model describes itself)."""
        self._check_fitted()
        return (f"MLP {self.net_.encoder.width} -> " + " -> ".join(str(h) for h in self.hidden)
                + f" -> 1, ReLU, dropout {self.dropout:.2f}, Platt-calibrated sigmoid output")

    # ---- persistence ----------------------------------------------------
    def metadata(self, data_hash: str = "") -> dict:
        self._check_fitted()
        return {
            "format": 1,
            "features": list(self.features),
            "hidden": list(self.hidden),
            "dropout": self.dropout,
            "threshold": self.threshold_,
            "policy": self.policy.to_dict(),
            "seed": self.seed,
            "best_epoch": self.best_epoch_,
            "n_train": self.n_train_,
            "history": getattr(self, "history_", []),
            "training": {k: getattr(self, k) for k in ("lr", "weight_decay", "batch_size", "max_epochs", "patience")},
            "preprocessing": "signed log1p for NT$ amounts; months late + indicators for repayment status;"
            " one-hot for categories; standardised with training statistics",
            "calibration": "Platt scaling on the validation split",
            "data_hash": data_hash,
            "versions": library_versions(),
        }

    def model_hash(self) -> str:
        """SHA-256 over weights and architecture: identifies the model independent of file bytes."""
        self._check_fitted()
        h = hashlib.sha256(json.dumps([list(self.features), list(self.hidden)]).encode())
        for name, tensor in sorted(self.net_.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def save(self, directory: str | Path, data_hash: str = "") -> list[Path]:
        """Write weights (state dict only) and JSON metadata; returns the paths written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save({k: v.cpu() for k, v in self.net_.state_dict().items()}, buf)
        data_hash = data_hash or getattr(self, "training_data_hash_", "")
        meta = {**self.metadata(data_hash), "model_hash": self.model_hash()}
        atomic_write_bytes(directory / WEIGHTS_FILE, buf.getvalue())
        atomic_write_text(directory / META_FILE, json.dumps(meta, indent=2))
        return [directory / WEIGHTS_FILE, directory / META_FILE]

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> CreditModel:
        """Rebuild from `save` output; weights are loaded with weights_only=True (no pickle code).

        Refuses (ModelFileError, naming the file and key) a malformed model.json, one without
        its model_hash (unverifiable weights), unreadable weights, and weights that do not match.
        """
        directory = Path(directory)
        meta = _read_metadata(directory / META_FILE)
        model = cls(
            features=tuple(meta.features),
            hidden=tuple(meta.hidden),
            dropout=meta.dropout,
            policy=ThresholdPolicy(kind=meta.policy.kind, value=meta.policy.value),
            device=device,
            seed=meta.seed,
        )
        net = DefaultRiskNet(list(model.features), model.hidden, model.dropout)
        _load_weights(net, directory / WEIGHTS_FILE, directory / META_FILE)
        model.net_ = net.to(model.device).eval()
        model.threshold_ = float(meta.threshold)
        model.best_epoch_ = meta.best_epoch
        model.n_train_ = meta.n_train
        model.history_ = meta.history
        model.training_data_hash_ = meta.data_hash
        if meta.model_hash != model.model_hash():
            raise ModelFileError(MSG_HASH_MISMATCH.format(directory=directory, meta=META_FILE))
        return model


def _read_metadata(file: Path) -> _Metadata:
    """model.json checked key by key before any weight is read."""
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelFileError(MSG_META_UNREADABLE.format(file=file, reason=exc.strerror or exc)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(MSG_META_NOT_JSON.format(file=file, reason=exc)) from None
    if not isinstance(raw, dict):
        raise ModelFileError(MSG_META_NOT_OBJECT.format(file=file, kind=type(raw).__name__))
    if "model_hash" not in raw:
        raise ModelFileError(MSG_NO_HASH.format(file=file, weights=file.with_name(WEIGHTS_FILE)))
    try:
        return _Metadata.model_validate(raw)
    except ValidationError as exc:
        raise ModelFileError(_metadata_problem(exc, file)) from None


def _metadata_problem(exc: ValidationError, file: Path) -> str:
    """The first problem, naming the key (dotted for nested ones: policy.value, hidden.0)."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    info = _Metadata.model_fields.get(str(err["loc"][0]))
    if len(err["loc"]) > 1 and err["loc"][0] == "policy":
        info = _Policy.model_fields.get(str(err["loc"][1]), info)
    expected = info.description if info is not None else "a known key"
    if err["type"] == "missing":
        return MSG_META_MISSING.format(file=file, key=key, expected=expected)
    value = repr(err["input"])
    value = value if len(value) <= 80 else f"{value[:80]}..."
    return MSG_META_KEY.format(file=file, key=key, expected=expected, value=value)


def _load_weights(net: DefaultRiskNet, weights: Path, meta: Path) -> None:
    """torch.load with weights_only=True; any failure names the file instead of a torch traceback."""
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(MSG_WEIGHTS.format(file=weights, reason="no such file")) from None
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise ModelFileError(MSG_WEIGHTS.format(file=weights, reason=f"{type(exc).__name__}: {exc}"[:300])) from None
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        reason = str(exc).splitlines()[0][:300]
        raise ModelFileError(MSG_ARCHITECTURE.format(file=weights, meta=meta.name, reason=reason)) from None
