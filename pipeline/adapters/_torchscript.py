"""TorchScript modules: float32 (n, F) in, P(adverse) out, and differentiable, so gradient explainers apply.

torch.jit.load reads the module's code and tensors without Python's pickle
globals, which is why a TorchScript archive is accepted where a torch.save
file is refused.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ._base import FileModel
from ._card import CardFile
from ._errors import MSG_NOT_FORMAT, ModelFileError
from ._files import is_torchscript, zip_names


class TorchScriptModel(FileModel):
    library = "torch"

    def __init__(self, path: Path, card_file: CardFile, sha256: str, data: bytes) -> None:
        super().__init__(path, card_file, sha256, data)
        if not is_torchscript(zip_names(data)):
            raise self._not_torchscript("not a TorchScript archive (a zip holding the module's code)")
        self._module = self._load("cpu")

    def _not_torchscript(self, reason: str) -> ModelFileError:
        return ModelFileError(MSG_NOT_FORMAT.format(file=self.path, card=self.card_file.path, kind=self.kind,
                                                    expected="a TorchScript module (torch.jit.save)", reason=reason))

    def _load(self, device: str):
        import torch

        try:
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; lenders' files are still read
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(io.BytesIO(self.data), map_location=device).eval()
        except Exception as exc:  # torch raises RuntimeError and others for a damaged archive
            raise self._not_torchscript(str(exc).splitlines()[0][:200]) from None

    def _raw(self, block: pd.DataFrame) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self._module(torch.from_numpy(self.floats(block)))
        return out.detach().cpu().numpy()

    def torch_function(self, device="cpu"):
        """`Differentiable`: a fresh copy on `device` mapping float32 (n, F) to P(adverse) (n,)."""
        from ._torch_head import AdverseOutput

        return AdverseOutput(self._load(device), self.card.output.adverse_column).eval()
