"""Flag rules: each one against an independent computation of what it should flag."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline import outputs as O
from pipeline import schema as S
from pipeline.flags import (
    FLAG_COLUMNS,
    MSG_BAD_CONFIG,
    MSG_MISSING_COLUMNS,
    FlagCode,
    FlagConfig,
    compute_flags,
    flag_summary,
)

THRESHOLD = 0.4


def synthetic_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """An applicants table with the documented columns, values drawn inside the schema's codes."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for f in S.FEATURES:
        if f.is_categorical:
            cols[f.name] = rng.choice(sorted(f.codes), size=n)
        elif f.kind == "count":
            cols[f.name] = rng.integers(21, 70, size=n)
        else:
            cols[f.name] = np.round(rng.lognormal(10, 1, size=n))
    p = rng.uniform(0, 1, size=n)
    table = pd.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "split": np.where(np.arange(n) % 5 == 0, "test", "train"),
            "label": rng.integers(0, 2, size=n),
            "probability": p,
            "decision": np.where(p >= THRESHOLD, "decline", "approve"),
            "surrogate_decision": np.where(
                rng.uniform(size=n) < 0.9,
                np.where(p >= THRESHOLD, "decline", "approve"),
                np.where(p >= THRESHOLD, "approve", "decline"),
            ),
        }
    )
    return pd.concat([table, pd.DataFrame(cols)], axis=1)


def ids_of(result, code: str) -> set[int]:
    t = result.table
    return set(t.loc[t["code"] == code, "id"].tolist())


def test_borderline_matches_distance_to_threshold():
    table = synthetic_table()
    cfg = FlagConfig(borderline_margin=0.07)
    result = compute_flags(table, THRESHOLD, cfg)
    expected = set(table.loc[(table["probability"] - THRESHOLD).abs() <= 0.07, "id"])
    assert expected and ids_of(result, FlagCode.BORDERLINE) == expected
    rows = result.table[result.table["code"] == FlagCode.BORDERLINE].set_index("id")
    p = table.set_index("id").loc[rows.index, "probability"]
    np.testing.assert_allclose(rows["value"], p - THRESHOLD)


def test_surrogate_disagreement():
    table = synthetic_table()
    result = compute_flags(table, THRESHOLD)
    expected = set(table.loc[table["decision"] != table["surrogate_decision"], "id"])
    assert expected and ids_of(result, FlagCode.SURROGATE_DISAGREES) == expected


def test_undocumented_codes_and_reason_text():
    table = synthetic_table()
    table.loc[3, "EDUCATION"] = 5
    table.loc[7, "MARRIAGE"] = 0
    table.loc[7, "EDUCATION"] = 0
    result = compute_flags(table, THRESHOLD)
    assert ids_of(result, FlagCode.UNDOCUMENTED_CODE) == {int(table.loc[3, "id"]), int(table.loc[7, "id"])}
    row7 = result.table[(result.table["id"] == table.loc[7, "id"]) & (result.table["code"] == "undocumented_code")]
    assert row7["value"].item() == 2
    assert "Education" in row7["reason"].item() and "Marital status" in row7["reason"].item()


def test_out_of_range_uses_training_quantiles():
    table = synthetic_table()
    cfg = FlagConfig(range_quantile=0.01, range_slack=0.1)
    train = table[table["split"] == "train"]
    lo, hi = np.quantile(train["LIMIT_BAL"], [0.01, 0.99])
    far = hi + 0.1 * (hi - lo) + 1
    test_rows = table.index[table["split"] == "test"][:2]
    table.loc[test_rows[0], "LIMIT_BAL"] = far
    table.loc[test_rows[1], "LIMIT_BAL"] = hi  # inside the accepted range: not flagged for this feature
    result = compute_flags(table, THRESHOLD, cfg)
    flagged = result.table[result.table["code"] == FlagCode.OUT_OF_RANGE]
    reasons = dict(zip(flagged["id"], flagged["reason"], strict=True))
    assert "Credit limit" in reasons[int(table.loc[test_rows[0], "id"])]
    assert "Credit limit" not in reasons.get(int(table.loc[test_rows[1], "id"]), "")
    # every flagged row has at least one numeric value outside the widened quantile range, and vice versa
    expected = np.zeros(len(table), dtype=bool)
    for f in S.FEATURES:
        if f.is_categorical:
            continue
        q_lo, q_hi = np.quantile(train[f.name], [0.01, 0.99])
        pad = 0.1 * (q_hi - q_lo)
        expected |= ((table[f.name] < q_lo - pad) | (table[f.name] > q_hi + pad)).to_numpy()
    assert set(flagged["id"]) == set(table.loc[expected, "id"])


