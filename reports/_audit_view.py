"""What the global audit report says, as finished strings, tables and charts.

Sections follow the global checklist in DESIGN.md (SR 11-7; EU AI Act
Art. 9-15): data, model and performance, how the model decides, fairness,
flagged applicants, reproducibility, and the methods' limitations. Each
builder returns None when the run did not compute its section, and the
template then says so. Numbers are taken from the run as computed; the only
arithmetic here is counting and ranking what the run already holds (reason
frequencies, agreement of importance rankings, changes since a previous run).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping

from markupsafe import Markup

from pipeline import schema as S
from pipeline.columns import SHAP, columns_of
from pipeline.constants import STABILITY_FLAG_BELOW
from pipeline.run_record import Interval

from . import _charts as C
from ._env import DASH, NOT_COMPUTED, num, pct
from ._notice_view import long_date
from ._run import RunResult

TOP_AGREEMENT = 5
FAIRNESS_RATES = {
    "approval_rate": "Approval rate",
    "decline_rate": "Decline rate",
    "base_rate": "Observed default rate",
    "tpr": "Defaulters declined (TPR)",
    "fpr": "Good payers declined (FPR)",
    "fnr": "Defaulters approved (FNR)",
    "precision": "Precision of declines",
    "roc_auc": "ROC AUC",
    "calibration_gap": "Calibration gap",
    "brier": "Brier score",
    "surrogate_fidelity": "Surrogate fidelity",
    "adverse_impact_ratio": "Adverse impact ratio",
}
TABLE_RATES = ("approval_rate", "tpr", "fpr", "roc_auc", "surrogate_fidelity", "adverse_impact_ratio")
DISPARITY_LABELS = {
    "demographic_parity_difference": "Approval-rate gap (demographic parity difference)",
    "demographic_parity_ratio": "Lowest / highest approval rate",
    "lowest_adverse_impact_ratio": "Lowest adverse impact ratio (four-fifths rule)",
    "equalized_odds_difference": "Equalized odds difference",
    "tpr_difference": "Gap in defaulters declined (TPR)",
    "fpr_difference": "Gap in good payers declined (FPR)",
    "surrogate_fidelity_difference": "Gap in surrogate fidelity",
}
PERFORMANCE_ROWS = (
    ("roc_auc", "ROC AUC", num),
    ("accuracy", "Accuracy", pct),
    ("precision", "Precision (declined who defaulted)", pct),
    ("recall", "Recall (defaulters declined)", pct),
    ("decline_rate", "Decline rate", pct),
    ("brier", "Brier score", num),
    ("ece", "Expected calibration error", num),
)


def _label(name: str) -> str:
    return S.BY_NAME[name].label if name in S.BY_NAME else name


def _svg(fig) -> Markup:  # noqa: ANN001 - a matplotlib Figure
    """Inline SVG made by matplotlib (our own output, so it is marked safe)."""
    return Markup(C.to_svg(fig))  # noqa: S704


def _interval(d: Interval | None, fmt=num) -> str:  # noqa: ANN001
    if d is None:
        return DASH
    value, lo, hi = d.value, d.lo, d.hi
    if lo is None or hi is None or any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
        return fmt(value)
    return f"{fmt(value)} [{fmt(lo)}, {fmt(hi)}]"


# ---- page 1 and data ---------------------------------------------------------------
def _identity(run: RunResult) -> dict:
    r = run.record
    data, model, split = r.data, r.model, r.split
    return {
        "run_id": run.run_id,
        "created": r.created,
        "date": long_date(r.created),
        "seed": str(r.seed),
        "device": r.device,
        "source": data.source,
        "rows": f"{data.rows:,}",
        "header_variant": data.header_variant,
        "default_rate": pct(data.default_rate),
        "data_hash": data.data_hash,
        "model_hash": model.model_hash,
        "architecture": model.architecture,
        "threshold": pct(model.threshold, 2),
        "policy_text": model.policy_text,
        "train_rows": f"{split.train_rows:,}",
        "test_rows": f"{split.test_rows:,}",
        "test_fraction": pct(split.test_fraction, 0),
        "lender": r.lender.name,
        "findings": f"{len(data.findings):,}",
    }


def _data(run: RunResult) -> dict:
    data = run.record.data
    findings = [
        {"column": f.column, "value": num(f.value, 0), "count": f"{f.count:,}", "message": f.message}
        for f in data.findings
    ]
    ranges = data.ranges
    rows = [
        {"name": f.name, "label": f.label, "kind": f.kind.replace("_", " "),
         "min": f.describe(ranges[f.name].min) if f.name in ranges else DASH,
         "max": f.describe(ranges[f.name].max) if f.name in ranges else DASH,
         "protected": f.protected, "used": f.name in run.model_features}
        for f in S.FEATURES
    ]
    return {"findings": findings, "ranges": rows}


# ---- model and performance -------------------------------------------------------------
def _model(run: RunResult) -> dict:
    model = run.record.model
    history = [e.model_dump() for e in model.history]
    return {
        "inputs": ", ".join(_label(n) for n in run.model_features),
        "excluded": ", ".join(_label(n) for n in model.excluded_inputs) or "none",
        "preprocessing": str(model.preprocessing),
        "calibration": str(model.calibration),
        "best_epoch": str(model.best_epoch if model.best_epoch is not None else DASH),
        "training": [(str(k).replace("_", " "), str(v)) for k, v in model.training.items()],
        "history_chart": _svg(C.training_history(history, model.best_epoch)) if history else None,
    }


def _performance(run: RunResult) -> dict:
    perf = run.record.performance
    splits = [s for s in ("test", "train", "all") if s in perf]
    rows = [{"label": label, "cells": [fmt(getattr(perf[s], key)) for s in splits]}
            for key, label, fmt in PERFORMANCE_ROWS]
    test = run.record.held_out()
    cm = test.confusion
    curves = {f"{s} ({perf[s].rows:,} rows)": perf[s] for s in splits}
    return {
        "splits": splits,
        "rows": rows,
        "confusion": {k: f"{getattr(cm, k):,}" for k in ("tn", "fp", "fn", "tp")},
        "roc_chart": _svg(C.roc({k: v.roc_curve.model_dump() for k, v in curves.items()},
                                {k: v.roc_auc for k, v in curves.items()})),
        "calibration_chart": _svg(C.calibration({k: v.calibration_curve.model_dump() for k, v in curves.items()})),
        "test_auc": num(test.roc_auc),
        "test_accuracy": pct(test.accuracy),
        "test_decline_rate": pct(test.decline_rate),
        "test_rows": f"{test.rows:,}",
    }


# ---- how the model decides ----------------------------------------------------------------
def _importances(run: RunResult) -> tuple[dict[str, dict[str, float]], str]:
    """Global importance by method: from the explanation summary, or mean |SHAP| over the applicants table."""
    section = run.record.explanations
    if section is not None and section.global_importance:
        return {m: dict(vals) for m, vals in section.global_importance.items()}, "explanations"
    if run.has_shap:
        frame = run.applicants
        cols = columns_of(frame, SHAP, S.FEATURE_NAMES)
        return {"mean |SHAP|": {name: float(frame[c].abs().mean()) for c, name in cols.items()}}, "applicants"
    return {}, ""


def _agreement(by_method: Mapping[str, Mapping[str, float]], spearman: Mapping | None = None) -> list[dict]:
    """Top-5 overlap between methods, with the explanation step's rank correlation when it recorded one."""
    methods = list(by_method)
    spearman = spearman or {}
    tops = {m: [f for f, _ in sorted(v.items(), key=lambda kv: -abs(kv[1]))[:TOP_AGREEMENT]] for m, v in by_method.items()}
    rows = []
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            shared = [f for f in tops[a] if f in tops[b]]
            rho = (spearman.get(a) or {}).get(b)
            rows.append({"pair": f"{a} and {b}", "shared": f"{len(shared)} of {TOP_AGREEMENT}",
                         "spearman": num(rho, 2) if isinstance(rho, int | float) else DASH,
                         "features": ", ".join(_label(f) for f in shared) or "none"})
    return rows


