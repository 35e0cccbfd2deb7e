"""What every adapter shares: the card's columns and threshold, chunked scoring, the output read as P(adverse).

A format module only says how to load its file and how to score a float
block of rows (`_raw`); reading the frame, batching, choosing the adverse
column and checking the output's shape happen here, once, for all formats.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from ._card import CardFile, ModelCard
from ._errors import (
    MSG_FRAME_COLUMNS,
    MSG_NO_ADVERSE_COLUMN,
    MSG_NOT_NUMERIC,
    MSG_OUTPUT_SHAPE,
    MSG_SCORING,
    AdapterError,
    ModelFileError,
    ModelMismatchError,
)
from ._files import identity_sha256

CHUNK_ROWS = 65_536  # rows scored at once: bounds the memory a model's intermediate arrays take


class FileModel:
    """A lender's model read from a file and its card: the `AuditedModel` contract over `_raw`.

    Subclasses set `library` (the distribution name, for the version in the
    record), load `data` (the file's bytes, already hashed and checked) and
    implement `_raw(block)` for a frame of the card's columns.
    """

    library = ""
    input_width: int | None = None  # the model's own input width, where its format records it
    input_names: tuple[str, ...] | None = None  # the model's own input names, where its format records them

    def __init__(self, path: Path, card_file: CardFile, sha256: str, data: bytes) -> None:
        self.path = path
        self.data = data  # the bytes hashed and checked; formats load these, never the file again
        self.card_file = card_file
        self.sha256 = sha256
        self.features: tuple[str, ...] = tuple(card_file.card.inputs.columns)
        self.threshold_: float = card_file.card.policy.threshold

    @property
    def card(self) -> ModelCard:
        return self.card_file.card

    @property
    def kind(self) -> str:
        return self.card.model.type

    classes_ = np.array([0, 1])

    def _raw(self, block: pd.DataFrame) -> np.ndarray:
        """The model's own output for `block` (the card's columns, in order)."""
        raise NotImplementedError

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """(n, 2) float64: P(favourable), P(adverse) for each row, scored in chunks of CHUNK_ROWS."""
        block = self.columns(frame)
        parts = [self._adverse(self._scored(block.iloc[i:i + CHUNK_ROWS], i), min(CHUNK_ROWS, len(block) - i))
                 for i in range(0, len(block), CHUNK_ROWS)]
        p = np.concatenate(parts) if parts else np.empty(0)
        return np.column_stack([1 - p, p])

    def _scored(self, chunk: pd.DataFrame, start: int) -> np.ndarray:
        """`_raw(chunk)`; a library's failure (a wrong width, a type it cannot read) named as bad input, not a traceback."""
        try:
            return self._raw(chunk)
        except AdapterError:
            raise
        except Exception as exc:  # each library raises its own types (RuntimeError, XGBoostError, ...)
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]
            raise ModelMismatchError(MSG_SCORING.format(file=self.path, first=start + 1, last=start + len(chunk),
                                                        reason=reason, count=len(self.features))) from None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """1 = decline (P(adverse) at or above the card's threshold), 0 = approve."""
        return (self.predict_proba(frame)[:, 1] >= self.threshold_).astype(np.int64)

    def columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The card's columns of `frame`, in the card's order; a missing column is named, not a KeyError."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ModelMismatchError(MSG_FRAME_COLUMNS.format(file=self.path, missing=missing,
                                                              have=list(frame.columns)))
        return frame[list(self.features)]

    def floats(self, block: pd.DataFrame, dtype: type = np.float32) -> np.ndarray:
        """The block as floats (n, F): float32 for ONNX, TorchScript and XGBoost, float64 where a library keeps it."""
        for column in block.columns:
            if not pd.api.types.is_numeric_dtype(block[column]) or pd.api.types.is_bool_dtype(block[column]):
                raise ModelMismatchError(MSG_NOT_NUMERIC.format(file=self.path, column=column,
                                                                dtype=block[column].dtype))
        return block.to_numpy(dtype=dtype, copy=True)  # writable: torch refuses to wrap a read-only array

    def _adverse(self, raw: np.ndarray, rows: int) -> np.ndarray:
        """P(adverse) (n,) from an output of shape (n,), (n, 1) or (n, 2) (the card's adverse_column)."""
        raw = np.asarray(raw)
        if raw.ndim == 2 and raw.shape == (rows, 2):
            column = self.card.output.adverse_column
            if column is None:
                raise ModelFileError(MSG_NO_ADVERSE_COLUMN.format(file=self.path, card=self.card_file.path))
            return raw[:, column].astype(np.float64)
        if raw.shape in ((rows,), (rows, 1)):
            return raw.reshape(rows).astype(np.float64)
        raise ModelFileError(MSG_OUTPUT_SHAPE.format(file=self.path, shape=raw.shape, rows=rows))

    def model_hash(self) -> str:
        """SHA-256 over the model file's bytes and the card's bytes: the identity of what was audited."""
        return identity_sha256(self.sha256, self.card_file.data)

    def describe(self) -> dict:
        """What the run record says about the model: enough to find and re-check the very files audited."""
        return {
            "type": self.kind,
            "name": self.card.model.name,
            "file": self.path.name,
            "sha256": self.sha256,
            "card": self.card_file.path.name,
            "card_sha256": _bytes_sha256(self.card_file.data),
            "model_hash": self.model_hash(),
            "library": self.library,
            "library_version": _version(self.library),
            "features": list(self.features),
            "threshold": self.threshold_,
            "policy": self.card.policy.description,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path.name!r}, {self.card.model.name!r})"


def _bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"
