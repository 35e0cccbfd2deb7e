"""Explanation disparity: do declined applicants in different groups hear different reasons?

If the model declines women mainly for one reason and men for another, the
notices differ by group even where decision rates do not. Per protected
attribute, the principal (first) reason of every declined applicant is
tabulated by group; a chi-square test of independence asks whether the
reason mix depends on the group, and the largest total-variation distance
between two groups' reason mixes (with a within-group bootstrap interval)
says by how much. Surrogate fidelity per group says whether the readable
tree describes every group's decisions equally well.
"""

from __future__ import annotations

import json
import math
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from .. import schema as S
from ..constants import CI_LEVEL, INSUFFICIENT, MIN_GROUP_SIZE
from ._groups import audited_attributes, group_labels

MIN_EXPECTED = 5  # chi-square needs expected counts of about 5: rarer reasons are pooled into "other reasons"
OTHER_REASONS = "other reasons"
TOP_REASONS_SHOWN = 5
MSG_REASONS_INDEX = "reasons must be indexed like X_test; {n} of its labels are not in X_test.index"


def _features(entry) -> list[str]:
    """A reasons entry as feature names: list of names, list of {"feature": ...} dicts, or their JSON."""
    if entry is None or (isinstance(entry, float) and math.isnan(entry)):
        return []
    if isinstance(entry, str):
        entry = json.loads(entry)
    return [e["feature"] if isinstance(e, dict) else str(e) for e in entry]


def _top_reasons(reasons: pd.Series, X_test: pd.DataFrame, decline: np.ndarray) -> pd.Series:
    """First reason of each declined test applicant that has one, indexed like X_test."""
    missing = ~reasons.index.isin(X_test.index)
    if missing.any():
        raise ValueError(MSG_REASONS_INDEX.format(n=int(missing.sum())))
    declined = X_test.index[np.asarray(decline) == 1]
    lists = reasons.reindex(declined).map(_features)
    return lists[lists.map(len) > 0].map(lambda r: r[0])


def _pool_rare(table: pd.DataFrame) -> pd.DataFrame:
    expected_min = table.sum(axis=0) * table.sum(axis=1).min() / table.to_numpy().sum()
    rare = expected_min[expected_min < MIN_EXPECTED].index
    if len(rare) == 0:
        return table
    pooled = table.drop(columns=rare)
    pooled[OTHER_REASONS] = table[rare].sum(axis=1)
    return pooled


def _max_tv(shares: np.ndarray) -> np.ndarray:
    """shares (..., G, K) -> (...,) largest total-variation distance between two groups."""
    pairs = list(combinations(range(shares.shape[-2]), 2))
    return np.max([0.5 * np.abs(shares[..., i, :] - shares[..., j, :]).sum(-1) for i, j in pairs], axis=0)


def _reason_mix(attribute: str, labels: pd.Series, top: pd.Series, n_boot: int, rng: np.random.Generator) -> dict:
    counts = pd.crosstab(labels.loc[top.index], top)
    judged = counts[counts.sum(axis=1) >= MIN_GROUP_SIZE]
    groups = [{"group": str(g), "declined_with_reasons": int(counts.loc[g].sum()),
               "top_reasons": {str(f): float(c / counts.loc[g].sum())
                               for f, c in counts.loc[g].sort_values(ascending=False).head(TOP_REASONS_SHOWN).items() if c > 0},
               "status": "ok" if g in judged.index else INSUFFICIENT}
              for g in counts.index]
    out = {"attribute": attribute, "groups": groups}
    if len(judged) < 2:
        return out | {"status": INSUFFICIENT, "reason": f"fewer than two groups have {MIN_GROUP_SIZE} declined applicants with reasons"}
    judged = judged.loc[:, judged.sum(axis=0) > 0]
    pooled = _pool_rare(judged)
    if pooled.shape[1] < 2:  # every group hears the same single reason: nothing to test
        chi2, p_value, dof = 0.0, 1.0, 0
    else:
        chi2, p_value, dof, _ = chi2_contingency(pooled.to_numpy())
    n = pooled.to_numpy().sum()
    cramers_v = math.sqrt(chi2 / (n * max(1, min(pooled.shape) - 1)))
    table = judged.to_numpy(np.float64)
    shares = table / table.sum(axis=1, keepdims=True)
    draws = np.stack([rng.multinomial(int(row.sum()), s, size=n_boot) for row, s in zip(table, shares, strict=True)], axis=1)
    boot = _max_tv(draws / table.sum(axis=1)[None, :, None])
    lo, hi = np.quantile(boot, [(1 - CI_LEVEL) / 2, 1 - (1 - CI_LEVEL) / 2])
    pairs = list(combinations(range(len(judged)), 2))
    tvs = [0.5 * np.abs(shares[i] - shares[j]).sum() for i, j in pairs]
    i, j = pairs[int(np.argmax(tvs))]
    return out | {
        "status": "ok",
        "chi2": float(chi2), "dof": int(dof), "p_value": float(p_value), "cramers_v": float(cramers_v),
        "reasons_pooled": [str(c) for c in judged.columns if c not in pooled.columns],
        "max_tv_distance": {"value": float(max(tvs)), "lo": float(lo), "hi": float(hi)},
        "most_different_groups": [str(judged.index[i]), str(judged.index[j])],
    }


def explanation_disparity(X_test: pd.DataFrame, decline: np.ndarray, reasons: pd.Series | None, table: pd.DataFrame,
                          *, seed: int, n_boot: int) -> dict:
    """Reason mixes of declined applicants by group, and surrogate fidelity by group (from the table)."""
    out: dict = {"method": "principal (first) reason of each declined test applicant; chi-square test of "
                           f"independence (reasons expected fewer than {MIN_EXPECTED} times pooled) and the largest "
                           f"total-variation distance between two groups with a {CI_LEVEL:.0%} within-group "
                           "multinomial bootstrap interval"}
    if reasons is not None:
        top = _top_reasons(reasons, X_test, decline)
        rng = np.random.default_rng(seed)
        out["n_declined_with_reasons"] = int(len(top))
        out["reasons_naming_protected"] = int(top.isin(S.PROTECTED).sum())
        out["attributes"] = [
            _reason_mix(a.name, pd.Series(group_labels(X_test, a), index=X_test.index), top, n_boot, rng)
            for a in audited_attributes() if a.kind == "attribute"
        ]
    fid = table[table["surrogate_fidelity"].notna() & (table["status"] == "ok")]
    if len(fid):
        out["surrogate_fidelity"] = [
            {"attribute": r.attribute, "group": r.group, "count": int(r.count), "fidelity": float(r.surrogate_fidelity),
             "lo": float(r.surrogate_fidelity_lo), "hi": float(r.surrogate_fidelity_hi)}
            for r in fid.itertuples()
        ]
    return out
