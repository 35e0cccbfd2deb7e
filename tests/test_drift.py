"""Population stability index and the run comparison, against a direct computation."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import schema as S
from pipeline.drift import PSI_EPSILON, compare_runs, data_drift, psi
from pipeline.run_record import FairnessSection, FlagsSection, RunRecord


def _manual_psi(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray) -> float:
    r = np.clip(np.histogram(ref, edges)[0] / len(ref), PSI_EPSILON, None)
    c = np.clip(np.histogram(cur, edges)[0] / len(cur), PSI_EPSILON, None)
    return float(np.sum((c - r) * np.log(c / r)))


def test_identical_data_has_zero_psi(portfolio):
    drift = data_drift(portfolio.features, portfolio.features)
    assert set(drift) == set(S.FEATURE_NAMES)
    assert all(d["psi"] == pytest.approx(0.0, abs=1e-12) and d["reading"] == "stable" for d in drift.values())


def test_psi_matches_hand_computation_on_real_amounts(portfolio):
    limit = portfolio.features["LIMIT_BAL"].to_numpy(float)
    shifted = limit * 1.5
    edges = np.unique(np.quantile(limit, np.linspace(0, 1, 11)))
    edges = np.concatenate([[-np.inf], edges[1:-1], [np.inf]])
    assert psi(limit, shifted, S.BY_NAME["LIMIT_BAL"]) == pytest.approx(_manual_psi(limit, shifted, edges))
    assert psi(limit, shifted, S.BY_NAME["LIMIT_BAL"]) > 0.25


def test_categorical_psi_uses_codes(portfolio):
    edu = portfolio.features["EDUCATION"].to_numpy(float)
    young = portfolio.features.loc[portfolio.features["AGE"] < 30, "EDUCATION"].to_numpy(float)
    value = psi(edu, young, S.BY_NAME["EDUCATION"])
    codes = sorted(S.BY_NAME["EDUCATION"].allowed_codes)
    r = np.clip(np.array([(edu == c).mean() for c in codes]), PSI_EPSILON, None)
    c = np.clip(np.array([(young == c).mean() for c in codes]), PSI_EPSILON, None)
    assert value == pytest.approx(float(np.sum((c - r) * np.log(c / r))))


def _with(record: RunRecord, *, run_id: str, model_hash: str, data_hash: str, auc: float,
          verdict: str, borderline: int, split: str = "test") -> RunRecord:
    """The record with the figures a comparison reads set to known values."""
    perf = record.performance["test"].model_copy(update={"roc_auc": auc})
    fairness = FairnessSection.model_construct(verdicts={"SEX": verdict})
    flags = FlagsSection.model_construct(counts={"borderline": borderline})
    return record.model_copy(update={
        "run_id": run_id, "model": record.model.model_copy(update={"model_hash": model_hash}),
        "data": record.data.model_copy(update={"data_hash": data_hash}), "performance": {split: perf},
        "fairness": fairness, "flags": flags,
    })


def test_compare_runs_reports_changes(portfolio, slice_record):
    prev = _with(slice_record, run_id="a", model_hash="m", data_hash="d1", auc=0.78, verdict="pass", borderline=10)
    cur = _with(slice_record, run_id="b", model_hash="m", data_hash="d2", auc=0.75, verdict="review", borderline=30,
                split="all")  # a reused model: every row is out of sample
    half = portfolio.features.iloc[:15000]
    other = portfolio.features.iloc[15000:].assign(LIMIT_BAL=lambda f: f["LIMIT_BAL"] * 3)
    out = compare_runs(prev, cur, half, other)
    assert out.same_model and not out.same_data
    assert out.previous_run == "a"
    assert out.performance["roc_auc"].change == pytest.approx(-0.03)
    assert out.performance["accuracy"].change == 0.0
    assert "LIMIT_BAL" in out.drifted_features
    assert out.fairness_verdicts.current == {"SEX": "review"}
    assert out.flag_counts.current["borderline"] == 30


def test_compare_runs_without_fairness_or_flags(portfolio, slice_record):
    out = compare_runs(slice_record, slice_record, portfolio.features, portfolio.features)
    assert out.fairness_verdicts.previous == {} and out.flag_counts.current == {}
    assert out.same_model and out.same_data and out.drifted_features == ()
