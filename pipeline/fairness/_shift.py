"""Fairness under demographic shift: the same audit on the held-out rows reweighted towards a group.

A portfolio's mix changes (more young applicants, fewer married ones), and a
verdict that holds today may not hold then. A check `ATTRIBUTE:GROUP+d`
moves group g's share of the held-out rows from p to p + d by importance
weights, leaving everything else about the population as observed:

    w_i = (p + d) / p          for applicants in g
    w_i = (1 - p - d) / (1 - p) for everyone else

so the other groups of the attribute keep their shares relative to each
other, and within every group of the attribute applicants keep their mix of
everything else (P(x | group) unchanged: prior shift on the attribute). The
weights average 1. The new share must stay strictly between 0 and 1.

Every audited attribute and intersection is then measured again on the
weighted rows by the audit's own code (`group_disparities` with
`row_weights`): the same rates, disparities, intervals and verdict rules.
A consequence worth stating: the weights are constant inside each group of
the shifted attribute, so that attribute's own rates, and those of every
intersection that contains it, do not change (`unchanged_by_construction`).
What moves is the overall population and every other attribute, through
how the attributes go together (more women means more of whichever age
band and education women more often have, with their decline rates).

Intervals: weighted stratified bootstrap. Each replicate resamples rows
within every group, as the unshifted audit does (same seed, same draws, so
the figures before and after are paired), and weighs each drawn row by its
importance weight; gaps and lowest ratios take the audit's simultaneous
band, which always contains its estimate. Counts and the minimum group sizes
stay on the rows observed: weighting adds no evidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..constants import CI_LEVEL
from ..run_record import Interval, ShiftAttribute, ShiftCase, ShiftFigure, ShiftSection
from ..shift_spec import ALL, DEFAULT_SHIFT, ShiftSpec, parse_shift
from ._by_group import STATUS_OK, AttributeResult, group_disparities
from ._groups import AuditedAttribute, audited_attributes, group_labels
from ._verdicts import CRITERIA, is_sufficient

NAMED, LEAST_FAVOURED = "named", "least favoured"
OK, SKIPPED = "ok", "skipped"
MSG_ATTRIBUTE = "shift check {text!r}: no audited attribute {name!r}; expected one of {have}"
MSG_GROUP = "shift check {text!r}: {attribute} has no group {group!r}; its groups are {have}"
MSG_SHARE = ("shift check {text!r}: {group!r} is {share:.1%} of the {rows:,} held-out applicants; {delta:+g} would "
             "make it {after:.1%}, and a share must stay strictly between 0% and 100%")
MSG_SHARE_ANY = ("shift check {text!r}: the least-favoured group of {attribute} is chosen once the model is audited, "
                 "and {group!r} ({share:.1%} of the held-out applicants) could be it: {delta:+g} would make it "
                 "{after:.1%}; name a group ({attribute}:GROUP{delta:+g}) or use a smaller change")
MSG_UNJUDGED = ("shift check {text!r}: fewer than two groups of {attribute} have enough data to be judged, so it has "
                "no least-favoured group; name a group ({attribute}:GROUP{delta:+g})")
MSG_SKIPPED_SHARE = "{group!r} is {share:.1%} of the held-out applicants: {delta:+g} would take its share to {after:.1%}"
MSG_SKIPPED_UNJUDGED = "fewer than two groups have enough data to be judged: no least-favoured group"
DEFINITION = (
    "A check ATTRIBUTE:GROUP+d moves GROUP's share p of the held-out applicants to p + d by importance weights "
    "(p + d) / p inside the group and (1 - p - d) / (1 - p) outside it: the attribute's other groups keep their "
    "relative shares and every group keeps its mix of everything else. Without a group the attribute's least-"
    "favoured group is moved (lowest approval rate in the unshifted audit); 'all' moves that group of every "
    f"protected attribute by +{DEFAULT_SHIFT:g} and -{DEFAULT_SHIFT:g}. Every attribute and intersection is then "
    "audited again on the weighted rows with the same rules. The shifted attribute's own figures, and those of "
    "intersections containing it, cannot change (the weights are constant inside its groups). Degradation: how far "
    "a figure moves towards the wrong side of its limit (a gap that grows, a ratio that falls)."
)
METHOD = (
    "Weighted stratified bootstrap: every replicate resamples rows with replacement within each group (the draws of "
    "the unshifted audit, same seed) and weighs each drawn row by its importance weight; gaps and lowest ratios take "
    "the simultaneous max-|t| band of their pair statistics, which contains the estimate. Group sizes and the "
    "minimum-size rules count observed rows, not weights."
)


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _find_attribute(spec: ShiftSpec, attributes: Sequence[AuditedAttribute]) -> AuditedAttribute:
    """By its audited name ("AGE band", "SEX x AGE band") or, for one column, the column's name ("AGE")."""
    want = _fold(spec.attribute)
    for attr in attributes:
        names = {_fold(attr.name), _fold(" x ".join(attr.columns))}
        if want in names:
            return attr
    raise ValueError(MSG_ATTRIBUTE.format(text=spec.text, name=spec.attribute, have=[a.name for a in attributes]))


