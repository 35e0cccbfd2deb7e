"""Flags: which applicants need a human look, and why.

A *flag* is one (applicant, rule) pair: a stable `code`, a plain-language
`reason` an analyst can act on, and the `value` that tripped the rule (the
distance to the threshold, the stability score, the number of unusual
inputs...). An applicant can carry several flags; an applicant with none is
not queued for review. Every threshold a rule uses lives in `FlagConfig`, so
it is configuration recorded with the run, not a constant hidden in code.

A rule that needs a column the run did not compute (SHAP values, the
counterfactual, the stability score) is *skipped*, and `flag_summary` says
which rules were skipped and why, so "0 flagged" is never confused with
"not checked".

    result = compute_flags(table, threshold, FlagConfig(), training=train_rows)
    write_parquet(run_dir / "flags.parquet", result.table)
    audit["flags"] = flag_summary(result)
"""

from ._rules import (
    FLAG_COLUMNS,
    FLAG_LABELS,
    MSG_BAD_CONFIG,
    MSG_MISSING_COLUMNS,
    FlagCode,
    FlagConfig,
    FlagResult,
    compute_flags,
    training_ranges,
)
from ._summary import flag_summary

__all__ = [
    "FLAG_COLUMNS",
    "FLAG_LABELS",
    "MSG_BAD_CONFIG",
    "MSG_MISSING_COLUMNS",
    "FlagCode",
    "FlagConfig",
    "FlagResult",
    "compute_flags",
    "training_ranges",
    "flag_summary",
]
