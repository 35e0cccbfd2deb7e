"""What one applicant's notice says, as finished strings for the template.

The content follows the notice checklist in DESIGN.md (GDPR Art. 13-15 and
22(3), EU AI Act Art. 86, ECOA / Regulation B): the decision and its date,
who decided and how to reach them, at most four principal reasons that never
name a protected attribute, what would have changed the decision, the data
used about this applicant (and only this applicant), the logic involved,
their rights and the reference that ties the notice to the audit run.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime

from pipeline import schema as S
from pipeline.constants import MAX_REASONS
from pipeline.run_record import RunRecord

from ._env import NOT_COMPUTED, pct
from ._run import Applicant, RunResult

CHART_FACTORS = 5  # then "all other factors": the four reasons and one more, one line each
BAR_MAX_WIDTH = 76  # % of the right half of the row (the label takes the left half); the number needs the rest
_DIGITS = re.compile(r"^[0-9]{1,30}$")


def notice_filename(applicant_id: object) -> str:
    """`notice_<digits>.pdf`, or a hash of the id when it is not plain digits: never the raw id."""
    text = str(applicant_id)
    stem = text if _DIGITS.match(text) else "h" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"notice_{stem}.pdf"


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
        "model": record.model.model_dump(mode="json", exclude={"history"}),
        "data_hash": record.data.data_hash,
        "train_rows": record.split.train_rows,
    }


def _lender(run: RunResult) -> dict:
    return {k: str(v) for k, v in run.record.lender.model_dump().items()}


def _reasons(applicant: Applicant) -> list[str] | None:
    """The principal reasons as written by the explanation step, protected attributes dropped."""
    if applicant.reasons is None:
        return None
    kept = [r for r in applicant.reasons if not S.BY_NAME.get(r.get("feature"), S.BY_NAME["LIMIT_BAL"]).protected]
    return [str(r["text"]) for r in kept[:MAX_REASONS]]


def _chart(applicant: Applicant) -> dict | None:
    """Top factors of this applicant's SHAP values, the rest summed as 'all other factors'."""
    if applicant.shap is None:
        return None
    ranked = sorted(applicant.shap.items(), key=lambda kv: -abs(kv[1]))
    top, rest = ranked[:CHART_FACTORS], ranked[CHART_FACTORS:]
    rows = [(S.BY_NAME[n].label, S.BY_NAME[n].describe(applicant.features[n]), v) for n, v in top]
    if rest:
        rows.append((f"All other factors ({len(rest)})", "", sum(v for _, v in rest)))
    peak = max((abs(v) for *_, v in rows), default=0.0) or 1.0
    base = applicant.shap_base
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
        "base": pct(base) if base is not None else NOT_COMPUTED,
        "final": pct(applicant.probability),
    }


def _counterfactual(applicant: Applicant) -> dict:
    cf = applicant.counterfactual
    if not applicant.declined:
        return {"status": "not_applicable", "changes": [], "probability": ""}
    if cf is None:
        return {"status": "not_computed", "changes": [], "probability": ""}
    if not cf.get("found") or not cf.get("changes"):
        return {"status": "not_found", "changes": [], "probability": ""}
    p = cf.get("probability")
    return {
        "status": "found",
        "changes": [str(c["text"]) for c in cf["changes"]],
        "probability": pct(p) if isinstance(p, int | float) and not math.isnan(p) else "",
    }


# How the notice titles each feature group when it lists the applicant's data.
DATA_GROUP_TITLES = {
    "credit limit": "Credit limit",
    "personal": "About you",
    "repayment history": "Repayment status, most recent month first",
    "bill amounts": "Bill statements",
    "payment amounts": "Amounts paid",
}


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
        groups.append({"title": DATA_GROUP_TITLES.get(group, group.capitalize()), "items": items})
    return groups


def _categories(used: set[str]) -> str:
    """'credit limit; personal details (education, age); repayment history (6 months); ...'"""
    parts = []
    for group, names in S.feature_groups(S.FEATURE_NAMES).items():
        kept = [n for n in names if n in used]
        if not kept:
            continue
        if len(kept) == 1 and S.BY_NAME[kept[0]].label.lower() == group:
            parts.append(group)
        elif group == "personal":
            parts.append("personal details (" + ", ".join(S.BY_NAME[n].label.lower() for n in kept) + ")")
        else:
            parts.append(f"{group} ({len(kept)} months)")
    return "; ".join(parts)


def _logic(run: RunResult) -> dict:
    model = run.record.model
    used = set(run.model_features)
    excluded = [S.BY_NAME[n].label.lower() for n in S.FEATURE_NAMES if n not in used]
    protected_used = [S.BY_NAME[n].label.lower() for n in S.PROTECTED if n in used]
    return {
        "categories": _categories(used),
        "excluded": " and ".join(excluded) if excluded else "",
        "protected_used": " and ".join(protected_used),
        "threshold": pct(model.threshold),
        "policy_text": model.policy_text,
        "train_rows": f"{run.record.split.train_rows:,}",
        "has_shap": run.has_shap,
    }


def letter_view(run: RunResult, applicant_id: object) -> dict:
    """Page 1: everything the notice says about this applicant, already worded."""
    applicant = run.applicant(applicant_id)
    return {
        "lender": _lender(run),
        "date": long_date(run.record.created),
        "reference": notice_reference(run, applicant.id),
        "declined": applicant.declined,
        "probability": pct(applicant.probability),
        "threshold": pct(run.record.model.threshold),
        "reasons": _reasons(applicant),
        "chart": _chart(applicant),
        "counterfactual": _counterfactual(applicant),
        "data_groups": _data_groups(run, applicant),
    }


def general_view(run: RunResult) -> dict:
    """Page 2: the same for every applicant of the run (logic, rights, run reference)."""
    record = run.record
    return {
        "lender": _lender(run),
        "date": long_date(record.created),
        "logic": _logic(run),
        "run_id": run.run_id,
        "model_hash": record.model.model_hash[:12],
        "data_hash": record.data.data_hash[:12],
    }
