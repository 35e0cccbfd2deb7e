"""Fairness audit on the real held-out split: fairlearn's point estimates and bootstrap intervals, end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from pipeline import CreditModel
from pipeline.fairness import MIN_GROUP_SIZE, audit_fairness, audited_attributes, group_disparities, group_labels
from pipeline.fairness._mitigation import unawareness_and_mitigation

pytestmark = pytest.mark.slow
CPU = torch.device("cpu")
N_BOOT = 1000
FAIRLEARN_BOOT = 200  # fairlearn takes ~0.1-0.3 s per replicate here; 200 keeps this test under a minute


def _approval(y_true, y_pred):
    return selection_rate(y_true, y_pred, pos_label=0)


@pytest.fixture(scope="module")
def held_out(split, fitted_model):
    p = fitted_model.predict_proba(split.X_test)[:, 1]
    return split.X_test, split.y_test.to_numpy(), p, fitted_model.predict(split.X_test)


@pytest.fixture(scope="module")
def sex_only(held_out):
    frame, y, p, decline = held_out
    sex = tuple(a for a in audited_attributes() if a.name == "SEX")
    return group_disparities(frame, y, decline, p, device=CPU, seed=0, n_boot=N_BOOT, attributes=sex)


def test_real_point_estimates_match_fairlearn(held_out):
    frame, y, p, decline = held_out
    table, results = group_disparities(frame, y, decline, p, device=CPU, seed=0, n_boot=50)
    for attr, result in zip(audited_attributes(), results, strict=True):
        labels = group_labels(frame, attr)
        rows = table[(table.attribute == attr.name) & (table.status == "ok")].set_index("group")
        sf = pd.Series(labels, name="group")
        ref = MetricFrame(metrics={"approval_rate": _approval, "tpr": true_positive_rate, "fpr": false_positive_rate},
                          y_true=y, y_pred=decline, sensitive_features=sf).by_group.loc[rows.index]
        judged = np.isin(labels, rows.index)  # fairlearn warns on the AUC of single-outcome groups
        auc = MetricFrame(metrics=roc_auc_score, y_true=y[judged], y_pred=p[judged],
                          sensitive_features=sf[judged]).by_group.loc[rows.index]
        for col in ref.columns:
            np.testing.assert_allclose(rows[col], ref[col].astype(float), rtol=1e-12, err_msg=f"{attr.name} {col}")
        np.testing.assert_allclose(rows["roc_auc"], auc.astype(float), rtol=1e-12)
        keep = judged
        if len(rows) >= 2:
            assert result.disparities["demographic_parity_difference"]["value"] == pytest.approx(
                demographic_parity_difference(y[keep], decline[keep], sensitive_features=labels[keep]), rel=1e-12)
            assert result.disparities["equalized_odds_difference"]["value"] == pytest.approx(
                equalized_odds_difference(y[keep], decline[keep], sensitive_features=labels[keep]), rel=1e-12)


def _mc_tolerance(lo: float, hi: float) -> float:
    """4 standard errors of the difference between two independent bootstrap 2.5 %/97.5 % quantiles.

    SE of a bootstrap q-quantile from B replicates ~ sqrt(q(1-q)/B) / f(x_q); with a normal
    of the replicates' spread sigma = (hi - lo) / 3.92, f(x_q) = phi(z_q) / sigma. fairlearn
    resamples the whole frame (group sizes vary) where the audit resamples within groups
    (sizes fixed); for groups of thousands the two spreads differ by O(1/n), far below this.
    """
    sigma = (hi - lo) / (2 * norm.ppf(0.975))
    q = 0.025
    se = sigma * math.sqrt(q * (1 - q)) / norm.pdf(norm.ppf(q)) * math.sqrt(1 / N_BOOT + 1 / FAIRLEARN_BOOT)
    return 4 * se


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_intervals_agree_with_fairlearn_bootstrap(held_out, sex_only):
    frame, y, p, decline = held_out
    table, (sex,) = sex_only
    labels = group_labels(frame, next(a for a in audited_attributes() if a.name == "SEX"))
    mf = MetricFrame(metrics={"approval_rate": _approval, "tpr": true_positive_rate, "fpr": false_positive_rate},
                     y_true=y, y_pred=decline, sensitive_features=pd.Series(labels, name="group"),
                     n_boot=FAIRLEARN_BOOT, ci_quantiles=[0.025, 0.975], random_state=0)
    rows = table[table.attribute == "SEX"].set_index("group")
    fl_lo, fl_hi = mf.by_group_ci
    for g in rows.index:
        for m in ("approval_rate", "tpr", "fpr"):
            lo, hi = rows.loc[g, f"{m}_lo"], rows.loc[g, f"{m}_hi"]
            tol = _mc_tolerance(lo, hi)
            assert abs(lo - fl_lo.loc[g, m]) < tol, (g, m, lo, fl_lo.loc[g, m], tol)
            assert abs(hi - fl_hi.loc[g, m]) < tol, (g, m, hi, fl_hi.loc[g, m], tol)
            assert 0.7 < (hi - lo) / (fl_hi.loc[g, m] - fl_lo.loc[g, m]) < 1.4
    d_lo, d_hi = (x["approval_rate"] for x in mf.difference_ci())
    ours = sex.disparities["demographic_parity_difference"]
    tol = _mc_tolerance(ours["lo"], ours["hi"])
    assert abs(ours["lo"] - d_lo) < tol and abs(ours["hi"] - d_hi) < tol
    r_lo, r_hi = (x["approval_rate"] for x in mf.ratio_ci())
    ours = sex.disparities["demographic_parity_ratio"]
    tol = _mc_tolerance(ours["lo"], ours["hi"])
    assert abs(ours["lo"] - r_lo) < tol and abs(ours["hi"] - r_hi) < tol


def test_real_audit_end_to_end(split, fitted_model, fitted_surrogate, tmp_path):
    audit = audit_fairness(split.X_train, split.y_train, split.X_test, split.y_test, fitted_model, device="auto",
                           seed=0, n_boot=N_BOOT, surrogate_decisions=fitted_surrogate.predict(split.X_test),
                           compare_models=False, proxies=False)
    summary = json.loads(json.dumps(audit.summary(), allow_nan=False))
    assert summary["settings"]["n_boot"] == N_BOOT and summary["min_group_size"] == MIN_GROUP_SIZE
    n_groups = sum(len(a.groups) for a in audited_attributes())
    assert len(audit.table) == 1 + n_groups
    overall = audit.table.iloc[0]
    assert overall["count"] == len(split.X_test)
    assert overall["surrogate_fidelity"] == pytest.approx(
        np.mean(fitted_surrogate.predict(split.X_test) == fitted_model.predict(split.X_test)))
    # every judged group of every attribute has an interval for every rate
    ok = audit.table[(audit.table.status == "ok") & (audit.table.attribute != "overall")]
    assert ok.filter(like="_lo").notna().all().all()
    path = tmp_path / "fairness.parquet"
    audit.table.to_parquet(path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), audit.table)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_unawareness_and_mitigation_leave_production_decisions_alone(split):
    """A small model keeps the retraining cheap; the comparison machinery is the same."""
    rows = np.random.default_rng(0).choice(len(split.X_train), 4000, replace=False)
    X_train, y_train = split.X_train.iloc[rows], split.y_train.iloc[rows]
    small = CreditModel(hidden=(8,), max_epochs=3, patience=2, seed=0).fit(X_train, y_train)
    before = small.predict(split.X_test)
    out = unawareness_and_mitigation(X_train, y_train, split.X_test, split.y_test, small, seed=0, device=CPU)
    np.testing.assert_array_equal(small.predict(split.X_test), before)
    names = [v["variant"] for v in out["variants"]]
    assert names[0] == "production" and names[1] == "with protected inputs" and len(names) == 4
    production, aware, dp, _ = out["variants"]
    assert production["accuracy"] == pytest.approx(np.mean(before == split.y_test.to_numpy()))
    assert aware["roc_auc"] is not None and dp["roc_auc"] is None
    # demographic parity on SEX, fitted on the training split, holds approximately on the test split
    assert dp["disparities"]["SEX"]["demographic_parity_difference"]["value"] < 0.03
