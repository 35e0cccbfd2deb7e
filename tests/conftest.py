"""Shared fixtures: the real data file and one model trained on it per test session.

Training takes ~10 s on 2 cores, so tests that need a fitted model share this
one instead of training their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from pipeline import CreditModel, Portfolio, load_portfolio  # noqa: E402
from pipeline.surrogate import Surrogate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "UCI_Credit_Card.csv"


@dataclass(frozen=True)
class Split:
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series


@pytest.fixture(scope="session")
def data_path() -> Path:
    if not REAL_DATA.exists():
        pytest.fail(f"the real dataset is expected at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def portfolio(data_path: Path) -> Portfolio:
    return load_portfolio(data_path)


@pytest.fixture(scope="session")
def split(portfolio: Portfolio) -> Split:
    idx = np.arange(len(portfolio))
    tr, te = train_test_split(idx, test_size=0.2, stratify=portfolio.labels, random_state=0)
    f, y = portfolio.features, portfolio.labels
    return Split(f.iloc[tr], y.iloc[tr], f.iloc[te], y.iloc[te])


@pytest.fixture(scope="session")
def fitted_model(split: Split) -> CreditModel:
    return CreditModel(seed=0).fit(split.X_train, split.y_train)


@pytest.fixture(scope="session")
def fitted_surrogate(fitted_model: CreditModel, split: Split) -> Surrogate:
    return Surrogate().fit(split.X_train, fitted_model.predict(split.X_train))
