"""Benchmarks and challengers: the paired bootstrap, the production row, the majority-class baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipeline import schema as S
from pipeline.benchmarks import bootstrap_auc, compare_models, fit_challengers, stratified_counts
from pipeline.constants import BOOSTED, LOGISTIC, MAJORITY, PRODUCTION
from pipeline.metrics import performance


def synthetic(n: int = 1500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Schema-shaped applicants whose default depends on last month's repayment status and the limit."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.integers(0, 3, n).astype(float) for name in S.DEFAULT_MODEL_FEATURES})
    frame["LIMIT_BAL"] = rng.integers(1, 50, n) * 10_000.0
    frame["PAY_0"] = rng.integers(-2, 4, n).astype(float)
    logit = -1.5 + 0.8 * frame["PAY_0"] - frame["LIMIT_BAL"] / 400_000
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, y


def test_stratified_counts_keep_the_class_sizes_and_are_seeded():
    y = np.array([0] * 70 + [1] * 30)
    c = stratified_counts(y, 50, seed=3)
    assert c.shape == (50, 100)
    assert (c[:, y == 0].sum(axis=1) == 70).all() and (c[:, y == 1].sum(axis=1) == 30).all()
    np.testing.assert_array_equal(c, stratified_counts(y, 50, seed=3))


def test_bootstrap_auc_of_the_unweighted_sample_is_sklearns():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.random(300), 2)  # ties
    assert bootstrap_auc(y, score, np.ones((1, 300), dtype=np.int64))[0] == pytest.approx(roc_auc_score(y, score),
                                                                                        rel=1e-12)


def test_comparison_rows_intervals_and_paired_differences():
    frame, y = synthetic()
    train, test = np.arange(1000), np.arange(1000, 1500)
    scorers = fit_challengers(frame.iloc[train], y[train], S.DEFAULT_MODEL_FEATURES, seed=0)
    scores = {PRODUCTION: scorers[BOOSTED](frame.iloc[test]) * 0.9 + 0.05}
    scores |= {k: f(frame.iloc[test]) for k, f in scorers.items()}
    thresholds = {PRODUCTION: 0.5, MAJORITY: 1.0, LOGISTIC: 0.5, BOOSTED: 0.5}
    section = compare_models(y[test], scores, thresholds, n_boot=300, seed=0)
    # the production row is what the performance section computes from the same scores
    figures = performance(y[test], scores[PRODUCTION], 0.5)
    row = section.production
    assert (row.roc_auc.value, row.accuracy, row.brier, row.ece, row.decline_rate) == (
        figures["roc_auc"], figures["accuracy"], figures["brier"], figures["ece"], figures["decline_rate"])
    for m in (section.production, *section.challengers):
        assert m.roc_auc.lo <= m.roc_auc.value <= m.roc_auc.hi
    majority = section.challenger(MAJORITY)
    assert majority.roc_auc.value == majority.roc_auc.lo == majority.roc_auc.hi == 0.5
    assert majority.accuracy == pytest.approx(1 - y[test].mean()) and majority.decline_rate == 0.0
    assert majority.reading == "lower"  # the synthetic model ranks far better than no ranking at all
    boosted = section.challenger(BOOSTED)  # the same ranking as production (a monotone transform): no difference
    assert boosted.auc_difference.value == pytest.approx(0.0, abs=1e-12)
    assert boosted.auc_difference.lo == pytest.approx(0.0, abs=1e-12) and boosted.reading == "no clear difference"
    logistic = section.challenger(LOGISTIC)
    assert logistic.auc_difference.value == pytest.approx(logistic.roc_auc.value - row.roc_auc.value)
    assert logistic.auc_difference.lo <= logistic.auc_difference.value <= logistic.auc_difference.hi
