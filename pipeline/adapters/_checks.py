"""Checks the flow runs before auditing a lender's model: it reads the schema's columns, and gives probabilities.

Both fail before anything is written, naming what does not fit: a card column
the schema does not know, a model that reads more or fewer inputs (or other
names) than the card lists, and the first applicant whose score is not a
probability (NaN, a logit, a score out of 0..1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._base import FileModel
from ._errors import MSG_BAD_OUTPUT, MSG_NAMES, MSG_ROWS, MSG_UNKNOWN_COLUMNS, MSG_WIDTH, ModelMismatchError


def check_inputs(model: FileModel, schema_feature_names: Sequence[str]) -> None:
    """Every card column is a schema feature; the model's own width and names, where recorded, match the card."""
    known = list(schema_feature_names)
    unknown = sorted(set(model.features) - set(known), key=model.features.index)
    if unknown:
        raise ModelMismatchError(MSG_UNKNOWN_COLUMNS.format(card=model.card_file.path, unknown=unknown, known=known))
    if model.input_width is not None and model.input_width != len(model.features):
        raise ModelMismatchError(MSG_WIDTH.format(file=model.path, width=model.input_width,
                                                  card=model.card_file.path, count=len(model.features)))
    if model.input_names is not None and tuple(model.input_names) != model.features:
        raise ModelMismatchError(MSG_NAMES.format(file=model.path, model_names=list(model.input_names),
                                                  card=model.card_file.path, card_names=list(model.features)))


def check_outputs(model: FileModel, frame: pd.DataFrame, ids: Sequence | np.ndarray | pd.Series) -> np.ndarray:
    """The model's (n, 2) probabilities on `frame`, once every P(adverse) is known to lie in [0, 1].

    Refuses NaN and values outside [0, 1], naming the first applicant (by
    `ids`, one per row of `frame`) and the value it got.
    """
    ids = np.asarray(ids)
    if len(ids) != len(frame):
        raise ModelMismatchError(MSG_ROWS.format(file=model.path, frame=len(frame), ids=len(ids)))
    proba = model.predict_proba(frame)
    p = proba[:, 1]
    bad = np.flatnonzero(~((p >= 0) & (p <= 1)))  # NaN compares false both ways
    if bad.size:
        first = int(bad[0])
        raise ModelMismatchError(MSG_BAD_OUTPUT.format(file=model.path.name, id=ids[first], value=p[first]))
    return proba
