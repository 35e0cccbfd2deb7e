"""Fairness audit on synthetic portfolios: fast checks of every rule against fairlearn / sklearn / scipy."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from scipy.stats import chi2_contingency
from sklearn.metrics import brier_score_loss, precision_score, roc_auc_score

from pipeline import fairness as fair
from pipeline import schema as S
from pipeline.fairness import (
    FAIL,
    INSUFFICIENT,
    MIN_GROUP_SIZE,
    PASS,
    RATES,
    REVIEW,
    GroupRates,
    audit_fairness,
    audited_attributes,
    group_disparities,
    group_labels,
    weighted_auc,
)
from pipeline.fairness._audit import MSG_N_BOOT
from pipeline.fairness._bootstrap import group_rates, indicator_matrix, resample_counts
from pipeline.fairness._explanations import MSG_REASONS_INDEX, explanation_disparity
from pipeline.fairness._proxies import proxy_strength
from pipeline.fairness._rates import MSG_RATE, MSG_SHAPE
from pipeline.fairness._verdicts import gap_verdict, ratio_verdict

CPU = torch.device("cpu")


def synthetic(n: int = 3000, seed: int = 0, female_penalty: float = 0.0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Schema-shaped applicants, labels, P(default) and decisions (1 = decline)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "LIMIT_BAL": rng.integers(1, 50, n) * 10_000.0,
        "SEX": rng.choice([1, 2], n, p=[0.4, 0.6]),
        "EDUCATION": rng.choice([1, 2, 3, 4, 0, 5, 6], n, p=[0.35, 0.45, 0.155, 0.005, 0.01, 0.015, 0.015]),
        "MARRIAGE": rng.choice([1, 2, 3, 0], n, p=[0.45, 0.5, 0.04, 0.01]),
        "AGE": rng.integers(21, 75, n),
        "PAY_0": rng.integers(-2, 4, n),
    })
    logit = -1.4 + 0.6 * frame["PAY_0"].to_numpy() + rng.normal(0, 1, n)
    p = 1 / (1 + np.exp(-logit))
    p = np.clip(p + female_penalty * (frame["SEX"].to_numpy() == 2), 0, 1).round(3)  # rounding makes ties
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    decline = (p >= 0.5).astype(np.int64)
    return frame, y, p, decline


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.fixture(scope="module")
def audited(data):
    frame, y, p, decline = data
    return group_disparities(frame, y, decline, p, device=CPU, seed=0, n_boot=1000)


# ---- the vectorised pieces --------------------------------------------------------------------
def test_weighted_auc_matches_sklearn_with_weights_and_ties():
    rng = np.random.default_rng(1)
    score = np.sort(rng.integers(0, 20, 500) / 20)  # many ties
    y = rng.integers(0, 2, 500).astype(float)
    w = rng.integers(0, 4, (6, 500))
    got = weighted_auc(torch.tensor(w), torch.tensor(y), torch.tensor(score)).numpy()
    want = [roc_auc_score(y, score, sample_weight=wi) for wi in w]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_resample_counts_draw_n_rows_per_replicate_and_are_seeded():
    gen = torch.Generator().manual_seed(3)
    c = resample_counts(50, 200, gen, CPU)
    assert c.shape == (200, 50)
    assert torch.all(c.sum(dim=1) == 50)
    # each row is drawn on average once per replicate
    assert abs(float(c.double().mean()) - 1.0) < 0.05
    again = resample_counts(50, 200, torch.Generator().manual_seed(3), CPU)
    assert torch.equal(c, again)


# ---- point estimates are fairlearn's -----------------------------------------------------------
def _fairlearn_frame(labels, y, p, decline) -> pd.DataFrame:
    by_decision = MetricFrame(
        metrics={
            "approval_rate": lambda t, d: selection_rate(t, d, pos_label=0),
            "decline_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "fnr": false_negative_rate,
            "precision": lambda t, d: precision_score(t, d, zero_division=np.nan),
        },
        y_true=y, y_pred=decline, sensitive_features=pd.Series(labels, name="group"),
    ).by_group
    by_score = MetricFrame(
        metrics={"roc_auc": roc_auc_score, "brier": brier_score_loss,
                 "mean_predicted": lambda t, s: float(np.mean(s)), "base_rate": lambda t, s: float(np.mean(t))},
        y_true=y, y_pred=p, sensitive_features=pd.Series(labels, name="group"),
    ).by_group
    return by_decision.join(by_score)


@pytest.mark.slow
def test_point_estimates_match_fairlearn_metricframe(data, audited):
    frame, y, p, decline = data
    table, results = audited
    for attr in audited_attributes():
        labels = group_labels(frame, attr)
        rows = table[(table.attribute == attr.name) & (table.status == "ok")].set_index("group")
        ref = _fairlearn_frame(labels, y, p, decline).loc[rows.index]
        for col in ref.columns:
            np.testing.assert_allclose(rows[col].to_numpy(), ref[col].to_numpy(np.float64), rtol=1e-12, err_msg=f"{attr.name} {col}")
        # disparities: fairlearn's own functions on the judged groups
        keep = np.isin(labels, rows.index)
        result = next(r for r in results if r.attribute == attr.name)
        d = result.disparities
        approve = 1 - decline[keep]
        assert d["demographic_parity_difference"]["value"] == pytest.approx(
            demographic_parity_difference(y[keep], decline[keep], sensitive_features=labels[keep]), rel=1e-12)
        assert d["demographic_parity_ratio"]["value"] == pytest.approx(
            demographic_parity_ratio(y[keep], approve, sensitive_features=labels[keep]), rel=1e-12)
        assert d["equalized_odds_difference"]["value"] == pytest.approx(
            equalized_odds_difference(y[keep], decline[keep], sensitive_features=labels[keep]), rel=1e-12)
        air = rows["adverse_impact_ratio"]
        np.testing.assert_allclose(air, rows["approval_rate"] / rows["approval_rate"].max(), rtol=1e-12)


def test_every_rate_has_an_interval_around_its_estimate(audited):
    table, _ = audited
    ok = table[(table.status == "ok") & (table.attribute != "overall")]
    for rate in ("approval_rate", "tpr", "fpr", "roc_auc", "calibration_gap", "adverse_impact_ratio"):
        lo, hi, est = ok[f"{rate}_lo"], ok[f"{rate}_hi"], ok[rate]
        assert (lo <= hi).all() and lo.notna().all(), rate
        assert ((lo <= est + 1e-9) & (est - 1e-9 <= hi)).mean() > 0.9, rate


# ---- small groups -------------------------------------------------------------------------------
def test_small_groups_get_insufficient_data_and_no_verdict(audited):
    table, results = audited
    small = table[table.status == INSUFFICIENT]
    assert (small["count"] < MIN_GROUP_SIZE).any() and (small["count"] >= MIN_GROUP_SIZE).any()  # few defaulters
    assert small["approval_rate_lo"].isna().all() and small["adverse_impact_ratio"].isna().all()
    judged = table[table.status == "ok"]
    assert (judged["count"] >= MIN_GROUP_SIZE).all()
    for r in results:
        mine = small[(small.attribute == r.attribute) & (small["count"] > 0)]
        assert set(mine.group) == set(r.groups_insufficient)
        assert not set(mine.group) & set(r.groups_judged)


def test_attribute_with_one_judged_group_is_insufficient_not_a_verdict():
    frame, y, p, decline = synthetic(n=400)
    frame = frame.assign(SEX=np.where(np.arange(400) < 390, 1, 2))  # 10 women
    with np.errstate(all="raise"):
        table, results = group_disparities(frame, y, decline, p, device=CPU, seed=0, n_boot=200,
                                           attributes=tuple(a for a in audited_attributes() if a.name == "SEX"))
    (sex,) = results
    assert sex.verdict == INSUFFICIENT and sex.disparities == {}
    assert table.set_index("group").loc["female", "status"] == INSUFFICIENT


# ---- verdicts --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("lo", "hi", "want"), [(0.70, 0.78, FAIL), (0.82, 0.95, PASS), (0.75, 0.85, REVIEW)])
def test_four_fifths_verdict_reads_the_interval(lo, hi, want):
    verdict, reason = ratio_verdict((lo + hi) / 2, lo, hi)
    assert verdict == want and "0.8" in reason


@pytest.mark.parametrize(("lo", "hi", "want"), [(0.12, 0.2, FAIL), (0.01, 0.08, PASS), (0.05, 0.15, REVIEW)])
def test_gap_verdict_reads_the_interval(lo, hi, want):
    assert gap_verdict((lo + hi) / 2, lo, hi, 0.1, "gap")[0] == want


def test_clear_disparity_fails_and_no_disparity_passes():
    frame, y, p, decline = synthetic(n=8000, seed=2, female_penalty=0.35)
    sex = tuple(a for a in audited_attributes() if a.name == "SEX")
    _, (biased,) = group_disparities(frame, y, decline, p, device=CPU, seed=0, n_boot=500, attributes=sex)
    assert biased.verdict == FAIL and biased.favoured_group == "male"
    assert any(r.startswith("FAIL") for r in biased.reasons)
    frame, y, p, decline = synthetic(n=8000, seed=2)
    _, (fair,) = group_disparities(frame, y, decline, p, device=CPU, seed=0, n_boot=500, attributes=sex)
    assert fair.verdict == PASS


def test_same_seed_same_intervals_other_seed_other_replicates(data):
    frame, y, p, decline = data
    some = tuple(a for a in audited_attributes() if a.name in ("SEX", "AGE band"))

    def run(seed):
        return group_disparities(frame, y, decline, p, device=CPU, seed=seed, n_boot=300, attributes=some)[0]

    threads = torch.get_num_threads()
    first, again, other = run(0), run(0), run(1)
    assert torch.get_num_threads() == threads  # the bootstrap's one-thread setting is undone
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(other["approval_rate_lo"], first["approval_rate_lo"])
    np.testing.assert_array_equal(other["approval_rate"], first["approval_rate"])


# ---- groups ------------------------------------------------------------------------------------------
def test_groups_merge_undocumented_education_and_band_ages(data):
    frame, *_ = data
    by = {a.name: a for a in audited_attributes()}
    assert set(by) == {"SEX", "EDUCATION", "MARRIAGE", "AGE band", "SEX x AGE band", "SEX x EDUCATION"}
    edu = group_labels(frame, by["EDUCATION"])
    undocumented = np.isin(frame["EDUCATION"], list(S.BY_NAME["EDUCATION"].extra_codes))
    assert len(set(edu[undocumented])) == 1 and "undocumented" in edu[undocumented][0]
    ages = group_labels(frame, by["AGE band"])
    assert set(ages) <= {label for *_, label in S.AGE_BANDS}
    assert set(group_labels(frame, by["SEX x AGE band"])) <= set(by["SEX x AGE band"].groups)


# ---- the whole audit on a stub model -----------------------------------------------------------------
class StubModel:
    """Scores from a fixed column: enough of CreditModel's contract for the audit."""

    features = ("LIMIT_BAL", "EDUCATION", "AGE", "PAY_0")
    threshold_ = 0.5

    def __init__(self, p: pd.Series):
        self.p = p

    def predict_proba(self, frame):
        q = self.p.loc[frame.index].to_numpy()
        return np.column_stack([1 - q, q])

    def predict(self, frame):
        return (self.predict_proba(frame)[:, 1] >= self.threshold_).astype(np.int64)


