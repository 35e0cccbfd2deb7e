"""ONNX models through onnxruntime on the CPU: float32 (n, F) in, probabilities out.

Converters write probabilities in several layouts: a label tensor beside a
probability tensor (n, 2), a ZipMap sequence of {class: probability} maps,
or a single probability tensor. The adapter takes the float tensor (or the
maps) and leaves the label, which carries the converter's own threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._base import FileModel
from ._card import CardFile
from ._errors import MSG_NO_ONNX_OUTPUT, MSG_NOT_FORMAT, MSG_ONNX_INPUTS, ModelFileError

_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


class OnnxModel(FileModel):
    library = "onnxruntime"

    def __init__(self, path: Path, card_file: CardFile, sha256: str, data: bytes) -> None:
        super().__init__(path, card_file, sha256, data)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: a model's warnings would otherwise reach the run's stderr
        try:
            self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own pybind types for a file that is not ONNX
            raise ModelFileError(MSG_NOT_FORMAT.format(file=path, card=card_file.path, kind=self.kind,
                                                       expected="an ONNX model",
                                                       reason=str(exc).splitlines()[0][:200])) from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].type not in _INPUT_TYPES:
            raise ModelFileError(MSG_ONNX_INPUTS.format(file=path, inputs=[(i.name, i.type, i.shape) for i in inputs]))
        self._input = inputs[0].name
        self._dtype = _INPUT_TYPES[inputs[0].type]
        shape = inputs[0].shape
        self.input_width = shape[-1] if len(shape) == 2 and isinstance(shape[-1], int) else None
        self._output = _probability_output(self._session.get_outputs(), path)

    def _raw(self, block: pd.DataFrame) -> np.ndarray:
        (out,) = self._session.run([self._output], {self._input: self.floats(block, self._dtype)})
        if isinstance(out, list):  # ZipMap: one {class: probability} map per row; columns = classes sorted, as classes_
            keys = sorted(out[0]) if out else []
            return np.array([[row[k] for k in keys] for row in out], dtype=np.float64).reshape(len(out), -1)
        return np.asarray(out)


def _probability_output(outputs: list, path: Path) -> str:
    """The name of the output holding probabilities: a ZipMap sequence, else the float tensor (prefer "prob...")."""
    maps = [o.name for o in outputs if o.type.startswith("seq(map")]
    floats = [o.name for o in outputs if o.type in ("tensor(float)", "tensor(double)")]
    for candidates in (maps, [n for n in floats if "prob" in n.lower()], floats):
        if candidates:
            return candidates[0]
    raise ModelFileError(MSG_NO_ONNX_OUTPUT.format(file=path, outputs=[(o.name, o.type) for o in outputs]))