def _decides(run: RunResult) -> dict:
    by_method, origin = _importances(run)
    sur, explanations = run.record.surrogate, run.record.explanations
    fairness = run.fairness
    fidelity_by_group = []
    if fairness is not None and "surrogate_fidelity" in fairness.columns:
        for _, r in fairness.iterrows():
            fidelity_by_group.append({"attribute": _label(str(r["attribute"])), "group": str(r["group"]),
                                      "value": _interval(Interval(value=r["surrogate_fidelity"],
                                                                  lo=r.get("surrogate_fidelity_lo"),
                                                                  hi=r.get("surrogate_fidelity_hi")), pct)})
    top_features = []
    if by_method:
        first = next(iter(by_method.values()))
        top_features = [_label(f) for f, _ in sorted(first.items(), key=lambda kv: -abs(kv[1]))[:TOP_AGREEMENT]]
    return {
        "importance": None if not by_method else {
            "methods": ", ".join(by_method),
            "origin": origin,
            "chart": _svg(C.importance(by_method, {f.name: f.label for f in S.FEATURES})),
            "agreement": _agreement(by_method, explanations.agreement if explanations else None),
            "top": ", ".join(top_features),
        },
        "surrogate": {
            "max_depth": str(sur.max_depth),
            "n_leaves": str(sur.n_leaves),
            "fidelity_test": pct(sur.fidelity_test),
            "fidelity_train": pct(sur.fidelity_train),
            "rules": [r.text for r in sur.rules],
            "chart": _svg(C.surrogate_tree([r.model_dump() for r in sur.rules])) if sur.rules else None,
            "by_group": fidelity_by_group,
        },
    }


