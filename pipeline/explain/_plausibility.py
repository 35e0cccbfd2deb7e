"""Plausibility: whether a proposed change is one a person could really make, by the schema's declared rules.

A counterfactual is honest only if the changed applicant could exist and the
change could be made (DESIGN.md, "What trust means here"). The rules are the
schema file's data (`pipeline/schemas/uci_credit_card.toml`, each feature's
`[features.change]` and the file's `[payment_rules]`, read by
`pipeline.schema` into `Feature.changed_by`, `direction`, `improves_to`,
`max_factor`, `pays`); this module only evaluates them, the
same way for our search (which never keeps a candidate that breaks one) and
for any other tool's counterfactuals (bench/explain_counterfactual.py checks
dice-ml's with it). A rule is checked only where the counterfactual changed
one of the fields it is about: an applicant's own recorded data is never
"implausible".

`violations(before, after, features)` works on columns (torch tensors that
broadcast: the search passes (m, 1) originals against (m, G) candidates);
`plausibility_violations(before, after)` is the same over two data frames,
one boolean column per rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .. import schema as S

# Rule name -> what it forbids, in words (bench/explain_counterfactual.py, docs/outputs.md).
RULES: dict[str, str] = {
    "unchangeable": "changes a value nobody can change going forward (history, bills, age, personal details)",
    "direction": "moves an amount against its declared direction (a payment made smaller)",
    "status_order": "changes a repayment status to one it cannot become by the applicant's own payments"
    " (codes -2/-1/0 are categories, not an order: e.g. 'paid in full' -> 'no balance to pay')",
    "out_of_range": "a value outside the schema's range or codes",
    "factor": "moves a value by more than its declared factor (a credit limit more than doubled or halved)",
    "payment_above_owed": "a payment larger than what was owed plus the stated slack",
    "status_needs_payment": "a status that says the bill was paid ('paid in full', 'no balance to pay': all of it;"
    " 'paid the minimum': the minimum share) with less paid than that",
    "late_after_paying_all": "months late although the payment covers everything that was owed",
}
MSG_FEATURES = "before and after must have the same model input columns, got {before} and {after}"


def _changed(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    return after != before


def _status_reachable(feature: S.Feature, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """after is `before` itself or one of `feature.improves_to[before]`."""
    ok = after == before
    for code, targets in feature.improves_to.items():
        if targets:
            target = torch.as_tensor(targets, dtype=after.dtype, device=after.device)
            ok = ok | ((before == code) & torch.isin(after, target))
    return ok


def _in_range(feature: S.Feature, after: torch.Tensor) -> torch.Tensor:
    if feature.is_categorical:
        codes = torch.as_tensor(sorted(feature.allowed_codes), dtype=after.dtype, device=after.device)
        return torch.isin(after, codes)
    return (after >= feature.minimum) & (after <= feature.maximum)


def _zeros_like(columns: Mapping[str, torch.Tensor]) -> torch.Tensor:
    shape = torch.broadcast_shapes(*(c.shape for c in columns.values()))
    device = next(iter(columns.values())).device
    return torch.zeros(shape, dtype=torch.bool, device=device)


def violations(
    before: Mapping[str, torch.Tensor],
    after: Mapping[str, torch.Tensor],
    max_factor: Mapping[str, float] | None = None,
) -> dict[str, torch.Tensor]:
    """{rule: bool tensor} for the columns given (model inputs by name; shapes broadcast).

    `max_factor` overrides `Feature.max_factor` per feature (the audit
    configuration's `max_limit_factor`). A relation whose fields are not all
    given (a model without BILL_AMT2, say) is not checked.
    """
    out = {rule: _zeros_like(after) for rule in RULES}
    factors = dict(max_factor or {})
    for name, new in after.items():
        f, old = S.BY_NAME[name], before[name]
        changed = _changed(old, new)
        if not f.mutable:
            out["unchangeable"] |= changed
            continue
        out["out_of_range"] |= changed & ~_in_range(f, new)
        if f.improves_to or f.kind == "repayment_status":
            out["status_order"] |= changed & ~_status_reachable(f, old, new)
        if f.direction == "increase":
            out["direction"] |= new < old
        elif f.direction == "decrease":
            out["direction"] |= new > old
        factor = factors.get(name, f.max_factor)
        if factor is not None:
            low, high = old.abs() / factor, old.abs() * factor
            out["factor"] |= changed & ((new.abs() < low) | (new.abs() > high))
    for name in after:
        pays = S.BY_NAME[name].pays
        if pays is None or pays.bill not in after or pays.status not in after:
            continue
        payment, bill, status = after[name], after[pays.bill], after[pays.status]
        touched = _changed(before[name], payment) | _changed(before[pays.status], status)
        owed = bill.clamp(min=0)
        out["payment_above_owed"] |= _changed(before[name], payment) & (
            payment > owed * (1 + pays.slack_fraction) + pays.slack_amount
        )
        share = torch.zeros_like(status, dtype=torch.float64)
        for code, part in pays.min_share.items():
            share = torch.where(status == code, torch.as_tensor(part, dtype=torch.float64), share)
        out["status_needs_payment"] |= touched & (payment < owed * share * (1 - pays.slack_fraction))
        late = ~torch.isin(
            status, torch.as_tensor(S.BY_NAME[pays.status].unordered_codes, dtype=status.dtype, device=status.device)
        )
        out["late_after_paying_all"] |= touched & late & (owed > 0) & (payment >= owed)
    return out


def any_violation(rules: Mapping[str, torch.Tensor]) -> torch.Tensor:
    result = None
    for mask in rules.values():
        result = mask if result is None else result | mask
    assert result is not None
    return result


def plausibility_violations(
    before: pd.DataFrame, after: pd.DataFrame, features: Sequence[str] | None = None,
    max_factor: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One boolean column per rule (`RULES`), one row per pair of rows (original, counterfactual).

    `features`: the columns compared (default: the schema features both frames hold).
    """
    names = list(features) if features is not None else [n for n in S.FEATURE_NAMES if n in before and n in after]
    missing = [n for n in names if n not in before.columns or n not in after.columns]
    if missing or len(before) != len(after):
        raise ValueError(MSG_FEATURES.format(before=list(before.columns), after=list(after.columns)))

    def cols(frame: pd.DataFrame) -> dict[str, torch.Tensor]:
        return {n: torch.as_tensor(frame[n].to_numpy(np.float64, copy=True)) for n in names}

    found = violations(cols(before), cols(after), max_factor)
    return pd.DataFrame({rule: mask.numpy() for rule, mask in found.items()}, index=after.index)
