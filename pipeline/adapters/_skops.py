"""scikit-learn models saved with skops: loaded only when every type in the file is one credit-audit trusts.

skops lists the types a file would instantiate before loading it
(`get_untrusted_types`). Classes of scikit-learn, NumPy and SciPy and NumPy
ufuncs are trusted; any other name (a lender's own class, a function such as
`builtins.eval` or `os.system`, even a plain function inside a trusted
package) is refused by name, before skops creates anything.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd

from ._base import FileModel
from ._card import CardFile
from ._errors import MSG_NOT_FORMAT, MSG_UNTRUSTED, ModelFileError
from ._files import zip_names

MSG_NOT_TREES = ("a scikit-learn {kind} is not a forest of trees over the raw columns (exact TreeSHAP needs a bare"
                 " RandomForestClassifier, ExtraTreesClassifier or DecisionTreeClassifier)")
TRUSTED_PACKAGES = frozenset({"sklearn", "numpy", "scipy"})
SKOPS_SCHEMA_MEMBER = "schema.json"


class SkopsModel(FileModel):
    library = "skops"

    def __init__(self, path: Path, card_file: CardFile, sha256: str, data: bytes) -> None:
        super().__init__(path, card_file, sha256, data)
        import skops.io as sio

        if SKOPS_SCHEMA_MEMBER not in (zip_names(data) or ()):
            raise self._not_skops(f"no {SKOPS_SCHEMA_MEMBER} in it: not a skops archive")
        try:
            names = sio.get_untrusted_types(data=data)
        except Exception as exc:  # a damaged schema.json surfaces as several exception types
            raise self._not_skops(str(exc).splitlines()[0][:200]) from None
        refused = [name for name in names if not trusted(name)]
        if refused:
            raise ModelFileError(MSG_UNTRUSTED.format(file=path, types=", ".join(refused)))
        try:
            self._estimator = sio.loads(data, trusted=list(names))
        except Exception as exc:
            raise self._not_skops(str(exc).splitlines()[0][:200]) from None
        if not hasattr(self._estimator, "predict_proba"):
            raise self._not_skops(f"{type(self._estimator).__name__} has no predict_proba")
        names_in = getattr(self._estimator, "feature_names_in_", None)
        self.input_names = tuple(str(n) for n in names_in) if names_in is not None else None
        width = getattr(self._estimator, "n_features_in_", None)
        self.input_width = int(width) if width is not None else None

    def _not_skops(self, reason: str) -> ModelFileError:
        return ModelFileError(MSG_NOT_FORMAT.format(file=self.path, card=self.card_file.path, kind=self.kind,
                                                    expected="a scikit-learn classifier saved with skops.io.dump",
                                                    reason=reason))

    def _raw(self, block: pd.DataFrame) -> np.ndarray:
        frame = block if self.input_names is not None else block.to_numpy()
        return np.asarray(self._estimator.predict_proba(frame))

    def tree_booster(self) -> object:
        """`TreeEnsemble`: a bare forest (or tree) of scikit-learn over the card's columns, whose probability
        is the average of its trees' leaf probabilities, so TreeSHAP of P(adverse) is exact. A pipeline or
        any other estimator raises: the explainer then uses Kernel SHAP and records why."""
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
        from sklearn.tree import DecisionTreeClassifier

        if not isinstance(self._estimator, (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier)):
            raise TypeError(MSG_NOT_TREES.format(kind=type(self._estimator).__name__))
        return self._estimator


def trusted(name: str) -> bool:
    """A dotted name from a trusted package that is a class or a NumPy ufunc (imported to find out, never called)."""
    module, _, attribute = name.rpartition(".")
    if module.split(".")[0] not in TRUSTED_PACKAGES or not attribute:
        return False
    try:
        found = getattr(importlib.import_module(module), attribute)
    except Exception:  # any name that does not resolve cleanly (ImportError, ValueError for "sklearn..x") is untrusted
        return False
    return isinstance(found, type) or isinstance(found, np.ufunc)