# ---- fairness -----------------------------------------------------------------------------
def _cell(row, rate: str) -> dict:  # noqa: ANN001 - a fairness.parquet row
    """A rate as its value and, on a second line, its interval."""
    fmt = num if rate in ("roc_auc", "adverse_impact_ratio", "brier", "calibration_gap") else pct
    lo, hi = row.get(f"{rate}_lo"), row.get(f"{rate}_hi")
    has = lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi))
    return {"value": fmt(row[rate]), "interval": f"[{fmt(lo)}, {fmt(hi)}]" if has else ""}


def _fairness(run: RunResult) -> dict | None:
    summary, table = run.record.fairness, run.fairness
    if summary is None and table is None:
        return None
    attributes = []
    for a in summary.attributes if summary else ():
        attributes.append({
            "name": _label(a.attribute),
            "key": a.attribute,
            "verdict": a.verdict,
            "favoured": a.favoured_group or DASH,
            "insufficient": ", ".join(a.groups_insufficient) or "none",
            "disparities": [{"label": DISPARITY_LABELS.get(k, k.replace("_", " ")), "value": _interval(v)}
                            for k, v in a.disparities.items()],
            "reasons": list(a.reasons),
        })
    tables, charts = [], []
    if table is not None and len(table):
        rates = [r for r in TABLE_RATES if r in table.columns]
        for attr, rows in table.groupby("attribute", sort=False):
            body = []
            for _, r in rows.iterrows():
                body.append({
                    "group": str(r["group"]),
                    "n": f"{int(r['count']):,}",
                    "status": str(r.get("status", "")),
                    "cells": [_cell(r, c) for c in rates],
                })
            tables.append({"attribute": _label(str(attr)), "rates": [FAIRNESS_RATES[c] for c in rates], "rows": body})
            if "approval_rate_lo" in rows.columns:
                ok = rows.dropna(subset=["approval_rate", "approval_rate_lo", "approval_rate_hi"])
                if len(ok):
                    charts.append(_svg(C.interval_bars(
                        [str(g) for g in ok["group"]], list(ok["approval_rate"]), list(ok["approval_rate_lo"]),
                        list(ok["approval_rate_hi"]), f"{_label(str(attr))}: approval rate by group, with confidence interval",
                        "Approval rate", reference=None)))
    return {
        "proxies": _proxies(summary.proxies if summary else ()),
        "mitigation": _mitigation(summary.unawareness_and_mitigation if summary else None),
        "attributes": attributes,
        "tables": tables,
        "charts": charts,
        "rules": summary.rules if summary else "",
        "conventions": summary.conventions if summary else "",
        "ci_level": pct(summary.thresholds.ci_level, 0) if summary else "",
        "four_fifths": num(summary.thresholds.four_fifths, 2) if summary else "",
        "has_summary": summary is not None,
        "has_table": table is not None,
    }


def _proxies(rows) -> list[dict]:  # noqa: ANN001 - audit.json fairness.proxies
    """How well the model's inputs predict each protected attribute (a proxy check)."""
    out = []
    for p in rows:
        top = ", ".join(str(t.get("label", t.get("feature", ""))) for t in (p.get("top_features") or [])[:3])
        out.append({"attribute": _label(str(p.get("attribute", ""))), "status": str(p.get("status", "")),
                    "auc": num(p.get("roc_auc")) if p.get("roc_auc") is not None else DASH,
                    "strength": str(p.get("strength") or DASH), "top": top or DASH,
                    "model_input": "yes" if p.get("model_input") else "no"})
    return out