def test_training_frame_argument_wins_over_split_column():
    table = synthetic_table()
    training = table.assign(LIMIT_BAL=table["LIMIT_BAL"] * 1000)  # everything in the table looks small
    result = compute_flags(table, THRESHOLD, FlagConfig(range_slack=0.0), training=training)
    assert len(ids_of(result, FlagCode.OUT_OF_RANGE)) > len(table) // 2


def test_rules_needing_explanations_are_skipped_then_run():
    table = synthetic_table()
    result = compute_flags(table, THRESHOLD)
    for code in ("unstable_explanation", "no_counterfactual", "no_reasons", "protected_top_factor"):
        assert code in result.skipped and "not computed in this run" in result.skipped[code]
        assert code not in flag_summary(result)["counts"]

    rng = np.random.default_rng(1)
    declined = table["decision"] == "decline"
    stability = rng.uniform(0, 1, len(table))
    cf = [
        json.dumps({"found": bool(i % 3), "changes": [], "probability": 0.3}) if d else None
        for i, d in enumerate(declined)
    ]
    reasons = [json.dumps([] if i % 4 == 0 else [{"text": "x"}]) if d else None for i, d in enumerate(declined)]
    shap = {f"shap_{n}": rng.normal(0, 0.01, len(table)) for n in S.DEFAULT_MODEL_FEATURES}
    shap["shap_AGE"] = np.where(np.arange(len(table)) % 2 == 0, 0.5, -0.5)  # the largest factor either way
    full = table.assign(stability=stability, counterfactual=cf, reasons=reasons, **shap)
    result = compute_flags(full, THRESHOLD, FlagConfig(min_stability=0.3))

    assert ids_of(result, FlagCode.UNSTABLE_EXPLANATION) == set(full.loc[declined & (stability < 0.3), "id"])
    no_cf = declined & np.array([i % 3 == 0 for i in range(len(full))])
    assert ids_of(result, FlagCode.NO_COUNTERFACTUAL) == set(full.loc[no_cf, "id"])
    no_reasons = declined & np.array([i % 4 == 0 for i in range(len(full))])
    assert ids_of(result, FlagCode.NO_REASONS) == set(full.loc[no_reasons, "id"])
    age_up = declined & (shap["shap_AGE"] > 0)
    assert ids_of(result, FlagCode.PROTECTED_TOP_FACTOR) == set(full.loc[age_up, "id"])
    assert not result.skipped


def test_unstable_flag_only_for_declined_and_names_only_the_methods_compared():
    """LIME exists for declined applicants only: no flag may cite a comparison with it where it was not computed."""
    table = synthetic_table()
    declined = (table["decision"] == "decline").to_numpy()
    lime = {f"lime_{n}": np.where(declined & (np.arange(len(table)) % 2 == 0), 0.1, np.nan)
            for n in S.DEFAULT_MODEL_FEATURES}
    full = table.assign(stability=0.0, **lime)
    flags = compute_flags(full, THRESHOLD).table
    unstable = flags[flags["code"] == FlagCode.UNSTABLE_EXPLANATION].merge(full[["id", "decision", "lime_PAY_0"]])
    assert set(unstable["id"]) == set(full.loc[declined, "id"])  # no approved applicant is queued for it
    with_lime = unstable["lime_PAY_0"].notna()
    assert unstable.loc[with_lime, "reason"].str.startswith("SHAP, LIME and the surrogate path").all()
    assert unstable.loc[~with_lime, "reason"].str.startswith("SHAP and the surrogate path agree").all()
    assert (~with_lime).any() and with_lime.any()