def test_audit_summary_is_json_and_table_has_intervals(data):
    frame, y, p, decline = data
    model = StubModel(pd.Series(p, index=frame.index))
    audit = audit_fairness(frame, y, frame, y, model, device="cpu", seed=0, n_boot=200,
                           surrogate_decisions=decline, compare_models=False, proxies=False)
    summary = audit.summary()
    text = json.dumps(summary, allow_nan=False)
    assert "insufficient data" in text and summary["min_group_size"] == MIN_GROUP_SIZE
    assert set(summary["verdicts"]) == {a.name for a in audited_attributes()}
    assert all(v in (PASS, REVIEW, FAIL, INSUFFICIENT) for v in summary["verdicts"].values())
    # surrogate decisions equal to the model's -> fidelity 1 everywhere
    ok = audit.table[audit.table.status == "ok"]
    assert (ok["surrogate_fidelity"] == 1).all()
    for rate in ("approval_rate", "tpr", "fpr", "fnr", "precision", "roc_auc", "calibration_gap", "brier"):
        assert {rate, f"{rate}_lo", f"{rate}_hi"} <= set(audit.table.columns)
    with pytest.raises(AttributeError):
        audit.table = None  # immutable result


def test_n_boot_must_be_positive(data):
    frame, y, p, _ = data
    with pytest.raises(ValueError, match=MSG_N_BOOT.format(min=1, got=0)):
        audit_fairness(frame, y, frame, y, StubModel(pd.Series(p, index=frame.index)), device="cpu", n_boot=0,
                       compare_models=False, proxies=False)


