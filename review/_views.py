"""View builders of the applicant page: the finished strings and numbers it prints (templates hold no logic).

The queue's views are in _queue.py, the team page's in _team.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from pipeline import schema as S
from pipeline.columns import LIME, SHAP, SHAP_BASE

from ._run import NOT_COMPUTED, ReviewRun, json_cell
from ._store import OUTCOME_LABELS, Outcome, Review

CHART_TOP = 10
CHART_WIDTH = 320


def pct(p: float | None) -> str:
    return NOT_COMPUTED if p is None or (isinstance(p, float) and math.isnan(p)) else f"{p * 100:.1f}%"


def bar_chart(values: Mapping[str, float], row: pd.Series, unit: str) -> dict:
    """Top factors by absolute size as SVG bar geometry around a centre line; the rest summed."""
    ranked = sorted(((n, v) for n, v in values.items() if not math.isnan(v)), key=lambda kv: -abs(kv[1]))
    top, rest = ranked[:CHART_TOP], ranked[CHART_TOP:]
    items = [(S.BY_NAME[n].label, S.BY_NAME[n].describe(float(row[n])) if n in row.index else "", v) for n, v in top]
    if rest:
        items.append((f"All other factors ({len(rest)})", "", float(sum(v for _, v in rest))))
    peak = max((abs(v) for *_, v in items), default=0.0) or 1.0
    half = CHART_WIDTH / 2
    bars = []
    for label, value_text, v in items:
        w = abs(v) / peak * (half - 4)
        bars.append(
            {
                "label": label,
                "value": value_text,
                "x": f"{half if v >= 0 else half - w:.1f}",
                "w": f"{w:.1f}",
                "raises": v > 0,
                "direction": "up" if v > 0 else ("down" if v < 0 else "flat"),
                "amount": f"{v * 100:+.1f} pts" if unit == "points" else f"{v:+.3f}",
            }
        )
    return {"bars": bars, "width": CHART_WIDTH, "centre": f"{half:.1f}"}


def _chart(run: ReviewRun, row: pd.Series, method: str, unit: str) -> dict | None:
    columns = run.explained(method)
    if not columns:
        return None
    values = {name: float(row[column]) for column, name in columns.items()}
    if all(math.isnan(v) for v in values.values()):
        return {"bars": [], "empty": True}
    return bar_chart(values, row, unit)


def _counterfactual(run: ReviewRun, row: pd.Series) -> dict:
    if not run.has("counterfactual"):
        return {"status": "not_computed"}
    cf = json_cell(row["counterfactual"])
    if row["decision"] != "decline" and cf is None:
        return {"status": "not_applicable"}
    if cf is None:
        return {"status": "not_computed_here"}
    if not cf.get("found"):
        return {"status": "not_found"}
    p = cf.get("probability")
    return {
        "status": "found",
        "changes": [
            str(c.get("text") or f"{c.get('label')}: {c.get('from')} -> {c.get('to')}") for c in cf.get("changes", [])
        ],
        "probability": pct(float(p)) if isinstance(p, int | float) else "",
    }


def _reasons(run: ReviewRun, row: pd.Series) -> list[str] | None:
    if not run.has("reasons"):
        return None
    reasons = json_cell(row["reasons"])
    return [str(r.get("text", r)) if isinstance(r, dict) else str(r) for r in (reasons or [])]


def _surrogate(run: ReviewRun, row: pd.Series) -> dict:
    decision = str(row.get("surrogate_decision", "")) if run.has("surrogate_decision") else None
    path = run.surrogate_path(int(row["id"]))
    steps = [
        {"condition": str(s.get("condition", "")), "value": str(s.get("value_text", ""))} for s in (path or [])
    ] or None
    return {
        "decision": decision,
        "agrees": decision == row["decision"] if decision else None,
        "path": steps,
        "fidelity": pct(run.record.surrogate.fidelity_test),
    }


def _data_rows(run: ReviewRun, row: pd.Series) -> list[dict]:
    used = set(run.model_features)
    ranges = run.record.data.ranges
    out = []
    for f in S.FEATURES:
        if f.name not in row.index:
            continue
        r = ranges.get(f.name)
        out.append(
            {
                "name": f.name,
                "label": f.label,
                "value": f.describe(float(row[f.name])),
                "used": f.name in used,
                "protected": f.protected,
                "range": "" if r is None or f.is_categorical else f"{f.describe(r.min)} to {f.describe(r.max)}",
            }
        )
    return out


def outcome_choices(decision: str) -> list[dict]:
    """The outcomes that make sense for this model decision (no 'override to approve' of an approval)."""
    skip = Outcome.OVERRIDE_APPROVE if decision == "approve" else Outcome.OVERRIDE_DECLINE
    return [{"value": str(o), "label": OUTCOME_LABELS[o]} for o in Outcome if o != skip]


def applicant_view(run: ReviewRun, applicant_id: int, history: list[Review]) -> dict:
    row = run.row(applicant_id)
    flags = run.flags_of(applicant_id)
    p = float(row["probability"])
    stability = float(row["stability"]) if run.has("stability") and not pd.isna(row["stability"]) else None
    lime = _chart(run, row, LIME, "weight")
    reissued = any(r.notice for r in history)
    return {
        "run_id": run.run_id,
        "id": int(applicant_id),
        "decision": str(row["decision"]),
        "probability": pct(p),
        "threshold": pct(run.threshold),
        "margin": f"{abs(p - run.threshold) * 100:.1f} points {'above' if p >= run.threshold else 'below'}",
        "split": str(row.get("split", "")),
        "flags": [{"code": f.code, "label": f.label, "reason": f.reason} for f in flags.itertuples(index=False)],
        "reasons": _reasons(run, row),
        "shap": _chart(run, row, SHAP, "points"),
        "shap_base": pct(float(row[SHAP_BASE])) if run.has(SHAP_BASE) else None,
        "lime": lime,
        "surrogate": _surrogate(run, row),
        "counterfactual": _counterfactual(run, row),
        "stability": None if stability is None else f"{stability:.0%}",
        "data": _data_rows(run, row),
        "notice_pdf": reissued or run.notice_pdf(applicant_id) is not None,  # re-issued after review: that version
        "notice_html": run.has_notice_html and (reissued or row["decision"] == "decline"),
        "history": history,
        "outcomes": outcome_choices(str(row["decision"])),
        "not_computed": NOT_COMPUTED,
    }