def test_clean_history_decline():
    table = synthetic_table()
    pay = [f.name for f in S.FEATURES if f.kind == "repayment_status"]
    clean = (table[pay] <= 0).all(axis=1) & (table["decision"] == "decline")
    result = compute_flags(table, THRESHOLD)
    assert clean.any() and ids_of(result, FlagCode.CLEAN_HISTORY_DECLINE) == set(table.loc[clean, "id"])


def test_summary_counts_and_json():
    table = synthetic_table()
    result = compute_flags(table, THRESHOLD, FlagConfig(enabled=("borderline", "surrogate_disagrees")))
    summary = flag_summary(result)
    json.dumps(summary, allow_nan=False)
    assert sum(summary["counts"].values()) == summary["total"] == len(result.table)
    assert summary["applicants_flagged"] == result.table["id"].nunique()
    assert summary["applicants"] == len(table)
    assert summary["skipped"]["out_of_range"] == "disabled in the configuration"
    assert set(summary["counts"]) == {"borderline", "surrogate_disagrees"}


def test_table_layout_and_parquet_round_trip(tmp_path):
    result = compute_flags(synthetic_table(), THRESHOLD)
    assert tuple(result.table.columns) == FLAG_COLUMNS
    O.write_parquet(tmp_path / "flags.parquet", result.table)
    back = pd.read_parquet(tmp_path / "flags.parquet")
    assert back["id"].dtype == np.int64 and back["value"].dtype == np.float64
    pd.testing.assert_frame_equal(back, result.table, check_dtype=False)
    assert back.duplicated(["id", "code"]).sum() == 0


def test_empty_result_keeps_the_layout():
    table = synthetic_table(20)
    result = compute_flags(table, THRESHOLD, FlagConfig(enabled=("undocumented_code",)))
    assert len(result.table) == 0 and tuple(result.table.columns) == FLAG_COLUMNS
    assert flag_summary(result)["applicants_flagged"] == 0


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"borderline_margin": -0.1}, "borderline_margin"),
        ({"min_stability": 2}, "min_stability"),
        ({"range_quantile": 0.5}, "range_quantile"),
        ({"protected_top_k": 0}, "protected_top_k"),
        ({"enabled": ("nonsense",)}, "enabled"),
    ],
)
def test_bad_config_is_refused(kw, name):
    with pytest.raises(ValueError, match=MSG_BAD_CONFIG.split("{")[0]) as err:
        FlagConfig(**kw)
    assert name in str(err.value)


def test_missing_required_columns():
    with pytest.raises(ValueError, match=MSG_MISSING_COLUMNS.split("{")[0].strip()):
        compute_flags(synthetic_table().drop(columns=["probability"]), THRESHOLD)


def test_real_data_undocumented_codes(portfolio):
    """On the real file, the rule flags exactly the rows with codes outside the data dictionary."""
    f = portfolio.features
    table = pd.DataFrame({"id": portfolio.ids.to_numpy(), "probability": 0.1, "decision": "approve"})
    table = pd.concat([table, f.reset_index(drop=True)], axis=1)
    result = compute_flags(table, 0.5, FlagConfig(enabled=("undocumented_code",)))
    undocumented = ~f["EDUCATION"].isin([1, 2, 3, 4]) | ~f["MARRIAGE"].isin([1, 2, 3])
    assert undocumented.sum() > 0
    assert ids_of(result, FlagCode.UNDOCUMENTED_CODE) == set(portfolio.ids[undocumented.to_numpy()].tolist())


def test_stability_default_is_the_explanation_steps_cut():
    from pipeline.explain import STABILITY_FLAG_BELOW

    assert FlagConfig().min_stability == STABILITY_FLAG_BELOW
