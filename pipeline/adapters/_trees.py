"""Gradient-boosted trees in their native files: XGBoost JSON / UBJ and LightGBM text.

Both are data formats (no code runs on load), record their input width and,
when trained on a frame, their input names, and offer the booster itself
(`tree_booster()`) so exact TreeSHAP can walk the trees. Only binary
classifiers whose output is a probability are accepted: a regression or a
multi-class model would be read as P(adverse) and audited wrongly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ._base import FileModel
from ._card import CardFile
from ._errors import MSG_NOT_FORMAT, MSG_OBJECTIVE, ModelFileError

XGBOOST_OBJECTIVES = ("binary:logistic",)
LIGHTGBM_OBJECTIVES = ("binary", "cross_entropy")
LIGHTGBM_HEADER = b"tree\n"
_UNNAMED_LIGHTGBM = "Column_"  # LightGBM's name for a column trained without a name


class _Trees(FileModel):
    expected = ""

    def _not_format(self, reason: str) -> ModelFileError:
        return ModelFileError(MSG_NOT_FORMAT.format(file=self.path, card=self.card_file.path, kind=self.kind,
                                                    expected=self.expected, reason=reason))

    def tree_booster(self):
        """`TreeEnsemble`: the booster itself, for exact TreeSHAP over the card's columns."""
        return self._booster


class XGBoostModel(_Trees):
    library = "xgboost"
    expected = "an XGBoost model saved as JSON or UBJ (booster.save_model)"

    def __init__(self, path: Path, card_file: CardFile, sha256: str, data: bytes) -> None:
        super().__init__(path, card_file, sha256, data)
        import xgboost

        if data[:1] != b"{":  # both JSON and UBJ open with an object marker
            raise self._not_format("it does not start with '{' as JSON and UBJ models do")
        booster = xgboost.Booster()
        try:
            booster.load_model(bytearray(data))
        except xgboost.core.XGBoostError as exc:
            raise self._not_format(_first_line(exc)) from None
        objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
        if objective not in XGBOOST_OBJECTIVES:
            raise ModelFileError(MSG_OBJECTIVE.format(file=path, objective=objective,
                                                      expected=" or ".join(XGBOOST_OBJECTIVES)))
        self._booster = booster
        self.input_width = booster.num_features()
        self.input_names = tuple(booster.feature_names) if booster.feature_names else None

    def _raw(self, block: pd.DataFrame) -> np.ndarray:
        import xgboost

        names = list(self.input_names) if self.input_names else None
        matrix = xgboost.DMatrix(self.floats(block), feature_names=names)
        return self._booster.predict(matrix, validate_features=names is not None)


class LightGBMModel(_Trees):
    library = "lightgbm"
    expected = "a LightGBM model saved as text (booster.save_model)"

    def __init__(self, path: Path, card_file: CardFile, sha256: str, data: bytes) -> None:
        super().__init__(path, card_file, sha256, data)
        import lightgbm

        if not data.startswith(LIGHTGBM_HEADER):
            raise self._not_format("it does not start with the line 'tree' as LightGBM text models do")
        try:
            booster = lightgbm.Booster(model_str=data.decode("utf-8"))
        except (lightgbm.basic.LightGBMError, UnicodeDecodeError) as exc:
            raise self._not_format(_first_line(exc)) from None
        objective = _lightgbm_objective(data[: 1 << 16])
        if objective not in LIGHTGBM_OBJECTIVES:
            raise ModelFileError(MSG_OBJECTIVE.format(file=path, objective=objective,
                                                      expected=" or ".join(LIGHTGBM_OBJECTIVES)))
        self._booster = booster
        self.input_width = booster.num_feature()
        names = tuple(booster.feature_name())
        unnamed = names == tuple(f"{_UNNAMED_LIGHTGBM}{i}" for i in range(len(names)))
        self.input_names = None if unnamed else names

    def _raw(self, block: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._booster.predict(self.floats(block, np.float64)))  # LightGBM splits on doubles


def _lightgbm_objective(header: bytes) -> str:
    """`binary` from the header line `objective=binary sigmoid:1` (the header precedes the trees)."""
    for line in header.decode("utf-8", "replace").splitlines():
        if line.startswith("objective="):
            return line.removeprefix("objective=").split(" ")[0]
        if line.startswith("Tree="):
            break
    return "(none recorded)"


def _first_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]
