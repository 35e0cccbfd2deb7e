"""Small generated applicants and a quickly trained model for the explanation tests.

Generated from the schema (valid codes and ranges), never sampled from the
real data; a tiny MLP trained for a few epochs is enough to test that the
explainers compute the right numbers for whatever function they are given.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from pipeline import CreditModel
from pipeline import schema as S
from pipeline.policy import ThresholdPolicy

# Decline a fifth of the applicants whatever the inputs: the tiny model barely trained for 4 epochs
# gives nobody 50% (without AGE and EDUCATION it declines no one), and the explainers of declines
# (LIME, counterfactuals) need some.
SMALL_MODEL_POLICY = ThresholdPolicy(kind="decline_rate", value=0.2)


def synthetic_frame(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols = {}
    for f in S.FEATURES:
        if f.kind == "repayment_status":
            cols[f.name] = rng.choice([-2, -1, 0, 0, 0, 1, 2, 3], size=n)
        elif f.kind == "category":
            cols[f.name] = rng.choice(sorted(f.codes), size=n)
        elif f.name == "AGE":
            cols[f.name] = rng.integers(21, 70, size=n)
        elif f.name == "LIMIT_BAL":
            cols[f.name] = rng.choice([10_000, 50_000, 100_000, 200_000, 500_000], size=n)
        elif f.name.startswith("BILL"):
            cols[f.name] = np.round(rng.lognormal(9.5, 1.5, size=n) * rng.choice([1, 1, 1, -0.05], size=n))
        else:
            cols[f.name] = np.round(rng.lognormal(7.5, 1.5, size=n) * rng.choice([0, 1, 1, 1], size=n))
    # dtypes as the loader gives them: codes and counts int64, amounts float64
    frame = pd.DataFrame(cols)[list(S.FEATURE_NAMES)].astype(
        {f.name: (np.float64 if f.kind == "amount" else np.int64) for f in S.FEATURES}
    )
    logit = 0.9 * frame["PAY_0"] - 0.5 * np.log(frame["LIMIT_BAL"] / 1e5) - 1.2 + rng.normal(0, 0.5, size=n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return frame, labels


@lru_cache(maxsize=4)  # one training per session and feature set: tests only read the model
def small_model(
    features: tuple[str, ...] = S.DEFAULT_MODEL_FEATURES, seed: int = 0
) -> tuple[CreditModel, pd.DataFrame, np.ndarray]:
    frame, labels = synthetic_frame(600, seed)
    model = CreditModel(features=features, hidden=(16, 8), max_epochs=4, patience=2, seed=seed,
                        policy=SMALL_MODEL_POLICY).fit(frame, labels)
    return model, frame, labels
