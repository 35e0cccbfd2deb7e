"""The shipped UCI schema file reproduces, value for value, what pipeline/schema.py declared in code.

`tests/snapshots/uci_schema.json` was written from pipeline/schema.py *before*
it started reading pipeline/schemas/uci_credit_card.toml (run this module as a
script to write it again): the repr of every public name, so a type (1 vs 1.0),
an order (codes, groups, improvements) or a word that moved would show here,
and every downstream output (loading, reasons, counterfactuals, notices,
fairness) stays what it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import schema as S

SNAPSHOT = Path(__file__).parent / "snapshots" / "uci_schema.json"
PUBLIC = ("ID_COLUMN", "LABEL_COLUMN", "LABEL_TEXT", "PAY_STATUS_MEANINGS", "FEATURES", "FEATURE_NAMES", "BY_NAME",
          "PROTECTED", "EXCLUDED_FROM_MODEL", "DEFAULT_MODEL_FEATURES", "AGE_BANDS", "PAY_STATUS_CATEGORIES",
          "PAID_IN_FULL", "PAID_MINIMUM", "AGE_BAND_SUFFIX", "INTERSECTION_SEP")
# A few values rendered through each feature's methods: describe() is what reports and notices print.
_SAMPLES = (-2, -1, 0, 1, 2, 5, 9, 18, 35, 1234.5, 50_000, -300)


def snapshot() -> dict[str, str]:
    """repr of every public value, and of what each feature's properties and methods give."""
    out = {name: repr(getattr(S, name)) for name in PUBLIC}
    out["feature_groups()"] = repr(S.feature_groups())
    out["feature_groups(DEFAULT_MODEL_FEATURES)"] = repr(S.feature_groups(S.DEFAULT_MODEL_FEATURES))
    for f in S.FEATURES:
        out[f"{f.name}.mutable"] = repr(f.mutable)
        out[f"{f.name}.is_categorical"] = repr(f.is_categorical)
        out[f"{f.name}.allowed_codes"] = repr(f.allowed_codes)
        out[f"{f.name}.describe"] = repr([f.describe(v) for v in _SAMPLES])
        if f.pays is not None:
            out[f"{f.name}.pays.cap"] = repr([f.pays.cap(b) for b in (-500, 0, 12_345)])
    for name in ("SEX", "AGE band", "SEX x AGE band", "SEX x EDUCATION", "unknown"):
        out[f"attribute_label({name})"] = S.attribute_label(name)
    out["age_band"] = repr([S.age_band(a) for a in (18, 29, 30, 39, 40, 49, 50, 120)])
    return out


@pytest.mark.parametrize("name", list(json.loads(SNAPSHOT.read_text())))
def test_the_default_schema_file_gives_todays_values(name):
    expected = json.loads(SNAPSHOT.read_text())[name]
    assert snapshot()[name] == expected


def test_the_snapshot_covers_every_public_value():
    assert set(json.loads(SNAPSHOT.read_text())) == set(snapshot())


def test_notice_wording_of_groups_is_what_the_notices_held_in_code():
    """reports/_notice_view.py held these two tables until they moved into the schema file's [groups]."""
    assert S.REASON_SUBJECTS == {"credit limit": "Your credit limit", "bill amounts": "Your bill",
                                 "payment amounts": "Your payment"}
    assert S.GROUP_TITLES == {"credit limit": "Credit limit", "personal": "About you",
                              "repayment history": "Repayment status, most recent month first",
                              "bill amounts": "Bill statements", "payment amounts": "Amounts paid"}


if __name__ == "__main__":
    SNAPSHOT.write_text(json.dumps(snapshot(), indent=1) + "\n")