def _mitigation(section) -> dict | None:  # noqa: ANN001 - audit.json fairness.unawareness_and_mitigation
    """Alternative models/thresholds compared with production (analysis only)."""
    if not section or not section.get("variants"):
        return None
    variants = []
    for v in section["variants"]:
        verdicts = "; ".join(f"{_label(a)}: {d.get('verdict', DASH)}" for a, d in (v.get("disparities") or {}).items())
        variants.append({"name": str(v.get("variant", "")), "description": str(v.get("description", "")),
                         "auc": num(v.get("roc_auc")) if v.get("roc_auc") is not None else DASH,
                         "accuracy": pct(v.get("accuracy")), "approval": pct(v.get("approval_rate")),
                         "verdicts": verdicts or DASH})
    return {"note": str(section.get("note", "")), "variants": variants}


# ---- applicant-level explanations and flags ---------------------------------------------------
def _reasons(run: RunResult) -> dict | None:
    frame = run.applicants
    if "reasons" not in frame.columns:
        return None
    declined = frame[frame["decision"] == "decline"]
    counts: Counter[str] = Counter()
    with_reasons = 0
    for cell in declined["reasons"]:
        if not isinstance(cell, str) or not cell:
            continue
        reasons = json.loads(cell)
        with_reasons += bool(reasons)
        counts.update(_label(str(r.get("feature", ""))) for r in reasons)
    items = counts.most_common(15)
    cf_found = None
    if "counterfactual" in frame.columns:
        cells = [json.loads(c) for c in declined["counterfactual"] if isinstance(c, str) and c]
        cf_found = f"{sum(bool(c.get('found')) for c in cells):,} of {len(cells):,}" if cells else None
    explanations = run.record.explanations
    stability = None
    if "stability" in frame.columns and declined["stability"].notna().any():
        s = declined["stability"].dropna()
        stability = {"mean": num(float(s.mean()), 2), "low": f"{int((s < STABILITY_FLAG_BELOW).sum()):,}", "n": f"{len(s):,}",
                     "cut": num(STABILITY_FLAG_BELOW, 2)}
    return {
        "declined": f"{len(declined):,}",
        "with_reasons": f"{with_reasons:,}",
        "rows": [{"label": label, "count": f"{n:,}", "share": pct(n / max(with_reasons, 1))} for label, n in items],
        "chart": _svg(C.counts(items, "Declined applicants for whom the factor is a principal reason")) if items else None,
        "counterfactual_found": cf_found,
        "counterfactuals": _counterfactual_rules(explanations.counterfactuals) if explanations else None,
        "elderly": _elderly(explanations.elderly_rule) if explanations and explanations.elderly_rule else None,
        "stability": stability,
    }


def _counterfactual_rules(cf) -> dict | None:  # noqa: ANN001 - run_record.CounterfactualSummary
    """The found-rate and the rules every counterfactual kept, as recorded (None for a run before they were)."""
    if cf.margin is None:
        return None
    return {
        "found_rate": pct(cf.found_rate),
        "by_applicant": f"{cf.found_by_applicant:,}" if cf.found_by_applicant is not None else DASH,
        "violations": f"{cf.violations:,}" if cf.violations is not None else DASH,
        "margin": f"{cf.margin * 100:g}",
        "factor": f"{cf.max_limit_factor:g}" if cf.max_limit_factor is not None else DASH,
    }


def _elderly(rule) -> dict:  # noqa: ANN001 - run_record.ElderlyRule
    """Regulation B's elderly rule (12 CFR 1002.6(b)(2)(ii)), as the explanation step counted it."""
    return {"age_is_input": rule.age_is_input, "min_age": rule.min_age, "elderly": f"{rule.elderly:,}",
            "against": f"{rule.age_counted_against:,}", "declined_against": f"{rule.declined_age_counted_against:,}",
            "violated": rule.age_counted_against > 0}


def _flags(run: RunResult) -> dict | None:
    summary = run.record.flags
    if summary is None:
        return None
    labels = summary.labels
    items = sorted(summary.counts.items(), key=lambda kv: -kv[1])
    return {
        "applicants_flagged": f"{summary.applicants_flagged:,}",
        "total": f"{summary.total:,}",
        "rows": [{"code": k, "label": str(labels.get(k, k.replace("_", " "))), "count": f"{v:,}", "n": v} for k, v in items],
        "skipped": [{"label": str(labels.get(k, k)), "why": str(v)} for k, v in summary.skipped.items()],
        "chart": _svg(C.counts([(str(labels.get(k, k)), v) for k, v in items if v], "Flags raised")) if any(v for _, v in items) else None,
    }