# ---- proxies ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_proxies_find_an_input_that_encodes_sex():
    frame, *_ = synthetic(n=3000, seed=4)
    rng = np.random.default_rng(0)
    frame["LIMIT_BAL"] = np.where(frame["SEX"] == 2, 200_000.0, 50_000.0) + rng.normal(0, 40_000, len(frame))
    rows = {r["attribute"]: r for r in proxy_strength(frame, ("LIMIT_BAL", "PAY_0", "AGE", "EDUCATION"), seed=0)}
    assert rows["SEX"]["strength"] == "strong" and rows["SEX"]["top_features"][0]["feature"] == "LIMIT_BAL"
    assert rows["MARRIAGE"]["roc_auc"] < 0.6  # independent of every input here
    assert rows["EDUCATION"]["predictors"].endswith("other than EDUCATION")


# ---- explanation disparity ----------------------------------------------------------------------------
def test_reason_mix_by_group_is_tested_like_scipy(data, audited):
    frame, y, p, decline = data
    declined = frame.index[decline == 1]
    # women hear mostly about repayment, men mostly about the credit limit
    first = np.where(frame.loc[declined, "SEX"] == 2, "PAY_0", "LIMIT_BAL")
    flip = np.random.default_rng(0).random(len(declined)) < 0.2
    first = np.where(flip, np.where(first == "PAY_0", "LIMIT_BAL", "PAY_0"), first)
    reasons = pd.Series([[f, "AGE"] for f in first], index=declined)
    out = explanation_disparity(frame, decline, reasons, audited[0], seed=0, n_boot=500)
    sex = next(a for a in out["attributes"] if a["attribute"] == "SEX")
    chi2, pval, *_ = chi2_contingency(pd.crosstab(frame.loc[declined, "SEX"], first).to_numpy())
    assert sex["chi2"] == pytest.approx(chi2) and sex["p_value"] == pytest.approx(pval)
    assert sex["p_value"] < 1e-6 and sex["max_tv_distance"]["lo"] > 0.4
    assert out["reasons_naming_protected"] == 0
    assert math.isclose(out["n_declined_with_reasons"], len(declined))


