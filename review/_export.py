"""Reviews as CSV that a spreadsheet opens as text, never as a formula.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is
run as a formula by Excel, LibreOffice and Google Sheets (CSV injection,
OWASP); such text cells are prefixed with a single quote, which the
spreadsheet shows as plain text. Numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

from ._store import Review

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
CSV_COLUMNS = (
    "seq",
    "applicant_id",
    "model_decision",
    "probability",
    "outcome",
    "final_decision",
    "reviewer",
    "reason",
    "created",
    "entry_hash",
)


def csv_safe(value: object) -> object:
    """Text that a spreadsheet would run as a formula gets a leading quote; other values pass."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def reviews_csv(reviews: Iterable[Review], probabilities: Mapping[int, float] | None = None) -> str:
    """Every review (oldest first) with the model's probability, one row each."""
    probabilities = probabilities or {}
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in reviews:
        p = probabilities.get(r.applicant_id)
        row = {
            **r.record(),
            "seq": r.seq,
            "probability": "" if p is None else round(float(p), 6),
            "final_decision": r.final_decision,
            "entry_hash": r.entry_hash,
        }
        writer.writerow([csv_safe(row[c]) for c in CSV_COLUMNS])
    return buf.getvalue()
