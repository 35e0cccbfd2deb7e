"""What one applicant's notice says, as finished strings for the template.

The content follows the notice checklist in DESIGN.md (GDPR Art. 13-15 and
22(3), EU AI Act Art. 86, ECOA / Regulation B): the decision and its date,
who decided and how to reach them, the principal reasons exactly as the
explanation step ranked them (at most four, none withheld) each with why it
counts, what would have changed the decision (in the past tense; the
lender's limit as a limit the applicant could ask for), the data used about
this applicant (and only this applicant), the logic involved, the rights of
the configured regime (`[audit.notice] regime`: "eu" or "us") and the
reference that ties the notice to the audit run. A declined and an approved
applicant read different text on both pages. A notice re-issued after a
person's review (`ReviewedDecision`, review/_reissue.py) states the outcome,
that a person reviewed it and when, and how to contest it; it names the
reviewer by role (`REVIEWER_ROLE`), never by name. Probabilities are printed so
that different values never look alike (`_env.distinct_pcts`). Every
sentence is written to read at grade 8 or below (tests/test_notices.py).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pipeline import schema as S
from pipeline.constants import MAX_REASONS
from pipeline.run_record import RunRecord

from ._env import NOT_COMPUTED, distinct_pcts
from ._run import Applicant, RunResult
from ._schema_prose import WAYS, and_list, changeable, monthly_history

CHART_FACTORS = 5  # then "all other factors": the four reasons and one more, one line each
BAR_MAX_WIDTH = 76  # % of the right half of the row (the label takes the left half); the number needs the rest
_DIGITS = re.compile(r"^[0-9]{1,30}$")


def notice_filename(applicant_id: object) -> str:
    """`notice_<digits>.pdf`, or a hash of the id when it is not plain digits: never the raw id."""
    text = str(applicant_id)
    stem = text if _DIGITS.match(text) else "h" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"notice_{stem}.pdf"


def notice_version_filename(applicant_id: object, version: int) -> str:
    """`notice_<digits>_v<version>.pdf`: a notice re-issued after review (version 1 is `notice_filename`)."""
    if version < 2:
        raise ValueError(f"a re-issued notice is version 2 or later, got {version}")
    return f"{notice_filename(applicant_id).removesuffix('.pdf')}_v{int(version)}.pdf"


# Who reviewed, as the applicant reads it: a role, not a staff name. The name is typed by the
# analyst (not an identity the applicant could check), staff have their own privacy, and the
# trail keeps the name for the auditor. The applicant's contact for questions is the lender.
REVIEWER_ROLE = "a credit analyst"
DECISIONS = ("approve", "decline")


@dataclass(frozen=True)
class ReviewedDecision:
    """A person's review that took effect, as a re-issued notice states it (no staff name, no internal note).

    `reviewed` is the review's time and `replaces` the date of the version it replaces (both ISO;
    None when no notice was sent before, as for most approvals); `version` is the new notice's
    version (2 for the first re-issue).
    """

    model_decision: str
    final_decision: str
    reviewed: str
    replaces: str | None
    version: int

    def __post_init__(self) -> None:
        if self.model_decision not in DECISIONS or self.final_decision not in DECISIONS:
            raise ValueError(f"decisions are one of {DECISIONS}, got {self.model_decision!r}, {self.final_decision!r}")

    @property
    def kind(self) -> str:
        """confirmed_decline / confirmed_approve / overridden_approve / overridden_decline."""
        if self.model_decision == self.final_decision:
            return f"confirmed_{self.final_decision}"
        return f"overridden_{self.final_decision}"


def _review(review: ReviewedDecision) -> dict:
    return {"kind": review.kind, "date": long_date(review.reviewed), "role": REVIEWER_ROLE,
            "version": review.version, "replaces": long_date(review.replaces) if review.replaces else ""}


def notice_reference(run: RunResult, applicant_id: int) -> str:
    return f"{run.run_id}/{applicant_id}"


def long_date(iso: str) -> str:
    when = datetime.fromisoformat(iso)
    return f"{when.day} {when.strftime('%B %Y')}"


def notice_context(record: RunRecord) -> dict:
    """Everything of the run record that a notice shows, besides the applicant's own row.

    The notice step's cache key hashes exactly this (and the applicants' rows), so a notice is
    re-rendered whenever something it prints changes, and only then.
    """
    return {
        "run_id": record.run_id,
        "created": record.created,
        "lender": record.lender.model_dump(),
        "notice": record.notice.model_dump(),
        "explanations": None if record.explanations is None else {  # what page 2 states of them
            "background_rows": record.explanations.shap.background_rows,
            "margin": record.explanations.counterfactuals.margin,
            "max_limit_factor": record.explanations.counterfactuals.max_limit_factor,
        },
        "model": record.model.model_dump(mode="json", exclude={"history"}),
        "data_hash": record.data.data_hash,
        "train_rows": record.split.train_rows,
    }


def _lender(run: RunResult) -> dict:
    return {k: str(v) for k, v in run.record.lender.model_dump().items()}


def _contacts(run: RunResult) -> dict:
    """Postal and email contacts and the authorities of the notice settings (older runs: the lender's review contact)."""
    notice = run.record.notice
    lender = run.record.lender
    return {
        "regime": notice.regime,
        "postal": notice.postal_contact or f"{lender.name}, {lender.address}",
        "email": notice.email_contact or lender.review_contact,
        "authority": notice.data_protection_authority,
        "agency": notice.federal_agency,
        "consumer_report_agency": notice.consumer_report_agency,
    }


def _probabilities(run: RunResult, applicant: Applicant) -> dict[str, str]:
    """Every probability page 1 prints, with enough decimals that different values never look equal."""
    cf = applicant.counterfactual or {}
    p_cf = cf.get("probability") if cf.get("found") else None
    return distinct_pcts({
        "probability": applicant.probability,
        "threshold": run.record.model.threshold,
        "counterfactual": p_cf if isinstance(p_cf, int | float) else None,
        "base": applicant.shap_base,
    })


# Why a reason counts against the applicant, in words a person without training can read
# (measured: the notice's prose is at Flesch-Kincaid grade 8 or below, tests/test_notices.py).
_LATE = "Late payments count against you in the model."
_MINIMUM = "You paid only the minimum, not the whole bill. The model counts this against you."


def _why(feature: str, value: float, typical: float | None) -> str:
    """One or two short sentences: what about this value raised the applicant's risk."""
    f = S.BY_NAME[feature]
    if f.kind == "repayment_status":
        if int(value) >= 1:
            return _LATE
        if int(value) == S.PAID_MINIMUM:
            return _MINIMUM
    if typical is None or value == typical:
        return "The model counts this against you."
    if f.is_categorical:
        return f'Most people had "{f.describe(typical)}" here. The model counts this against you.'
    subject = S.REASON_SUBJECTS.get(f.group, f"Your {f.label.lower()}")  # the schema file's [groups]
    side = "higher" if value > typical else "lower"
    return f"{subject} is {side} than usual ({f.describe(typical)}). The model counts this against you."


def _reasons(applicant: Applicant) -> list[dict] | None:
    """The principal reasons exactly as the explanation step wrote them (none dropped), each with why it counts."""
    if applicant.reasons is None:
        return None
    out = []
    for r in applicant.reasons[:MAX_REASONS]:
        value = r.get("value", applicant.features.get(r["feature"]))
        out.append({"text": str(r["text"]),
                    "why": _why(str(r["feature"]), float(value), r.get("typical")) if value is not None else ""})
    return out


def _chart(applicant: Applicant, shown: dict[str, str]) -> dict | None:
    """Top factors of this applicant's SHAP values, the rest summed as 'all other factors'."""
    if applicant.shap is None:
        return None
    ranked = sorted(applicant.shap.items(), key=lambda kv: -abs(kv[1]))
    top, rest = ranked[:CHART_FACTORS], ranked[CHART_FACTORS:]
    rows = [(S.BY_NAME[n].label, S.BY_NAME[n].describe(applicant.features[n]), v) for n, v in top]
    if rest:
        rows.append((f"All other factors ({len(rest)})", "", sum(v for _, v in rest)))
    peak = max((abs(v) for *_, v in rows), default=0.0) or 1.0
    return {
        "rows": [
            {
                "label": label,
                "value": value,
                "points": f"{v * 100:+.1f}",
                "width": f"{min(abs(v) / peak, 1.0) * BAR_MAX_WIDTH:.1f}%",
                "raises": v > 0,
            }
            for label, value, v in rows
        ],
        "base": shown["base"] if applicant.shap_base is not None else NOT_COMPUTED,
        "final": shown["probability"],
    }


def _lender_noun(f: S.Feature) -> str:
    """How a sentence names a value the lender sets, in short: "limit" for "Credit limit"."""
    return f.label.lower().split()[-1]


def _change_text(change: Mapping, applicant: Applicant) -> str:
    """One proposed change as the applicant reads it: in the past tense, about the month it concerns."""
    f = S.BY_NAME[str(change["feature"])]
    before, after = float(change["from"]), float(change["to"])
    if change.get("by") == "lender" or f.changed_by == "lender":
        side = "higher" if after > before else "lower"
        return (f"your {f.label.lower()} had been {f.describe(after)}, not {f.describe(before)}. We set"
                f" {f.label.lower()}s, so this is not something you did. You can ask us for a {side} {_lender_noun(f)}.")
    if f.kind == "repayment_status":
        return f'in {f.month}, your repayment status had been "{f.describe(after)}", not "{f.describe(before)}".'
    if f.pays is not None and f.pays.bill in applicant.features:
        bill = S.BY_NAME[f.pays.bill]
        owed = f.pays.owed(applicant.features[f.pays.bill])
        if owed > 0 and after == owed:
            return (f"in {f.month}, you had paid your whole {bill.month} bill of {f.describe(owed)},"
                    f" not {f.describe(before)}.")
        if owed > 0:
            return (f"in {f.month}, you had paid {f.describe(after)}, not {f.describe(before)}."
                    f" Your {bill.month} bill was {f.describe(owed)}.")
    return f"your {f.label.lower()} had been {f.describe(after)}, not {f.describe(before)}."


def _counterfactual(applicant: Applicant, shown: dict[str, str], review: ReviewedDecision | None = None) -> dict:
    cf = applicant.counterfactual
    empty = {"changes": [], "probability": "", "margin": ""}
    if review is not None and review.final_decision == "approve":
        return {"status": "not_applicable", **empty}
    if review is not None and review.kind == "overridden_decline":
        return {"status": "person_declined", **empty}  # the model said yes: no change to the model's inputs applies
    if not applicant.declined:
        return {"status": "not_applicable", **empty}
    if cf is None:
        return {"status": "not_computed", **empty}
    if not cf.get("found") or not cf.get("changes"):
        return {"status": "not_found", **empty}
    margin = cf.get("margin")
    return {
        "status": "found",
        # the applicant's own actions first, then a limit they could ask for
        "changes": [_change_text(c, applicant) for c in sorted(cf["changes"], key=lambda c: c.get("by") == "lender")],
        "probability": shown["counterfactual"],
        "margin": f"{margin * 100:g}" if isinstance(margin, int | float) and not math.isnan(margin) else "",
        "closing": _closing(cf["changes"]),
    }


# After the changes that would have changed the decision: a change to a past month cannot be made now,
# a change to the application's own terms (a shorter credit, a smaller amount) can be asked for next time.
_PAST_MONTHS = "You cannot change the past. But the months ahead will count if you apply again."
_NEXT_TIME = "You can ask for a change like this if you apply again."


def _closing(changes: list) -> str:
    about_a_month = any(S.BY_NAME[str(c["feature"])].month for c in changes if str(c.get("feature")) in S.BY_NAME)
    return _PAST_MONTHS if about_a_month else _NEXT_TIME


def _own_changes(features: list[S.Feature], payment_rule: str | None = None) -> list[str]:
    """What the search changes on the applicant's side, as a notice names it.

    A repayment status and a payment (a feature with `change.pays`) are "your latest repayment status"
    and "your latest payment"; with `payment_rule` (page 1's short form) they are one item, "your
    latest repayment status and payment" followed by the rule. Any other value the applicant can
    change is named by its label and the way it may move ("only lower").
    """
    status = any(f.kind == "repayment_status" for f in features)
    pays = any(f.pays is not None for f in features)
    parts = []
    if status and pays and payment_rule is not None:
        parts.append(f"your latest repayment status and payment{payment_rule}")
    else:
        parts += ["your latest repayment status"] if status else []
        parts += [f"your latest payment{payment_rule or ''}"] if pays else []
    parts += [f"the {f.label.lower()} ({WAYS[f.direction]})" for f in features
              if f.kind != "repayment_status" and f.pays is None and f.direction in WAYS]
    return parts


def _tried(run: RunResult) -> str:
    """Page 1, when no change was found: what the search tried, the applicant's own changes first."""
    own = and_list(_own_changes(changeable(run.model_features), ", never more than you owed"))
    lender = and_list([f"your {f.label.lower()}" for f in changeable(run.model_features, "lender")])
    if own and lender:
        return f"We tried {own}, and then {lender}."
    if own or lender:
        return f"We tried {own or lender}."
    return "Nothing the model uses is something you could change."


def _fixed() -> str:
    """Page 1: what the search never changes."""
    return "Your earlier history cannot change." if monthly_history() else "The other facts about you cannot change."


# How the notice titles each feature group when it lists the applicant's data (the schema file's [groups]).


def _data_groups(run: RunResult, applicant: Applicant) -> list[dict]:
    """This applicant's raw values, one line per feature group (months by name), in schema order.

    A feature the model does not use is marked `*` (explained under the list).
    Grouped lines rather than a 24-row table: as readable, and a quarter of the
    boxes WeasyPrint has to lay out for every notice.
    """
    used = set(run.model_features)
    groups = []
    for group, names in S.feature_groups([n for n in S.FEATURE_NAMES if n in applicant.features]).items():
        items = []
        for name in names:
            f = S.BY_NAME[name]
            label = f.month or ("" if len(names) == 1 else f.label)
            marked = label + ("*" if name not in used else "")
            value = f.describe(applicant.features[name])
            items.append(f"{marked}: {value}" if marked else value)
        groups.append({"title": S.GROUP_TITLES.get(group, group.capitalize()), "items": items})
    return groups


def _categories(used: set[str]) -> str:
    """'credit limit; personal details (education, age); repayment history (6 months); ...'"""
    parts = []
    for group, names in S.feature_groups(S.FEATURE_NAMES).items():
        kept = [n for n in names if n in used]
        if not kept:
            continue
        months = {S.BY_NAME[n].month for n in kept}
        if len(kept) == 1 and S.BY_NAME[kept[0]].label.lower() == group:
            parts.append(group)
        elif group == "personal":
            parts.append("personal details (" + ", ".join(S.BY_NAME[n].label.lower() for n in kept) + ")")
        elif "" not in months and len(months) == len(kept):  # a monthly series: one value per month
            parts.append(f"{group} ({len(kept)} months)")
        else:
            parts.append(f"{group} ({len(kept)} {'fact' if len(kept) == 1 else 'facts'})")
    return "; ".join(parts)


def _or(items: list[str]) -> str:
    """'sex, marital status or age'"""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _between(factor: float, noun: str = "limit") -> str:
    """'between half and twice your limit'"""
    if factor == 2.0:
        return f"between half and twice your {noun}"
    return f"between 1/{factor:g} and {factor:g} times your {noun}"


def _search_rules(run: RunResult) -> dict:
    """What page 2 states about the counterfactual search: what it changes (the schema's `change.by`), the
    recorded margin and limit factor, the schema's payment slack.

    `controls`: the applicant's own changes; `status_example`: a status that needs a matching payment
    (schemas with payment rules); `lender`/`lender_noun`: a value the lender sets, tried last.
    """
    explanations = run.record.explanations
    cf = explanations.counterfactuals if explanations else None
    margin = cf.margin if cf and cf.margin is not None else None
    factor = cf.max_limit_factor if cf and cf.max_limit_factor is not None else None
    payment = next((f for f in S.FEATURES if f.pays is not None and f.name in run.model_features), None)
    own = changeable(run.model_features)
    lender = changeable(run.model_features, "lender")
    noun = _lender_noun(lender[0]) if lender else ""
    status = payment is not None and any(f.kind == "repayment_status" for f in own)
    return {
        "margin": f"{margin * 100:g}" if margin is not None else "",
        "factor": _between(factor, noun) if factor and lender else "",
        "slack": (f"{payment.pays.slack_fraction:.0%} plus {payment.describe(payment.pays.slack_amount)}"
                  if payment is not None and payment.pays is not None else ""),
        "controls": and_list(_own_changes(own)),
        "status_example": S.PAY_STATUS_MEANINGS.get(S.PAID_IN_FULL, "") if status and S.PAID_IN_FULL is not None else "",
        "lender": lender[0].label.lower() if lender else "",
        "lender_noun": noun,
        "fixed": ("Your earlier history, your age and your other personal facts" if monthly_history()
                  else "The other facts about you"),
    }


# What a notice calls each kind of model (a lender's model card type; None: the audit's own MLP).
MODEL_NOUNS = {None: "a type of computer program called a neural network",
               "credit-audit-mlp": "a type of computer program called a neural network",
               "xgboost": "a type of computer program built from many decision trees",
               "lightgbm": "a type of computer program built from many decision trees",
               "skops": "a type of computer program", "onnx": "a type of computer program",
               "torchscript": "a type of computer program"}


def _model_story(run: RunResult) -> dict:
    """What kind of model decided and what it learned from: a lender's model was not trained by the audit,
    so its notice does not claim to know on how many people it was trained."""
    card = run.record.model.card
    kind = str(card["type"]) if card else None
    return {"model_noun": MODEL_NOUNS.get(kind, "a type of computer program"),
            "train_rows": None if card else f"{run.record.split.train_rows:,}"}


def _logic(run: RunResult) -> dict:
    used = set(run.model_features)
    excluded = [S.BY_NAME[n].label.lower() for n in S.FEATURE_NAMES if n not in used]
    protected_used = [S.BY_NAME[n].label.lower() for n in S.PROTECTED if n in used]
    explanations = run.record.explanations
    return {
        "categories": _categories(used),
        "excluded": _or(excluded),
        "protected_used": " and ".join(protected_used),
        **_model_story(run),
        "records": S.RECORDS,
        "subjects": S.SUBJECTS,
        "outcome": S.OUTCOME,
        "background_rows": f"{explanations.shap.background_rows:,}" if explanations else "",
        "has_shap": run.has_shap,
        **_search_rules(run),
    }


def _reasons_title(declined: bool, review: ReviewedDecision | None) -> str:
    if review is not None and review.kind == "overridden_approve":
        return "What counted against you in the model"
    if review is not None and review.kind == "overridden_decline":
        return "What raised your risk the most in the model"
    return "The main reasons for our decision" if declined else "What counted against you (not enough to decline)"


def letter_view(run: RunResult, applicant_id: object, review: ReviewedDecision | None = None) -> dict:
    """Page 1: everything the notice says about this applicant, already worded (after `review`, when given)."""
    applicant = run.applicant(applicant_id)
    if review is not None and review.model_decision != applicant.decision:
        raise ValueError(f"the review names the model's decision {review.model_decision!r}; the run has "
                         f"{applicant.decision!r} for applicant {applicant.id}")
    shown = _probabilities(run, applicant)
    declined = applicant.declined if review is None else review.final_decision == "decline"
    return {
        "lender": _lender(run),
        "contacts": _contacts(run),
        "date": long_date(run.record.created if review is None else review.reviewed),
        "reference": notice_reference(run, applicant.id),
        "declined": declined,
        "review": None if review is None else _review(review),
        "probability": shown["probability"],
        "threshold": shown["threshold"],
        "outcome": S.OUTCOME,
        "tried": _tried(run),
        "fixed": _fixed(),
        "reasons_title": _reasons_title(declined, review),
        "reasons": _reasons(applicant),
        "chart": _chart(applicant, shown),
        "counterfactual": _counterfactual(applicant, shown, review),
        "data_groups": _data_groups(run, applicant),
        # the footnote explains a `*`: only where a fact is kept that the model does not use
        "unused_shown": any(n in applicant.features and n not in run.model_features for n in S.FEATURE_NAMES),
    }


def general_view(run: RunResult, declined: bool = True, review: ReviewedDecision | None = None) -> dict:
    """Page 2: the same for every applicant of the run with this decision (logic, rights, run reference)."""
    record = run.record
    return {
        "lender": _lender(run),
        "contacts": _contacts(run),
        "declined": declined,
        "review": None if review is None else _review(review),
        "date": long_date(record.created if review is None else review.reviewed),
        "logic": _logic(run),
        "run_id": run.run_id,
        "model_hash": record.model.model_hash[:12],
        "data_hash": record.data.data_hash[:12],
    }