def test_same_reasons_everywhere_is_no_disparity_and_foreign_index_is_refused(data, audited):
    frame, y, p, decline = data
    declined = frame.index[decline == 1]
    out = explanation_disparity(frame, decline, pd.Series([["PAY_0"]] * len(declined), index=declined), audited[0],
                                seed=0, n_boot=200)
    sex = next(a for a in out["attributes"] if a["attribute"] == "SEX")
    assert sex["p_value"] == 1.0 and sex["max_tv_distance"]["hi"] == 0.0
    with pytest.raises(ValueError, match=MSG_REASONS_INDEX.format(n=1)):
        explanation_disparity(frame, decline, pd.Series([["PAY_0"]], index=[-1]), audited[0], seed=0, n_boot=10)


# ---- group rates as one object ------------------------------------------------------------------------
def _sex_rates(data, n_boot: int = 50) -> tuple[GroupRates, np.ndarray]:
    frame, y, p, decline = data
    (sex,) = (a for a in audited_attributes() if a.name == "SEX")
    labels = group_labels(frame, sex)
    ind = indicator_matrix(y, decline, p, None, CPU)
    gen = torch.Generator().manual_seed(0)
    points, reps = zip(*(group_rates(ind, torch.as_tensor(np.flatnonzero(labels == g)), n_boot, gen)
                         for g in sex.groups), strict=True)
    return GroupRates(sex.groups, torch.stack(points), torch.stack(reps, dim=1)), labels


