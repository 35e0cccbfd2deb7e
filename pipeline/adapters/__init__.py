"""Adapters: a lender's own model, read from its file and its model card, as an audited model.

An *adapter* makes a model saved by another library look like the models
credit-audit trains (`pipeline.audited_model.AuditedModel`): `features` (the
card's columns, in the model's order), `threshold_` (the card's policy) and
`predict_proba(frame)` -> (n, 2), with P(adverse) in column 1. Explainers,
fairness and reports then audit it unchanged.

`load_audited_model(path)` reads `<stem>.card.toml` beside the model,
refuses a pickle before anything parses the file, checks the file's SHA-256
when the card gives one, and loads the format the card names: ONNX,
TorchScript, skops (scikit-learn), XGBoost JSON/UBJ, LightGBM text, or a
folder written by `CreditModel.save`. `check_inputs` and `check_outputs` are
the checks a run makes against the schema and the data before auditing.
Each format's library is imported only when a model of that format is loaded.
Every error is a ValueError naming the file and what was expected.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ._base import CHUNK_ROWS, FileModel
from ._card import CARD_SUFFIX, MODEL_TYPES, CardFile, ModelCard, card_path, parse_card, read_card
from ._checks import check_inputs, check_outputs
from ._errors import (
    MSG_NO_LIBRARY,
    MSG_NO_MODEL,
    MSG_SHA256,
    AdapterError,
    ModelCardError,
    ModelFileError,
    ModelMismatchError,
)
from ._files import bytes_sha256, folder_sha256, read_model, refuse_pickle, refuse_zip_bomb

__all__ = [
    "CARD_SUFFIX", "CHUNK_ROWS", "MODEL_TYPES", "AdapterError", "CardFile", "FileModel", "ModelCard",
    "ModelCardError", "ModelFileError", "ModelMismatchError", "card_path", "check_inputs", "check_outputs",
    "load_audited_model", "model_sha256", "parse_card", "read_card",
]


# The package each card type needs at run time: (module imported, distribution to install).
LIBRARIES = {"onnx": ("onnxruntime", "onnxruntime"), "torchscript": ("torch", "torch"), "skops": ("skops.io", "skops"),
             "xgboost": ("xgboost", "xgboost"), "lightgbm": ("lightgbm", "lightgbm"),
             "credit-audit-mlp": ("torch", "torch")}


def _require_library(kind: str, path: Path, card: Path) -> None:
    """A clear error when the format's library is missing (the runtime wheel need not carry every format's)."""
    module, package = LIBRARIES[kind]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ModelFileError(MSG_NO_LIBRARY.format(file=path, card=card, kind=kind, package=package,
                                                   reason=exc)) from None


def _adapter(kind: str) -> type[FileModel]:
    """The adapter class of a card type; its module (and library) is imported only now."""
    if kind == "onnx":
        from ._onnx import OnnxModel as found
    elif kind == "torchscript":
        from ._torchscript import TorchScriptModel as found
    elif kind == "skops":
        from ._skops import SkopsModel as found
    elif kind == "xgboost":
        from ._trees import XGBoostModel as found
    elif kind == "lightgbm":
        from ._trees import LightGBMModel as found
    else:
        from ._mlp import CreditMLP as found
    return found


def model_sha256(path: str | Path) -> str:
    """The value a card's `sha256` must hold: a file's SHA-256, or a CreditModel folder's (pipeline.adapters._files)."""
    path = Path(path)
    return folder_sha256(path) if path.is_dir() else bytes_sha256(read_model(path))


def load_audited_model(path: str | Path) -> FileModel:
    """The model at `path` (a file, or a CreditModel folder) read through the card beside it.

    Order matters for safety: the card is read and the pickle checks run
    before any library sees the file, and the hash is checked before loading.
    The file is read once; its bytes are what is hashed, checked and loaded.
    """
    path = Path(path)
    card_file = read_card(path)
    if not path.exists():
        raise ModelFileError(MSG_NO_MODEL.format(file=path))
    kind = card_file.card.model.type
    if kind == "credit-audit-mlp" and path.is_dir():
        data, sha256 = b"", folder_sha256(path)  # CreditModel.load reads its own files (weights_only)
    else:
        data = read_model(path)
        refuse_pickle(path, data)
        refuse_zip_bomb(path, data)
        sha256 = bytes_sha256(data)
    expected = card_file.card.model.sha256
    if expected is not None and expected != sha256:
        raise ModelFileError(MSG_SHA256.format(file=path, actual=sha256, card=card_file.path, expected=expected))
    _require_library(kind, path, card_file.path)
    return _adapter(kind)(path, card_file, sha256, data)
