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

from ._decisions import fold
from ._store import Review

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
CSV_COLUMNS = (
    "seq",
    "applicant_id",
    "model_decision",
    "probability",
    "outcome",
    "action",
    "target",
    "status",
    "in_effect",
    "reviewer",
    "role",
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
    """Every trail entry (oldest first) with the model's probability, one row each.

    `status` says what became of the entry (in effect, awaiting approval, rejected, replaced);
    `in_effect` is the decision the entry put in effect, blank when it put none in effect
    (a pending or rejected proposal, a rejection), so counting overrides counts only real ones.
    """
    reviews = list(reviews)
    states = fold(reviews)
    probabilities = probabilities or {}
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in reviews:
        p = probabilities.get(r.applicant_id)
        state = states[r.applicant_id]
        row = {
            **r.record(),
            "seq": r.seq,
            "action": r.action or "propose",
            "target": "" if r.target is None else r.target,
            "role": r.role or "",
            "probability": "" if p is None else round(float(p), 6),
            "status": state.status.get(r.seq, ""),
            "in_effect": r.final_decision if r.seq in state.effected else "",
            "entry_hash": r.entry_hash,
        }
        writer.writerow([csv_safe(row[c]) for c in CSV_COLUMNS])
    return buf.getvalue()
