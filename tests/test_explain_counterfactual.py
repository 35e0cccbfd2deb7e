"""Counterfactuals flip the MLP's decision with actionable, in-range changes, and hold up against DiCE."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest

from pipeline import schema as S
from pipeline.explain._counterfactual import (
    MSG_NOT_DECLINED,
    actionable_features,
    counterfactuals,
)


@pytest.fixture(scope="module")
def declined(fitted_model, split):
    return split.X_test[fitted_model.predict(split.X_test) == 1]


@pytest.fixture(scope="module")
def results(fitted_model, split, declined):
    return counterfactuals(fitted_model, declined, split.X_train, "cpu", seed=0)


def test_found_for_at_least_95_percent_and_each_flips(fitted_model, declined, results):
    assert len(results) == len(declined)
    found = np.array([cf.found for cf in results])
    assert found.mean() >= 0.95, found.mean()
    rows = declined[list(fitted_model.features)].copy()
    for i, cf in enumerate(results):
        for c in cf.changes:
            col = rows.columns.get_loc(c.feature)
            rows.iat[i, col] = rows.dtypes.iloc[col].type(c.after)
    decisions = fitted_model.predict(rows)
    assert (decisions[found] == 0).all(), "a counterfactual that does not flip the decision"
    p = fitted_model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(p[found], [cf.probability for cf in results if cf.found], rtol=1e-6)


def test_changes_are_actionable_directed_and_seen_in_data(fitted_model, split, declined, results):
    allowed = set(actionable_features(fitted_model.features))
    assert allowed == {f.name for f in S.FEATURES if f.mutable and f.name in fitted_model.features}
    for (_, row), cf in zip(declined.iterrows(), results, strict=True):
        assert cf.found == bool(cf.changes)
        for c in cf.changes:
            f = S.BY_NAME[c.feature]
            assert c.feature in allowed and not f.protected and f.mutable, c.feature
            assert c.before == row[c.feature] and c.after != c.before
            if f.direction == "increase":
                assert c.after > c.before, c
            if f.direction == "decrease":
                assert c.after < c.before, c
            column = split.X_train[c.feature]
            assert column.min() <= c.after <= column.max(), c
            if f.is_categorical:
                assert c.after in set(column.unique()), c
            assert c.text == f"{f.label}: {f.describe(c.before)} -> {f.describe(c.after)}"


def test_record_follows_the_output_contract(results):
    record = json.loads(next(cf for cf in results if cf.found).to_json())
    assert set(record) == {"found", "changes", "probability"}
    assert set(record["changes"][0]) == {"feature", "label", "from", "to", "text"}


def test_says_so_when_nothing_flips(fitted_model, split, declined):
    strict = copy.deepcopy(fitted_model)
    strict.threshold_ = 1e-6  # every applicant declined, none can get below it
    out = counterfactuals(strict, declined.iloc[:3], split.X_train, "cpu")
    assert [cf.found for cf in out] == [False] * 3
    assert all(cf.changes == () and cf.probability is None for cf in out)
    assert out[0].to_dict() == {"found": False, "changes": [], "probability": None}
    assert out[0].text.startswith("No change to credit limit")


def test_rejects_applicants_the_model_approves(fitted_model, split):
    approved = split.X_test[fitted_model.predict(split.X_test) == 0].iloc[:2]
    with pytest.raises(ValueError, match=MSG_NOT_DECLINED.split(",")[0]):
        counterfactuals(fitted_model, approved, split.X_train, "cpu")


@pytest.mark.slow
def test_finds_whenever_dice_finds_with_no_more_changes(fitted_model, split, declined, results):
    """DiCE (random search, same actionable features and directions) as the peer library."""
    import dice_ml

    features = list(fitted_model.features)
    train = split.X_train[features].iloc[:3000].copy()
    train["decision"] = fitted_model.predict(train)
    data = dice_ml.Data(
        dataframe=train, continuous_features=[f for f in features if f != "EDUCATION"], outcome_name="decision"
    )
    dice = dice_ml.Dice(data, dice_ml.Model(model=fitted_model, backend="sklearn"), method="random")
    actionable = actionable_features(features)
    compared = 0
    for i in range(8):
        query = declined.iloc[[i]][features]
        ranges = {}
        for name in actionable:
            low, high, now = split.X_train[name].min(), split.X_train[name].max(), query[name].iloc[0]
            direction = S.BY_NAME[name].direction
            ranges[name] = (
                [low, now] if direction == "decrease" else [now, high] if direction == "increase" else [low, high]
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = (
                dice.generate_counterfactuals(
                    query,
                    total_CFs=3,
                    desired_class="opposite",
                    features_to_vary=actionable,
                    permitted_range=ranges,
                    random_seed=0,
                    posthoc_sparsity_param=None,
                    verbose=False,
                )
                .cf_examples_list[0]
                .final_cfs_df
            )
        if found is None or found.empty:
            continue
        flips = fitted_model.predict(found[features]) == 0
        if not flips.any():
            continue
        compared += 1
        fewest = min(int((found[features].iloc[k] != query.iloc[0]).sum()) for k in np.flatnonzero(flips))
        assert results[i].found, i
        assert len(results[i].changes) <= fewest, (i, results[i].text, fewest)
    assert compared >= 5
