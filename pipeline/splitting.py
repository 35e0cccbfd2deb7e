"""The held-out split every held-out figure is computed on: stratified and seeded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from ._loading import Portfolio


@dataclass(frozen=True)
class SplitIndex:
    """Row positions (not ids) of the training and test applicants."""

    train: np.ndarray
    test: np.ndarray
    seed: int
    test_fraction: float

    def labels(self, n: int) -> np.ndarray:
        """'train'/'test' per row, for the applicants table."""
        out = np.full(n, "train", dtype=object)
        out[self.test] = "test"
        return out


def split_portfolio(portfolio: Portfolio, test_fraction: float = 0.2, seed: int = 0) -> SplitIndex:
    idx = np.arange(len(portfolio))
    train, test = train_test_split(idx, test_size=test_fraction, stratify=portfolio.labels, random_state=seed)
    return SplitIndex(np.sort(train), np.sort(test), seed, test_fraction)
