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
from pipeline.constants import STABILITY_FLAG_BELOW

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


def _interval(d: Mapping | None, fmt=num) -> str:  # noqa: ANN001
    if not d:
        return DASH
    value, lo, hi = d.get("value"), d.get("lo"), d.get("hi")
    if lo is None or hi is None or any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
        return fmt(value)
    return f"{fmt(value)} [{fmt(lo)}, {fmt(hi)}]"


# ---- page 1 and data ---------------------------------------------------------------
def _identity(run: RunResult) -> dict:
    a = run.audit
    data, model, split = a["data"], a["model"], a.get("split", {})
    return {
        "run_id": run.run_id,
        "created": str(a["created"]),
        "date": long_date(str(a["created"])),
        "seed": str(a.get("seed", DASH)),
        "device": str(a.get("device", DASH)),
        "source": str(data.get("source", DASH)),
        "rows": f"{data.get('rows', 0):,}",
        "header_variant": str(data.get("header_variant", DASH)),
        "default_rate": pct(data.get("default_rate")),
        "data_hash": str(data.get("data_hash", "")),
        "model_hash": str(model.get("model_hash", "")),
        "architecture": str(model.get("architecture", DASH)),
        "threshold": pct(model.get("threshold"), 2),
        "policy_text": str(model.get("policy_text", DASH)),
        "train_rows": f"{split.get('train_rows', 0):,}",
        "test_rows": f"{split.get('test_rows', 0):,}",
        "test_fraction": pct(split.get("test_fraction"), 0),
        "lender": str((a.get("lender") or {}).get("name", "")),
        "findings": f"{len(data.get('findings') or []):,}",
    }


def _data(run: RunResult) -> dict:
    data = run.audit["data"]
    findings = [
        {"column": str(f.get("column", "")), "value": num(f.get("value"), 0) if f.get("value") is not None else DASH,
         "count": f"{f.get('count', 0):,}", "message": str(f.get("message", ""))}
        for f in data.get("findings", [])
    ]
    ranges = data.get("ranges", {})
    rows = [
        {"name": f.name, "label": f.label, "kind": f.kind.replace("_", " "),
         "min": f.describe(ranges[f.name]["min"]) if f.name in ranges else DASH,
         "max": f.describe(ranges[f.name]["max"]) if f.name in ranges else DASH,
         "protected": f.protected, "used": f.name in run.model_features}
        for f in S.FEATURES
    ]
    return {"findings": findings, "ranges": rows}


# ---- model and performance -------------------------------------------------------------
def _model(run: RunResult) -> dict:
    model = run.audit["model"]
    history = list(model.get("history") or [])
    training = model.get("training") or {}
    return {
        "inputs": ", ".join(_label(n) for n in run.model_features),
        "excluded": ", ".join(_label(n) for n in model.get("excluded_inputs", [])) or "none",
        "preprocessing": str(model.get("preprocessing", DASH)),
        "calibration": str(model.get("calibration", DASH)),
        "best_epoch": str(model.get("best_epoch", DASH)),
        "training": [(str(k).replace("_", " "), str(v)) for k, v in training.items()],
        "history_chart": _svg(C.training_history(history, model.get("best_epoch"))) if history else None,
    }


def _performance(run: RunResult) -> dict:
    perf = run.audit["performance"]
    splits = [s for s in ("test", "train") if s in perf]
    rows = [{"label": label, "cells": [fmt(perf[s].get(key)) for s in splits]} for key, label, fmt in PERFORMANCE_ROWS]
    test = perf.get("test", perf[splits[0]])
    cm = test.get("confusion", {})
    curves = {f"{s} ({perf[s].get('rows', 0):,} rows)": perf[s] for s in splits}
    return {
        "splits": splits,
        "rows": rows,
        "confusion": {k: f"{cm.get(k, 0):,}" for k in ("tn", "fp", "fn", "tp")},
        "roc_chart": _svg(C.roc({k: v["roc_curve"] for k, v in curves.items()},
                                {k: v["roc_auc"] for k, v in curves.items()})),
        "calibration_chart": _svg(C.calibration({k: v["calibration_curve"] for k, v in curves.items()})),
        "test_auc": num(test.get("roc_auc")),
        "test_accuracy": pct(test.get("accuracy")),
        "test_decline_rate": pct(test.get("decline_rate")),
        "test_rows": f"{test.get('rows', 0):,}",
    }


