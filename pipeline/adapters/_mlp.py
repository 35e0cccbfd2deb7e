"""credit-audit's own MLP, saved by `CreditModel.save`, audited through the same card as a lender's model.

The folder is loaded by `CreditModel.load` (weights read with
weights_only=True, checked against the model_hash in model.json); the card
must repeat the model's own columns and threshold, so that the card never
says one thing while the model does another.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._base import FileModel
from ._card import CardFile
from ._errors import MSG_MLP_COLUMNS, MSG_MLP_FOLDER, MSG_MLP_THRESHOLD, ModelFileError

_THRESHOLD_TOLERANCE = 1e-12  # the card writes the threshold as TOML text; a float round trip is exact


class CreditMLP(FileModel):
    library = "torch"

    def __init__(self, path: Path, card_file: CardFile, sha256: str, data: bytes) -> None:
        super().__init__(path, card_file, sha256, data)
        from pipeline.model import META_FILE, WEIGHTS_FILE, CreditModel

        if not path.is_dir() or not (path / META_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
            raise ModelFileError(MSG_MLP_FOLDER.format(file=path, reason=f"expected a folder holding {META_FILE} "
                                                                         f"and {WEIGHTS_FILE}"))
        self._model = CreditModel.load(path)
        card = card_file.path
        if tuple(self._model.features) != self.features:
            raise ModelFileError(MSG_MLP_COLUMNS.format(file=path, card=card, card_columns=list(self.features),
                                                        model_columns=list(self._model.features)))
        if abs(self._model.threshold_ - self.threshold_) > _THRESHOLD_TOLERANCE:
            raise ModelFileError(MSG_MLP_THRESHOLD.format(file=path, card=card, card_threshold=self.threshold_,
                                                          model_threshold=self._model.threshold_))
        self.input_width = len(self._model.features)
        self.input_names = tuple(self._model.features)

    def _raw(self, block: pd.DataFrame) -> np.ndarray:
        return self._model.predict_proba(block)[:, 1]

    def torch_function(self, device="cpu"):
        """`Differentiable`: the MLP's own function (a copy when it lives on another device)."""
        return self._model.torch_function(device)

    def blockwise(self, device="cpu"):
        """`Blockwise`: the MLP's per-feature encoder, first layer and head."""
        return self._model.blockwise(device)

    def architecture(self) -> str:
        return self._model.architecture()