def test_group_rates_reduce_like_metricframe_difference_and_ratio(data):
    frame, y, p, decline = data
    rates, labels = _sex_rates(data)
    mf = MetricFrame(metrics={"approval_rate": lambda t, d: selection_rate(t, d, pos_label=0),
                              "tpr": true_positive_rate, "fpr": false_positive_rate},
                     y_true=y, y_pred=decline, sensitive_features=pd.Series(labels, name="group"))
    for rate in ("approval_rate", "tpr", "fpr"):
        assert float(rates.difference(rate).value) == pytest.approx(mf.difference()[rate], rel=1e-12)
        assert float(rates.ratio(rate).value) == pytest.approx(mf.ratio()[rate], rel=1e-12)
        assert float(rates.group_max(rate).value) == pytest.approx(mf.group_max()[rate], rel=1e-12)
        assert float(rates.group_min(rate).value) == pytest.approx(mf.group_min()[rate], rel=1e-12)
        np.testing.assert_allclose(rates.by_group(rate).value.numpy(), mf.by_group.loc[list(rates.groups), rate],
                                   rtol=1e-12)
    eod = fair.equalized_odds_difference(rates)
    assert float(eod.value) == pytest.approx(equalized_odds_difference(y, decline, sensitive_features=labels), rel=1e-12)


def test_one_reduction_gives_the_ratio_the_four_fifths_ratios_and_their_replicates(data):
    rates, _ = _sex_rates(data)
    approval = rates.by_group("approval_rate")
    # the lowest adverse impact ratio is min / max exactly, per replicate too
    for got, x in ((rates.ratio("approval_rate").value, approval.value),
                   (rates.ratio("approval_rate").replicates, approval.replicates)):
        assert torch.equal(got, x.amin(dim=-1) / x.amax(dim=-1))
    air = fair.adverse_impact_ratios(rates)
    assert torch.equal(air.replicates.amin(dim=-1), fair.lowest_adverse_impact_ratio(rates).replicates)
    assert air.replicates.shape == (50, len(rates.groups))
    assert torch.equal(fair.demographic_parity_difference(rates).replicates,
                       approval.replicates.amax(dim=-1) - approval.replicates.amin(dim=-1))


def test_group_rates_refuse_wrong_shapes_and_unknown_rates_and_are_frozen(data):
    rates, _ = _sex_rates(data)
    with pytest.raises(ValueError, match=re.escape(MSG_SHAPE.format(want=(3, len(RATES)), got=(2, len(RATES)),
                                                                    reps=tuple(rates.replicates.shape)))):
        GroupRates(("a", "b", "c"), rates.point, rates.replicates)
    with pytest.raises(KeyError, match=re.escape(MSG_RATE.format(name="approval", expected=RATES))):
        rates.ratio("approval")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rates.point = rates.point * 2


def test_every_disparity_interval_contains_its_estimate(audited):
    """Gaps and lowest ratios are bounded and extremes over groups: their intervals come from the pair band."""
    _, results = audited
    for r in results:
        for name, d in r.disparities.items():
            assert d["lo"] - 1e-12 <= d["value"] <= d["hi"] + 1e-12, (r.attribute, name, d)


def test_gap_interval_of_two_equal_groups_starts_at_zero_and_contains_the_gap():
    """Two groups with the same rates: a percentile interval of max - min would sit wholly above 0."""
    frame, y, p, decline = synthetic(n=6000, seed=5)
    sex = tuple(a for a in audited_attributes() if a.name == "SEX")
    _, (result,) = group_disparities(frame, y, decline, p, device=CPU, seed=0, n_boot=500, attributes=sex)
    gap = result.disparities["demographic_parity_difference"]
    assert gap["lo"] == 0.0 and gap["value"] <= gap["hi"]
    ratio = result.disparities["lowest_adverse_impact_ratio"]
    assert ratio["lo"] <= ratio["value"] and ratio["hi"] == 1.0
