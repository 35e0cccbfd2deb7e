"""How notices and the audit report speak of the data and its outcome: the active schema's words.

A lender's own data must never read as another data set's, so no sentence
about the data is fixed text. The words come from the schema file
(`[label] outcome`, `[source] subjects`, `records`, `granted`, `description`,
`population`, `window`; read as `pipeline.schema` names), and the sentences
about what could have changed a decision are chosen by what the schema
declares: who can change a feature (`change.by`) and how (`direction`), a
monthly repayment status (`kind = "status"` with a `month`), payments with
their payment rules (`change.pays`), a value the lender sets (`by =
"lender"`). The UCI schema declares all of them and reads as it always did;
a schema with none of them reads in terms of its own features.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline import schema as S

# How a value may move, as a sentence names it (a feature's `change.direction`).
WAYS = {"any": "higher or lower", "decrease": "only lower", "increase": "only higher"}


def changeable(used: Iterable[str], by: str = "applicant") -> list[S.Feature]:
    """The model inputs among `used` that the schema lets `by` change (`change.by`), in schema order."""
    used = set(used)
    return [f for f in S.FEATURES if f.mutable and f.changed_by == by and f.name in used]


def monthly_history() -> bool:
    """Whether the schema holds a monthly repayment history (a status per month): the past months, never changed."""
    return any(f.kind == "repayment_status" and f.month for f in S.FEATURES)


def and_list(items: list[str]) -> str:
    """'a, b and c'"""
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def _search_text(used: tuple[str, ...]) -> str:
    """The report's account of what the counterfactual search may change, in the order it tries them."""
    own, lender = changeable(used), changeable(used, "lender")
    parts = []
    for f in own:
        when = "last month's " if f.month else "the "
        if f.kind == "repayment_status":
            unordered = "/".join(f"{c:g}" for c in f.unordered_codes)
            parts.append(f"{when}{f.label.lower().removesuffix(' last month')} (only to a status their payments could"
                         f" have made it" + (f"; the codes {unordered} are categories, not an order)" if unordered
                                             else ")"))
        elif f.pays is not None:
            parts.append(f"{when}payment (only larger, never more than the bill it pays plus the stated slack,"
                         " and matching the status)")
        elif f.direction in WAYS:
            parts.append(f"{f.label.lower()} ({WAYS[f.direction]})")
    text = and_list(parts)
    if lender:
        names = and_list([f"a {f.label.lower()}" for f in lender])
        text = (f"{text}, then, only where none of that is enough, " if text else "") + (
            f"{names} the applicant could request (the lender sets it; within the configured factor)")
    return text or "nothing: no model input is one the schema lets a person change"


def _never_changed() -> str:
    if monthly_history():
        return "about the latest month of the past, so it does not promise approval in future; history, bills, age and" \
               " personal details are never changed"
    return "so it does not promise approval in future; the values the schema lets nobody change are never changed"


def about_data(run) -> dict:  # noqa: ANN001 - reports._run.RunResult
    """Every sentence of the report that is about the data, the people in it and its outcome (schema words)."""
    used = run.model_features
    protected = [S.BY_NAME[n].label.lower() for n in S.PROTECTED]
    groups = [("personal details" if g == "personal" else g) for g in S.feature_groups([n for n in S.FEATURE_NAMES
                                                                                        if n in used])]
    return {
        "description": S.DATA_DESCRIPTION or f"the {S.SPEC.source.name} data",
        "granted": S.GRANTED,
        "window": S.DATA_WINDOW or "One sample",
        "population": S.POPULATION or "The people and the period of the data are not described in the schema file",
        "protected": and_list(protected) if protected else "no protected characteristic",
        "outcome": S.OUTCOME,
        "inputs": and_list(groups),
        "search": _search_text(used),
        "never_changed": _never_changed(),
        "correlated": " (such as successive bills)" if monthly_history() else "",
        "excluded": and_list([S.BY_NAME[n].label.lower() for n in S.PROTECTED if n not in used]).capitalize(),
    }