# ---- reproducibility and comparison ---------------------------------------------------------
def _reproducibility(run: RunResult) -> dict:
    r = run.record
    return {
        "versions": list(r.versions.items()),
        "timings": [(k.replace("_", " "), f"{v:.1f} s") for k, v in r.timings.items()],
        "command": f"credit-audit run --data {r.data.source} --seed {r.seed} --out DIR",
    }


def _headline(run: RunResult) -> dict:
    """The figures compared between runs, as raw numbers (formatted by _changes)."""
    r = run.record
    perf = r.held_out()
    return {
        "ROC AUC (test)": (perf.roc_auc, num),
        "Accuracy (test)": (perf.accuracy, pct),
        "Decline rate (test)": (perf.decline_rate, pct),
        "Expected calibration error (test)": (perf.ece, num),
        "Decision threshold": (r.model.threshold, pct),
        "Declined applicants": (r.decisions.get("decline", 0), num),
        "Surrogate fidelity (test)": (r.surrogate.fidelity_test, pct),
        "Applicants flagged": (r.flags.applicants_flagged if r.flags else None, num),
    }


def _changes(run: RunResult, previous: RunResult | None) -> dict | None:
    if previous is None:
        return None
    now, before = _headline(run), _headline(previous)
    rows = []
    for key, (value, fmt) in now.items():
        old = before[key][0]
        delta = DASH
        if isinstance(value, int | float) and isinstance(old, int | float):
            diff = value - old
            delta = (f"{diff * 100:+.1f} pts" if fmt is pct else (f"{diff:+,.0f}" if float(value).is_integer() and float(old).is_integer()
                                                                    else f"{diff:+.3f}"))
        rows.append({"label": key, "before": fmt(old) if old is not None else DASH,
                     "now": fmt(value) if value is not None else DASH, "delta": delta})
    verdicts_now = dict(run.record.fairness.verdicts) if run.record.fairness else {}
    verdicts_before = dict(previous.record.fairness.verdicts) if previous.record.fairness else {}
    for attr in sorted(set(verdicts_now) | set(verdicts_before)):
        old, new = verdicts_before.get(attr, NOT_COMPUTED), verdicts_now.get(attr, NOT_COMPUTED)
        rows.append({"label": f"Fairness verdict: {_label(attr)}", "before": str(old), "now": str(new),
                     "delta": "changed" if old != new else "same"})
    a, b = run.record, previous.record
    drift = a.changes.data_drift if a.changes else {}
    ranked = sorted(drift.items(), key=lambda kv: -kv[1].psi)[:8]
    return {
        "previous_run": previous.run_id,
        "rows": rows,
        "drift": [{"label": _label(f), "psi": num(d.psi, 3), "reading": d.reading} for f, d in ranked],
        "same_data": a.data.data_hash == b.data.data_hash,
        "same_model": a.model.model_hash == b.model.model_hash,
    }


def _summary(run: RunResult, fairness: dict | None, flags: dict | None) -> dict:
    decisions = run.record.decisions
    return {
        "approve": f"{decisions.get('approve', 0):,}",
        "decline": f"{decisions.get('decline', 0):,}",
        "verdicts": [{"name": a["name"], "verdict": a["verdict"]} for a in (fairness or {}).get("attributes", [])],
        "flags": [f for f in (flags or {}).get("rows", []) if f["n"]][:6],
    }


def _limitations(run: RunResult) -> list[dict]:
    recorded = run.record.explanations.limitations if run.record.explanations else {}
    return [{"method": m, "text": t} for m, t in recorded.items()]


def _overrides(run: RunResult) -> dict | None:
    """Human review overrides recorded against the previous run (None: no previous run)."""
    section = run.record.human_overrides
    if section is None:
        return None
    return {
        "previous_run": section.previous_run,
        "rows": [
            {"id": str(o.applicant_id), "model": o.model_decision, "final": o.final_decision,
             "reviewer": o.reviewer, "reason": o.reason, "when": o.created[:16]}
            for o in section.items
        ],
    }


def audit_view(run: RunResult, previous: RunResult | None = None) -> dict:
    """Everything the audit report prints, section by section (None: not computed in this run)."""
    fairness, flags = _fairness(run), _flags(run)
    return {
        "id": _identity(run),
        "summary": _summary(run, fairness, flags),
        "changes": _changes(run, previous),
        "data": _data(run),
        "model": _model(run),
        "performance": _performance(run),
        "decides": _decides(run),
        "fairness": fairness,
        "reasons": _reasons(run),
        "flags": flags,
        "overrides": _overrides(run),
        "repro": _reproducibility(run),
        "limitations": _limitations(run),
    }
