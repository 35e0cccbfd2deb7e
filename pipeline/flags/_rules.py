"""The flag rules: each takes the applicants table and returns who it flags, why, and by how much.

Rules are small vectorised functions over `applicants.parquet` columns
(docs/outputs.md). A rule that needs a column the run lacks raises
`_Skip` with the reason, and `compute_flags` records it instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from types import MappingProxyType

import numpy as np
import pandas as pd

from .. import schema as S
from ..columns import LIME, SHAP, columns_of, explanation_column
from ..constants import STABILITY_FLAG_BELOW

MSG_MISSING_COLUMNS = "flags need the applicants table columns {missing}; got {got}"
MSG_BAD_CONFIG = "flag setting {name} must be {expected}, got {value!r}"
MSG_SKIPPED_COLUMN = "not computed in this run (no {column!r} column)"
MSG_DISABLED = "disabled in the configuration"

FLAG_COLUMNS = ("id", "code", "reason", "value")
REQUIRED = ("id", "probability", "decision")
DECLINE = "decline"


class FlagCode(StrEnum):
    """Stable flag codes (stored in flags.parquet and the review database: never renamed)."""

    BORDERLINE = "borderline"
    SURROGATE_DISAGREES = "surrogate_disagrees"
    UNSTABLE_EXPLANATION = "unstable_explanation"
    UNDOCUMENTED_CODE = "undocumented_code"
    OUT_OF_RANGE = "out_of_range"
    NO_COUNTERFACTUAL = "no_counterfactual"
    NO_REASONS = "no_reasons"
    CLEAN_HISTORY_DECLINE = "clean_history_decline"
    PROTECTED_TOP_FACTOR = "protected_top_factor"


FLAG_LABELS: Mapping[str, str] = MappingProxyType(
    {
        FlagCode.BORDERLINE: "Borderline probability",
        FlagCode.SURROGATE_DISAGREES: "Surrogate tree disagrees with the model",
        FlagCode.UNSTABLE_EXPLANATION: "Unstable explanation",
        FlagCode.UNDOCUMENTED_CODE: "Undocumented input code",
        FlagCode.OUT_OF_RANGE: "Value far outside the training data",
        FlagCode.NO_COUNTERFACTUAL: "No counterfactual found",
        FlagCode.NO_REASONS: "Declined without principal reasons",
        FlagCode.CLEAN_HISTORY_DECLINE: "Declined with a clean repayment history",
        FlagCode.PROTECTED_TOP_FACTOR: "Protected attribute is a top factor",
    }
)


@dataclass(frozen=True)
class FlagConfig:
    """Every threshold of the flag rules, with the defaults used when a run does not set them.

    - `borderline_margin`: flag when |P(default) - threshold| <= margin (0.05 = 5 points).
    - `min_stability`: flag when the SHAP/LIME/surrogate top-factor agreement is below this (0..1).
      The default is the explanation step's own cut (`pipeline.constants.STABILITY_FLAG_BELOW`,
      0.25): the depth-4 surrogate's path shares about one factor in three with SHAP or LIME
      even when they agree, so 0.5 would flag most of the portfolio (70% of the real one);
      below 0.25 the methods share less than one top factor in four.
    - `range_quantile`: a numeric value is "far outside the training data" when it lies below
      the training `q` quantile or above the `1 - q` quantile, widened on each side by
      `range_slack` times that inter-quantile width (0.001 and 0.25: beyond the 0.1th/99.9th
      percentiles by a quarter of their spread; 0 and 0 means beyond the training min/max).
    - `protected_top_k`: flag a decline when a protected attribute (AGE, EDUCATION, ...) is among
      the `k` largest SHAP factors and pushes towards decline.
    - `enabled`: the rule codes that run (default: all).
    """

    borderline_margin: float = 0.05
    min_stability: float = STABILITY_FLAG_BELOW
    range_quantile: float = 0.001
    range_slack: float = 0.25
    protected_top_k: int = 1
    enabled: tuple[str, ...] = tuple(FlagCode)

    def __post_init__(self) -> None:
        checks = [
            ("borderline_margin", 0.0 <= self.borderline_margin <= 0.5, "between 0 and 0.5"),
            ("min_stability", 0.0 <= self.min_stability <= 1.0, "between 0 and 1"),
            ("range_quantile", 0.0 <= self.range_quantile < 0.5, "at least 0 and below 0.5"),
            ("range_slack", self.range_slack >= 0.0, "at least 0"),
            (
                "protected_top_k",
                int(self.protected_top_k) == self.protected_top_k and self.protected_top_k >= 1,
                "a whole number of at least 1",
            ),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(MSG_BAD_CONFIG.format(name=name, expected=expected, value=getattr(self, name)))
        unknown = [c for c in self.enabled if c not in set(FlagCode)]
        if unknown:
            raise ValueError(
                MSG_BAD_CONFIG.format(name="enabled", expected=f"codes among {list(map(str, FlagCode))}", value=unknown)
            )
        object.__setattr__(self, "enabled", tuple(str(c) for c in self.enabled))

    def to_dict(self) -> dict:
        return asdict(self) | {"enabled": list(self.enabled)}


@dataclass(frozen=True)
class FlagResult:
    """The flags of one run: `table` (one row per applicant and flag), what was skipped, and the settings."""

    table: pd.DataFrame
    skipped: Mapping[str, str]
    evaluated: tuple[str, ...]
    config: FlagConfig
    threshold: float
    n_applicants: int
    ranges: Mapping[str, tuple[float, float, float, float]] = field(default_factory=dict)


class _Skip(Exception):
    """A rule cannot run on this table; the message says why."""


@dataclass(frozen=True)
class _Context:
    table: pd.DataFrame
    threshold: float
    config: FlagConfig
    ranges: Mapping[str, tuple[float, float, float, float]]

    def column(self, name: str) -> pd.Series:
        if name not in self.table.columns:
            raise _Skip(MSG_SKIPPED_COLUMN.format(column=name))
        return self.table[name]

    @property
    def declined(self) -> np.ndarray:
        return (self.table["decision"] == DECLINE).to_numpy()


Hits = tuple[np.ndarray, list[str], np.ndarray]  # row mask, one reason per flagged row, one value per flagged row


def _pct(p: float) -> str:
    return f"{p * 100:.1f}%"


def _borderline(ctx: _Context) -> Hits:
    p = ctx.column("probability").to_numpy(np.float64)
    gap = p - ctx.threshold
    mask = np.abs(gap) <= ctx.config.borderline_margin
    dec = ctx.table["decision"].to_numpy()[mask]
    reasons = [
        f"probability of default {_pct(v)} is {abs(g) * 100:.1f} points {'above' if g >= 0 else 'below'} the "
        f"{_pct(ctx.threshold)} threshold (margin {ctx.config.borderline_margin * 100:.1f} points); decided: {d}"
        for v, g, d in zip(p[mask], gap[mask], dec, strict=True)
    ]
    return mask, reasons, gap[mask]


def _surrogate(ctx: _Context) -> Hits:
    sur = ctx.column("surrogate_decision").to_numpy()
    dec = ctx.table["decision"].to_numpy()
    mask = sur != dec
    reasons = [
        f"the model decided {d} but the surrogate tree's rules lead to {s}"
        for d, s in zip(dec[mask], sur[mask], strict=True)
    ]
    return mask, reasons, ctx.table["probability"].to_numpy(np.float64)[mask]


def _compared_methods(ctx: _Context) -> np.ndarray:
    """Per row, the methods its stability compares: LIME only where this applicant has LIME values."""
    lime = list(columns_of(ctx.table, LIME, S.FEATURE_NAMES))
    has_lime = ctx.table[lime].notna().any(axis=1).to_numpy() if lime else np.zeros(len(ctx.table), bool)
    return np.where(has_lime, "SHAP, LIME and the surrogate path", "SHAP and the surrogate path")


def _unstable(ctx: _Context) -> Hits:
    """Declined applicants whose explanation methods disagree: their notice states reasons a person relies on.

    An approved applicant is sent no reasons, so disagreement there needs no human look (it is
    still measured, and reported, as stability). The text names only the methods compared.
    """
    stab = pd.to_numeric(ctx.column("stability"), errors="coerce").to_numpy(np.float64)
    if np.isnan(stab).all():
        raise _Skip(MSG_SKIPPED_COLUMN.format(column="stability") + ": every value is empty")
    mask = ctx.declined & ~np.isnan(stab) & (stab < ctx.config.min_stability)
    reasons = [
        f"{methods} agree on only {s:.0%} of the top factors (below {ctx.config.min_stability:.0%})"
        for methods, s in zip(_compared_methods(ctx)[mask], stab[mask], strict=True)
    ]
    return mask, reasons, stab[mask]


def _categorical_features(table: pd.DataFrame) -> list[S.Feature]:
    return [S.BY_NAME[c] for c in S.FEATURE_NAMES if c in table.columns and S.BY_NAME[c].is_categorical]


def _numeric_features(table: pd.DataFrame) -> list[S.Feature]:
    return [S.BY_NAME[c] for c in S.FEATURE_NAMES if c in table.columns and not S.BY_NAME[c].is_categorical]


def _per_feature(
    ctx: _Context,
    features: list[S.Feature],
    bad: Callable[[S.Feature, np.ndarray], np.ndarray],
    describe: Callable[[S.Feature, float], str],
) -> Hits:
    """Flag rows where any of `features` is bad; the reason lists every bad feature of the row."""
    if not features:
        raise _Skip("none of the schema's features of this kind are in the table")
    n = len(ctx.table)
    parts: list[list[str]] = [[] for _ in range(n)]
    count = np.zeros(n, dtype=np.int64)
    for f in features:
        values = ctx.table[f.name].to_numpy(np.float64)
        hit = bad(f, values)
        count += hit
        for i in np.flatnonzero(hit):
            parts[i].append(describe(f, float(values[i])))
    mask = count > 0
    return mask, ["; ".join(parts[i]) for i in np.flatnonzero(mask)], count[mask].astype(np.float64)


def _undocumented(ctx: _Context) -> Hits:
    def bad(f: S.Feature, v: np.ndarray) -> np.ndarray:
        return ~np.isin(v, list(f.codes))

    def describe(f: S.Feature, v: float) -> str:
        return f"{f.label} has code {v:g}, which the data dictionary does not document"

    return _per_feature(ctx, _categorical_features(ctx.table), bad, describe)


def training_ranges(training: pd.DataFrame, config: FlagConfig) -> dict[str, tuple[float, float, float, float]]:
    """Per numeric feature: (flag below, flag above, low quantile, high quantile) of the training data.

    The flag bounds are the quantiles widened by `range_slack` times their spread.
    """
    out = {}
    q = config.range_quantile
    for f in _numeric_features(training):
        col = training[f.name].to_numpy(np.float64)
        lo, hi = np.quantile(col, [q, 1.0 - q]) if q > 0 else (col.min(), col.max())
        pad = config.range_slack * (hi - lo)
        out[f.name] = (float(lo - pad), float(hi + pad), float(lo), float(hi))
    return out


def _out_of_range(ctx: _Context) -> Hits:
    if not ctx.ranges:
        raise _Skip("no training data to compare with")
    features = [f for f in _numeric_features(ctx.table) if f.name in ctx.ranges]

    q = ctx.config.range_quantile
    share = f"{(1 - q) * 100:g}%"

    def bad(f: S.Feature, v: np.ndarray) -> np.ndarray:
        lo, hi, _, _ = ctx.ranges[f.name]
        return (v < lo) | (v > hi)

    def describe(f: S.Feature, v: float) -> str:
        lo, hi, qlo, qhi = ctx.ranges[f.name]
        if v > hi:
            where = f"{share} of training applicants have at most {f.describe(qhi)}; flagged above {f.describe(hi)}"
            return f"{f.label} {f.describe(v)} is far above the training data ({where})"
        where = f"{share} of training applicants have at least {f.describe(qlo)}; flagged below {f.describe(lo)}"
        return f"{f.label} {f.describe(v)} is far below the training data ({where})"

    return _per_feature(ctx, features, bad, describe)


def _parse_cf(cell: object) -> dict | None:
    if cell is None or (isinstance(cell, float) and np.isnan(cell)) or cell == "":
        return None
    return json.loads(cell) if isinstance(cell, str) else dict(cell)


def _no_counterfactual(ctx: _Context) -> Hits:
    cells = ctx.column("counterfactual")
    declined = ctx.declined
    found = np.array([bool((_parse_cf(c) or {}).get("found")) for c in cells], dtype=bool)
    mask = declined & ~found
    changeable = ", ".join(f.label.lower() for f in S.FEATURES if f.mutable)  # the schema says what can change
    reasons = [
        f"no plausible change ({changeable}, within the schema's rules) was found that would turn this decline "
        "into an approval"
    ] * int(mask.sum())
    return mask, reasons, np.full(int(mask.sum()), np.nan)


def _no_reasons(ctx: _Context) -> Hits:
    cells = ctx.column("reasons")

    def empty(c: object) -> bool:
        if c is None or (isinstance(c, float) and np.isnan(c)) or c == "":
            return True
        return len(json.loads(c) if isinstance(c, str) else c) == 0

    mask = ctx.declined & np.array([empty(c) for c in cells], dtype=bool)
    reasons = ["declined, but no principal reasons were produced: the adverse-action notice cannot state them"] * int(
        mask.sum()
    )
    return mask, reasons, np.full(int(mask.sum()), np.nan)


def _clean_history(ctx: _Context) -> Hits:
    pay = [f.name for f in S.FEATURES if f.kind == "repayment_status" and f.name in ctx.table.columns]
    if not pay:
        raise _Skip("no repayment status columns in the table")
    worst = ctx.table[pay].to_numpy(np.float64).max(axis=1)
    mask = ctx.declined & (worst <= 0)
    p = ctx.table["probability"].to_numpy(np.float64)[mask]
    reasons = [
        f"declined (probability of default {_pct(v)}) although no repayment in the last {len(pay)} months was late: "
        "the decision rests on amounts, limit or personal data"
        for v in p
    ]
    return mask, reasons, p


def _protected_top(ctx: _Context) -> Hits:
    explained = columns_of(ctx.table, SHAP, S.FEATURE_NAMES)
    if not explained:
        raise _Skip(MSG_SKIPPED_COLUMN.format(column=explanation_column(SHAP, "<FEATURE>")))
    shap_cols, names = list(explained), list(explained.values())
    protected = np.array([S.BY_NAME[n].protected for n in names])
    if not protected.any():
        raise _Skip("no protected attribute is a model input")
    values = ctx.table[shap_cols].to_numpy(np.float64)
    k = min(int(ctx.config.protected_top_k), len(names))
    order = np.argsort(-np.abs(np.nan_to_num(values)), axis=1)[:, :k]
    top_vals = np.take_along_axis(values, order, axis=1)
    hit = protected[order] & (top_vals > 0)
    mask = ctx.declined & hit.any(axis=1)
    rank = "the largest factor" if k == 1 else f"among the {k} largest factors"
    reasons, vals = [], []
    for i in np.flatnonzero(mask):
        j = int(np.argmax(hit[i]))
        name, v = names[order[i, j]], top_vals[i, j]
        f = S.BY_NAME[name]
        row_value = ctx.table[name].iloc[i] if name in ctx.table.columns else np.nan
        reasons.append(
            f"{f.label} ({f.describe(float(row_value))}), a protected attribute, is {rank} "
            f"and raises the probability of default by {v * 100:.1f} points"
        )
        vals.append(v)
    return mask, reasons, np.asarray(vals, dtype=np.float64)


RULES: Mapping[str, Callable[[_Context], Hits]] = MappingProxyType(
    {
        FlagCode.BORDERLINE: _borderline,
        FlagCode.SURROGATE_DISAGREES: _surrogate,
        FlagCode.UNSTABLE_EXPLANATION: _unstable,
        FlagCode.UNDOCUMENTED_CODE: _undocumented,
        FlagCode.OUT_OF_RANGE: _out_of_range,
        FlagCode.NO_COUNTERFACTUAL: _no_counterfactual,
        FlagCode.NO_REASONS: _no_reasons,
        FlagCode.CLEAN_HISTORY_DECLINE: _clean_history,
        FlagCode.PROTECTED_TOP_FACTOR: _protected_top,
    }
)


def empty_flags() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.Series([], dtype="int64"),
            "code": pd.Series([], dtype="str"),
            "reason": pd.Series([], dtype="str"),
            "value": pd.Series([], dtype="float64"),
        }
    )


def compute_flags(
    table: pd.DataFrame,
    threshold: float,
    config: FlagConfig | None = None,
    training: pd.DataFrame | None = None,
) -> FlagResult:
    """Run every enabled rule over the applicants table (docs/outputs.md columns).

    `training` holds the raw features the model was trained on, for the
    "far outside the training data" rule; when omitted, the table's
    `split == "train"` rows are used, and the rule is skipped without them.
    """
    config = config or FlagConfig()
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(MSG_MISSING_COLUMNS.format(missing=missing, got=list(table.columns)))
    table = table.reset_index(drop=True)
    if training is None and "split" in table.columns:
        training = table.loc[table["split"] == "train"]
    ranges = training_ranges(training, config) if training is not None and len(training) else {}
    ctx = _Context(table, float(threshold), config, MappingProxyType(ranges))
    ids = table["id"].to_numpy(np.int64)
    parts, skipped, evaluated = [], {}, []
    for code, rule in RULES.items():
        if code not in config.enabled:
            skipped[str(code)] = MSG_DISABLED
            continue
        try:
            mask, reasons, values = rule(ctx)
        except _Skip as why:
            skipped[str(code)] = str(why)
            continue
        evaluated.append(str(code))
        parts.append(
            pd.DataFrame(
                {
                    "id": ids[mask],
                    "code": pd.Series([str(code)] * int(mask.sum()), dtype="str"),
                    "reason": pd.Series(reasons, dtype="str"),
                    "value": np.asarray(values, dtype=np.float64),
                }
            )
        )
    flags = pd.concat([empty_flags(), *parts], ignore_index=True) if parts else empty_flags()
    order = {str(c): i for i, c in enumerate(FlagCode)}
    flags = flags.assign(_o=flags["code"].map(order)).sort_values(["id", "_o"], kind="stable").drop(columns="_o")
    return FlagResult(
        table=flags.reset_index(drop=True).astype({"id": "int64", "value": "float64"}),
        skipped=MappingProxyType(skipped),
        evaluated=tuple(evaluated),
        config=config,
        threshold=float(threshold),
        n_applicants=len(table),
        ranges=MappingProxyType(ranges),
    )
