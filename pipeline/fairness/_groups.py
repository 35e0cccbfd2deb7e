"""Which groups the audit compares: protected attributes, age bands, intersections.

Group labels are built from the schema's human meanings so the table and the
report read "female, under 30", not "2, 1". Which intersections are audited and
which attributes' undocumented codes are too rare to judge one by one (merged
into one group, and the merge stated in the audit summary) is the schema
file's [fairness] table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import schema as S

OVERALL = "overall"
OVERALL_GROUP = "all applicants"
AGE_BAND_SUFFIX = S.AGE_BAND_SUFFIX
INTERSECTION_SEP = S.INTERSECTION_SEP
GROUP_SEP = ", "

MSG_MISSING_COLUMN = "the fairness audit needs the protected column {name!r}, which the frame lacks"



def _merged(name: str) -> bool:
    """Whether an attribute's undocumented codes form one group (the schema's [fairness] merge_undocumented)."""
    return name in S.SPEC.fairness.merge_undocumented


@dataclass(frozen=True)
class AuditedAttribute:
    """One protected attribute (or intersection) with its groups in report order."""

    name: str
    columns: tuple[str, ...]
    kind: str  # "attribute" or "intersection"
    groups: tuple[str, ...]


def _is_banded(name: str) -> bool:
    return not S.BY_NAME[name].is_categorical


def _attribute_name(name: str) -> str:
    return name + AGE_BAND_SUFFIX if _is_banded(name) else name


def _undocumented_label(name: str) -> str:
    codes = ", ".join(str(c) for c in sorted(S.BY_NAME[name].extra_codes))
    return f"undocumented (codes {codes})"


def _single_groups(name: str) -> tuple[str, ...]:
    f = S.BY_NAME[name]
    if _is_banded(name):
        return tuple(label for _, _, label in S.AGE_BANDS)
    documented = tuple(f.codes.values())
    if _merged(name) and f.extra_codes:
        return (*documented, _undocumented_label(name))
    return (*documented, *f.extra_codes.values())


def _single_labels(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise ValueError(MSG_MISSING_COLUMN.format(name=name))
    values = frame[name]
    if _is_banded(name):
        return values.map(S.age_band).astype(object)
    f = S.BY_NAME[name]
    mapping = {int(c): label for c, label in f.allowed_codes.items()}
    if _merged(name):
        mapping.update({int(c): _undocumented_label(name) for c in f.extra_codes})
    return values.astype(int).map(mapping).astype(object)


def audited_attributes() -> tuple[AuditedAttribute, ...]:
    """Every protected attribute in schema order, then the intersections."""
    out = [AuditedAttribute(_attribute_name(n), (n,), "attribute", _single_groups(n)) for n in S.PROTECTED]
    for a, b in S.SPEC.fairness.intersections:
        groups = tuple(f"{ga}{GROUP_SEP}{gb}" for ga in _single_groups(a) for gb in _single_groups(b))
        out.append(AuditedAttribute(_attribute_name(a) + INTERSECTION_SEP + _attribute_name(b), (a, b), "intersection", groups))
    return tuple(out)


def group_labels(frame: pd.DataFrame, attribute: AuditedAttribute) -> np.ndarray:
    """The group label of every row of `frame` for one audited attribute."""
    parts = [_single_labels(frame, c) for c in attribute.columns]
    labels = parts[0]
    for p in parts[1:]:
        labels = labels + GROUP_SEP + p
    return labels.to_numpy(dtype=object)


def grouping_notes() -> list[str]:
    """Plain statements of how groups were formed, for the summary."""
    notes = []
    for n in S.PROTECTED:
        f = S.BY_NAME[n]
        if _is_banded(n):
            bands = "; ".join(f"{label} ({lo}-{hi})" for lo, hi, label in S.AGE_BANDS)
            notes.append(f"{f.label} is audited in bands: {bands}.")
        elif f.extra_codes and _merged(n):
            notes.append(f"{f.label}: the undocumented codes {sorted(f.extra_codes)} are merged into one group "
                         f"'{_undocumented_label(n)}' (each is too rare to judge alone).")
        elif f.extra_codes:
            notes.append(f"{f.label}: undocumented codes {sorted(f.extra_codes)} are reported as their own group(s).")
    return notes