def _find_group(spec: ShiftSpec, attr: AuditedAttribute) -> str:
    for group in attr.groups:
        if _fold(group) == _fold(spec.group or ""):
            return group
    raise ValueError(MSG_GROUP.format(text=spec.text, attribute=attr.name, group=spec.group, have=list(attr.groups)))


def _every_attribute(attributes: Sequence[AuditedAttribute]) -> tuple[ShiftSpec, ...]:
    return tuple(ShiftSpec(a.name, None, sign * DEFAULT_SHIFT, ALL)
                 for a in attributes if a.kind == "attribute" for sign in (1, -1))


def _check_shares(spec: ShiftSpec, attr: AuditedAttribute, labels: np.ndarray, y: np.ndarray) -> None:
    """A named group, or every group that could be the least-favoured one, keeps a share in (0, 1) after the move."""
    n = len(labels)
    if spec.group is not None:
        candidates = [spec.group]
    else:
        candidates = [g for g in attr.groups if is_sufficient(int((labels == g).sum()), int(y[labels == g].sum()))]
        if len(candidates) < 2:
            raise ValueError(MSG_UNJUDGED.format(text=spec.text, attribute=attr.name, delta=spec.delta))
    for group in candidates:
        share = float((labels == group).mean()) if n else 0.0
        if not 0 < share + spec.delta < 1:
            msg = MSG_SHARE if spec.group is not None else MSG_SHARE_ANY
            raise ValueError(msg.format(text=spec.text, group=group, share=share, rows=n, delta=spec.delta,
                                        after=share + spec.delta, attribute=attr.name))


def resolve_shifts(checks: Sequence[str], X_test: pd.DataFrame, y_test) -> tuple[ShiftSpec, ...]:
    """The checks with the attribute and group spelt as the audit spells them; `all` expanded.

    A check the data cannot honour (unknown attribute or group, a share pushed out of
    (0, 1)) raises ValueError naming the check. The checks `all` expands to are not
    refused here: one that cannot apply is recorded as skipped, with the reason.
    """
    attributes = audited_attributes()
    y = np.asarray(y_test, dtype=np.int64)
    out: list[ShiftSpec] = []
    for text in checks:
        parsed = parse_shift(text)
        if parsed is None:
            out += _every_attribute(attributes)
            continue
        for spec in parsed:
            attr = _find_attribute(spec, attributes)
            group = _find_group(spec, attr) if spec.group is not None else None
            resolved = ShiftSpec(attr.name, group, spec.delta, spec.text)
            _check_shares(resolved, attr, group_labels(X_test, attr), y)
            out.append(resolved)
    return tuple(dict.fromkeys(out))  # the same check twice is measured once


def shift_weights(labels: np.ndarray, group: str, delta: float) -> np.ndarray:
    """Importance weights that move `group`'s share by `delta` (module docstring); they average 1."""
    inside = labels == group
    share = float(inside.mean())
    after = share + delta
    if not 0 < after < 1 or not 0 < share < 1:
        raise ValueError(MSG_SKIPPED_SHARE.format(group=group, share=share, delta=delta, after=after))
    return np.where(inside, after / share, (1 - after) / (1 - share))


def _interval(d: dict[str, float] | None) -> Interval:
    if d is None:
        return Interval(value=None, lo=None, hi=None)
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}
    return Interval(**clean)


