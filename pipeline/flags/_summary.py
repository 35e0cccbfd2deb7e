"""The flag counts that go into audit.json["flags"] and the global report."""

from __future__ import annotations

from ._rules import FLAG_LABELS, FlagResult


def flag_summary(result: FlagResult) -> dict:
    """Counts by flag code (every evaluated rule, zeros included), applicants flagged, rules skipped and why.

    Layout (audit.json "flags"):
    {"threshold", "applicants", "applicants_flagged", "total",
     "counts": {code: n}, "labels": {code: text}, "skipped": {code: why}, "config": {...}}
    """
    table = result.table
    counts = table["code"].value_counts()
    return {
        "threshold": result.threshold,
        "applicants": int(result.n_applicants),
        "applicants_flagged": int(table["id"].nunique()),
        "total": int(len(table)),
        "counts": {code: int(counts.get(code, 0)) for code in result.evaluated},
        "labels": {str(code): text for code, text in FLAG_LABELS.items()},
        "skipped": dict(result.skipped),
        "config": result.config.to_dict(),
    }