# ---- how the model decides ----------------------------------------------------------------
def _importances(run: RunResult) -> tuple[dict[str, dict[str, float]], str]:
    """Global importance by method: from the explanation summary, or mean |SHAP| over the applicants table."""
    section = run.section("explanations") or {}
    found = section.get("global_importance")
    if isinstance(found, Mapping) and found:
        return {str(m): {str(f): float(v) for f, v in vals.items()} for m, vals in found.items()}, "explanations"
    if run.has_shap:
        frame = run.applicants
        cols = [c for c in frame.columns if c.startswith("shap_") and c[5:] in S.BY_NAME]
        return {"mean |SHAP|": {c[5:]: float(frame[c].abs().mean()) for c in cols}}, "applicants"
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
    sur = run.section("surrogate")
    fairness = run.fairness
    fidelity_by_group = []
    if fairness is not None and "surrogate_fidelity" in fairness.columns:
        for _, r in fairness.iterrows():
            fidelity_by_group.append({"attribute": _label(str(r["attribute"])), "group": str(r["group"]),
                                      "value": _interval({"value": r["surrogate_fidelity"],
                                                          "lo": r.get("surrogate_fidelity_lo"),
                                                          "hi": r.get("surrogate_fidelity_hi")}, pct)})
    top_features = []
    if by_method:
        first = next(iter(by_method.values()))
        top_features = [_label(f) for f, _ in sorted(first.items(), key=lambda kv: -abs(kv[1]))[:TOP_AGREEMENT]]
    return {
        "importance": None if not by_method else {
            "methods": ", ".join(by_method),
            "origin": origin,
            "chart": _svg(C.importance(by_method, {f.name: f.label for f in S.FEATURES})),
            "agreement": _agreement(by_method, (run.section("explanations") or {}).get("agreement")),
            "top": ", ".join(top_features),
        },
        "surrogate": None if not sur else {
            "max_depth": str(sur.get("max_depth", DASH)),
            "n_leaves": str(sur.get("n_leaves", DASH)),
            "fidelity_test": pct(sur.get("fidelity_test")),
            "fidelity_train": pct(sur.get("fidelity_train")),
            "rules": [str(r["text"]) for r in sur.get("rules", [])],
            "chart": _svg(C.surrogate_tree(sur["rules"])) if sur.get("rules") else None,
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
    summary, table = run.section("fairness"), run.fairness
    if summary is None and table is None:
        return None
    attributes = []
    for a in (summary or {}).get("attributes", []):
        attributes.append({
            "name": _label(str(a.get("attribute", ""))),
            "key": str(a.get("attribute", "")),
            "verdict": str(a.get("verdict", DASH)),
            "favoured": str(a.get("favoured_group") or DASH),
            "insufficient": ", ".join(a.get("groups_insufficient", [])) or "none",
            "disparities": [{"label": DISPARITY_LABELS.get(k, k.replace("_", " ")), "value": _interval(v)}
                            for k, v in (a.get("disparities") or {}).items()],
            "reasons": [str(r) for r in a.get("reasons", [])],
        })
    tables, charts = [], []
    if table is not None and len(table):
        rates = [r for r in TABLE_RATES if r in table.columns]
        size_col = "count" if "count" in table.columns else ("n" if "n" in table.columns else None)
        for attr, rows in table.groupby("attribute", sort=False):
            body = []
            for _, r in rows.iterrows():
                body.append({
                    "group": str(r["group"]),
                    "n": f"{int(r[size_col]):,}" if size_col else DASH,
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
    thresholds = (summary or {}).get("thresholds") or {}
    return {
        "proxies": _proxies((summary or {}).get("proxies") or []),
        "mitigation": _mitigation((summary or {}).get("unawareness_and_mitigation")),
        "attributes": attributes,
        "tables": tables,
        "charts": charts,
        "rules": str((summary or {}).get("rules") or ""),
        "conventions": str((summary or {}).get("conventions") or ""),
        "ci_level": pct(thresholds.get("ci_level"), 0) if thresholds.get("ci_level") else "",
        "four_fifths": num(thresholds.get("four_fifths"), 2) if thresholds.get("four_fifths") else "",
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
        "stability": stability,
    }


def _flags(run: RunResult) -> dict | None:
    summary, table = run.section("flags"), run.flags
    if summary is None and table is None:
        return None
    labels = dict((summary or {}).get("labels") or {})
    if summary and summary.get("counts") is not None:
        counts = {str(k): int(v) for k, v in summary["counts"].items()}
    else:
        code = "code" if table is not None and "code" in table.columns else "flag"
        counts = {str(k): int(v) for k, v in table[code].value_counts().items()} if table is not None else {}
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    flagged = (summary or {}).get("applicants_flagged")
    if flagged is None and table is not None:
        flagged = int(table["id"].nunique())
    return {
        "applicants_flagged": f"{int(flagged or 0):,}",
        "total": f"{sum(counts.values()):,}",
        "rows": [{"code": k, "label": str(labels.get(k, k.replace("_", " "))), "count": f"{v:,}", "n": v} for k, v in items],
        "skipped": [{"label": str(labels.get(k, k)), "why": str(v)} for k, v in ((summary or {}).get("skipped") or {}).items()],
        "chart": _svg(C.counts([(str(labels.get(k, k)), v) for k, v in items if v], "Flags raised")) if any(v for _, v in items) else None,
    }


# ---- reproducibility and comparison ---------------------------------------------------------
def _reproducibility(run: RunResult) -> dict:
    a = run.audit
    return {
        "versions": [(str(k), str(v)) for k, v in (a.get("versions") or {}).items()],
        "timings": [(str(k).replace("_", " "), f"{float(v):.1f} s") for k, v in (a.get("timings") or {}).items()
                    if isinstance(v, int | float)],
        "command": f"credit-audit run --data {a['data'].get('source', 'DATA.csv')} --seed {a.get('seed', 0)} --out DIR",
    }


def _headline(run: RunResult) -> dict:
    """The figures compared between runs, as raw numbers (formatted by _changes)."""
    perf = run.audit["performance"].get("test", {})
    decisions = run.audit.get("decisions") or {}
    flags = run.section("flags") or {}
    sur = run.section("surrogate") or {}
    return {
        "ROC AUC (test)": (perf.get("roc_auc"), num),
        "Accuracy (test)": (perf.get("accuracy"), pct),
        "Decline rate (test)": (perf.get("decline_rate"), pct),
        "Expected calibration error (test)": (perf.get("ece"), num),
        "Decision threshold": (run.audit["model"].get("threshold"), pct),
        "Declined applicants": (decisions.get("decline"), num),
        "Surrogate fidelity (test)": (sur.get("fidelity_test"), pct),
        "Applicants flagged": (flags.get("applicants_flagged"), num),
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
    verdicts_now = dict((run.section("fairness") or {}).get("verdicts") or {})
    verdicts_before = dict((previous.section("fairness") or {}).get("verdicts") or {})
    for attr in sorted(set(verdicts_now) | set(verdicts_before)):
        old, new = verdicts_before.get(attr, NOT_COMPUTED), verdicts_now.get(attr, NOT_COMPUTED)
        rows.append({"label": f"Fairness verdict: {_label(attr)}", "before": str(old), "now": str(new),
                     "delta": "changed" if old != new else "same"})
    a, b = run.audit, previous.audit
    drift = (a.get("changes") or {}).get("data_drift") or {}
    ranked = sorted(drift.items(), key=lambda kv: -(kv[1].get("psi") or 0.0))[:8]
    return {
        "previous_run": previous.run_id,
        "rows": rows,
        "drift": [{"label": _label(f), "psi": num(d.get("psi"), 3), "reading": str(d.get("reading", ""))} for f, d in ranked],
        "same_data": a["data"].get("data_hash") == b["data"].get("data_hash"),
        "same_model": a["model"].get("model_hash") == b["model"].get("model_hash"),
    }


def _summary(run: RunResult, fairness: dict | None, flags: dict | None) -> dict:
    decisions = run.audit.get("decisions") or {}
    return {
        "approve": f"{decisions.get('approve', 0):,}",
        "decline": f"{decisions.get('decline', 0):,}",
        "verdicts": [{"name": a["name"], "verdict": a["verdict"]} for a in (fairness or {}).get("attributes", [])],
        "flags": [f for f in (flags or {}).get("rows", []) if f["n"]][:6],
    }


def _limitations(run: RunResult) -> list[dict]:
    recorded = (run.section("explanations") or {}).get("limitations") or {}
    return [{"method": str(m), "text": str(t)} for m, t in recorded.items()]


def _overrides(run: RunResult) -> dict | None:
    """Human review overrides recorded against the previous run (None: no previous run)."""
    section = run.audit.get("human_overrides")
    if section is None:
        return None
    return {
        "previous_run": section.get("previous_run", DASH),
        "rows": [
            {"id": str(o["applicant_id"]), "model": str(o["model_decision"]), "final": str(o["final_decision"]),
             "reviewer": str(o["reviewer"]), "reason": str(o["reason"]), "when": str(o["created"])[:16]}
            for o in section.get("items", [])
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