def _degradation(before: Interval, after: Interval, higher_is_better: bool) -> float | None:
    if before.value is None or after.value is None:
        return None
    return before.value - after.value if higher_is_better else after.value - before.value


def _compare(before: AttributeResult, after: AttributeResult, unchanged: bool) -> ShiftAttribute:
    """Each criterion before and after; an attribute the weights cannot move keeps its figures exactly.

    (Its weighted rates equal the unweighted ones in exact arithmetic; copying them keeps
    float rounding from printing a change of -0.0000.)
    """
    after = before if unchanged else after
    figures = []
    for c in CRITERIA:
        b, a = _interval(before.disparities.get(c.disparity)), _interval(after.disparities.get(c.disparity))
        figures.append(ShiftFigure(disparity=c.disparity, label=c.label, before=b, after=a,
                                   degradation=_degradation(b, a, c.higher_is_better)))
    return ShiftAttribute(attribute=before.attribute, verdict_before=before.verdict, verdict_after=after.verdict,
                          unchanged_by_construction=unchanged, figures=tuple(figures),
                          reasons_after=after.reasons)


def _least_favoured(table: pd.DataFrame, attribute: str) -> str | None:
    """The judged group with the lowest approval rate (the group the four-fifths ratio names)."""
    rows = table[(table["attribute"] == attribute) & (table["status"] == STATUS_OK)]
    return None if len(rows) < 2 else str(rows.loc[rows["approval_rate"].idxmin(), "group"])


def _skipped(spec: ShiftSpec, group: str | None, chosen: str, reason: str, share: float | None) -> ShiftCase:
    return ShiftCase(check=spec.text, attribute=spec.attribute, group=group, chosen=chosen, delta=spec.delta,
                     share_before=share, share_after=None, effective_rows=None, status=SKIPPED, reason=reason)


def audit_shift(X_test: pd.DataFrame, y_test, decline, p_default, checks: Sequence[str], *,
                device: torch.device, seed: int = 0, n_boot: int = 1000) -> ShiftSection:
    """Every check of `checks` (module docstring) on the held-out decisions: figures before and after, intervals.

    `decline` and `p_default` are the production model's held-out decisions (0/1) and
    probabilities, as the fairness audit reads them; with the same `seed` and `n_boot` the
    figures before a shift are the fairness audit's own.
    """
    specs = resolve_shifts(checks, X_test, y_test)
    y, dec, p = np.asarray(y_test, dtype=np.int64), np.asarray(decline), np.asarray(p_default)
    attributes = audited_attributes()
    by_name = {a.name: a for a in attributes}
    cases: list[ShiftCase] = []
    if specs:
        table, base = group_disparities(X_test, y, dec, p, device=device, seed=seed, n_boot=n_boot)
    for spec in specs:
        attr = by_name[spec.attribute]
        labels = group_labels(X_test, attr)
        chosen = NAMED if spec.group is not None else LEAST_FAVOURED
        group = spec.group or _least_favoured(table, attr.name)
        if group is None:
            cases.append(_skipped(spec, None, chosen, MSG_SKIPPED_UNJUDGED, None))
            continue
        share = float((labels == group).mean())
        try:
            w = shift_weights(labels, group, spec.delta)
        except ValueError as exc:
            if spec.text != ALL:
                raise
            cases.append(_skipped(spec, group, chosen, str(exc), share))
            continue
        _, after = group_disparities(X_test, y, dec, p, device=device, seed=seed, n_boot=n_boot, row_weights=w)
        compared = tuple(_compare(b, a, set(attr.columns) <= set(by_name[b.attribute].columns))
                         for b, a in zip(base, after, strict=True))
        cases.append(ShiftCase(check=spec.text, attribute=attr.name, group=group, chosen=chosen, delta=spec.delta,
                               share_before=share, share_after=float(np.mean(w * (labels == group))),
                               effective_rows=float(w.sum() ** 2 / (w**2).sum()), status=OK, attributes=compared))
    return ShiftSection(definition=DEFINITION, method=METHOD, n_boot=int(n_boot), seed=int(seed), ci_level=CI_LEVEL,
                        rows=len(X_test), cases=tuple(cases))
