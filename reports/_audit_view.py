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
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from pipeline import schema as S
from pipeline.columns import SHAP, columns_of
from pipeline.constants import BLOCKING, CI_LEVEL, FIT, FIT_WITH_CONDITIONS, MAJORITY, NOT_FIT, STABILITY_FLAG_BELOW
from pipeline.run_record import Condition, Interval, ModelScore, ShiftCase

from . import _charts as C
from ._env import DASH, NOT_COMPUTED, num, pct, points
from ._notice_view import long_date
from ._run import RunResult
from ._schema_prose import about_data

TOP_AGREEMENT = 5
# The method the principal reasons are computed with (pipeline.explain): the importance headline uses it.
REASONS_METHOD = "shap"
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


OVERALL_LABEL = "All held-out applicants"


def _label(name: str) -> str:
    """A feature's or an audited attribute's name as a reader knows it."""
    return OVERALL_LABEL if name == "overall" else S.attribute_label(name)


def _svg(fig, alt: str) -> Markup:  # noqa: ANN001 - a matplotlib Figure
    """Inline SVG made by matplotlib (our own output, so it is marked safe), `alt` as its title (alt text)."""
    return Markup(C.to_svg(fig, alt))  # noqa: S704


def _bounds(d: Interval | None, fmt=num) -> str:  # noqa: ANN001
    """"[lo, hi]" of an interval, or "" where it has none."""
    if d is None or d.lo is None or d.hi is None or any(isinstance(v, float) and math.isnan(v) for v in (d.lo, d.hi)):
        return ""
    return f"[{fmt(d.lo)}, {fmt(d.hi)}]"


def _interval(d: Interval | None, fmt=num) -> str:  # noqa: ANN001
    """A figure with its interval; every figure with an interval is printed by this one function."""
    if d is None:
        return DASH
    bounds = _bounds(d, fmt)
    return f"{fmt(d.value)} {bounds}" if bounds else fmt(d.value)


def signed(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:+.{digits}f}"


def _file_name(source: str) -> str:
    """The data file's name without the folders it was read from (a local path says nothing to a reader)."""
    return source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or source


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
        "source": _file_name(data.source),
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
def _card(card: Mapping[str, Any]) -> dict:
    """A lender's model as its card and files describe it (pipeline.adapters `describe`)."""
    return {"file": str(card.get("file", DASH)), "sha256": str(card.get("sha256", DASH)),
            "card": str(card.get("card", DASH)), "card_sha256": str(card.get("card_sha256", DASH)),
            "runtime": f"{card.get('library', DASH)} {card.get('library_version', '')}".strip()}


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
        "card": _card(model.card) if model.card else None,
        "history_chart": _svg(C.training_history(history, model.best_epoch),
                              f"Training loss and validation ROC AUC over {len(history)} epochs; the weights of epoch "
                              f"{model.best_epoch} were kept.") if history else None,
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
                                {k: v.roc_auc for k, v in curves.items()}),
                          "ROC curve: " + "; ".join(f"{k}: ROC AUC {num(v.roc_auc)}" for k, v in curves.items())),
        "calibration_chart": _svg(C.calibration({k: v.calibration_curve.model_dump() for k, v in curves.items()}),
                                  "Calibration curve: observed default rate against predicted probability in ten "
                                  "bins; " + "; ".join(f"{k}: expected calibration error {num(v.ece)}"
                                                       for k, v in curves.items())),
        "test_auc": num(test.roc_auc),
        "test_accuracy": pct(test.accuracy),
        "test_decline_rate": pct(test.decline_rate),
        "test_rows": f"{test.rows:,}",
    }


# ---- how the model decides ----------------------------------------------------------------
def _importances(run: RunResult) -> tuple[dict[str, dict[str, float]], str]:
    """Global importance by method, the reasons' method (SHAP) first: from the explanation summary, or mean
    |SHAP| over the applicants table."""
    section = run.record.explanations
    if section is not None and section.global_importance:
        methods = sorted(section.global_importance, key=lambda m: m != REASONS_METHOD)  # stable: others keep order
        return {m: dict(section.global_importance[m]) for m in methods}, "explanations"
    if run.has_shap:
        frame = run.applicants
        cols = columns_of(frame, SHAP, S.FEATURE_NAMES)
        return {"mean |SHAP|": {name: float(frame[c].abs().mean()) for c, name in cols.items()}}, "applicants"
    return {}, ""


def _top(values: Mapping[str, float], k: int = TOP_AGREEMENT) -> list[str]:
    return [f for f, _ in sorted(values.items(), key=lambda kv: -abs(kv[1]))[:k]]


def _agreement(by_method: Mapping[str, Mapping[str, float]], spearman: Mapping | None = None) -> list[dict]:
    """Each other method against the headline method (the first): top-5 overlap, and the explanation step's
    rank correlation when it recorded one."""
    methods = list(by_method)
    spearman = spearman or {}
    head = methods[0]
    rows = []
    for other in methods[1:]:
        shared = [f for f in _top(by_method[head]) if f in _top(by_method[other])]
        rho = (spearman.get(head) or {}).get(other)
        rows.append({"pair": f"{head} and {other}", "method": other, "shared": f"{len(shared)} of {TOP_AGREEMENT}",
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
    head = next(iter(by_method), "")
    top_features = [_label(f) for f in _top(by_method[head])] if by_method else []
    labels = {f.name: f.label for f in S.FEATURES}
    return {
        "importance": None if not by_method else {
            "methods": ", ".join(by_method),
            "head": head,
            "head_is_reasons": head == REASONS_METHOD,
            "origin": origin,
            "chart": _svg(C.importance(by_method, labels),
                          f"Global importance of the {min(len(labels), 12)} most important features by method "
                          f"({', '.join(by_method)}), ordered by {head}; most important: {', '.join(top_features)}."),
            "agreement": _agreement(by_method, explanations.agreement if explanations else None),
            "top": ", ".join(top_features),
        },
        "surrogate": {
            "max_depth": str(sur.max_depth),
            "n_leaves": str(sur.n_leaves),
            "fidelity_test": pct(sur.fidelity_test),
            "fidelity_train": pct(sur.fidelity_train),
            "fidelity_baseline": pct(sur.fidelity_approve_all_test) if sur.fidelity_approve_all_test is not None
            else None,
            "rules": [r.text for r in sur.rules],
            "chart": _svg(C.surrogate_tree([r.model_dump() for r in sur.rules]),
                          f"The surrogate decision tree, depth {sur.max_depth}, {sur.n_leaves} leaves; its rules are "
                          "listed below.") if sur.rules else None,
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


def _axis(*columns: Sequence[float], top: float | None = None) -> tuple[float, float]:
    """One axis for a metric across every chart of it: from below the lowest bound to above the highest."""
    values = [v for col in columns for v in col if not math.isnan(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    hi = max(hi, top) if top is not None else hi
    pad = 0.04 * max(hi - lo, 0.05)
    return lo - pad, hi + pad


def _group_charts(table, four_fifths: float | None) -> list[Markup]:  # noqa: ANN001 - fairness.parquet
    """Per attribute: approval rate and adverse impact ratio by group; each metric on one axis across attributes."""
    ok = table[table["attribute"] != "overall"].dropna(subset=["approval_rate_lo", "approval_rate_hi"])
    if not len(ok):
        return []
    approval_axis = _axis(ok["approval_rate_lo"], ok["approval_rate_hi"])
    air_axis = _axis(ok["adverse_impact_ratio_lo"], ok["adverse_impact_ratio_hi"],
                     [four_fifths] if four_fifths is not None else [], top=1.0)
    charts = []
    for attr, rows in ok.groupby("attribute", sort=False):
        name = _label(str(attr))
        groups = [str(g) for g in rows["group"]]
        panels = [
            {"label": "Approval rate", "values": rows["approval_rate"], "lows": rows["approval_rate_lo"],
             "highs": rows["approval_rate_hi"], "xlim": approval_axis},
            {"label": "Adverse impact ratio (approval rate / most favoured group's)",
             "values": rows["adverse_impact_ratio"], "lows": rows["adverse_impact_ratio_lo"],
             "highs": rows["adverse_impact_ratio_hi"], "xlim": air_axis,
             "limit": four_fifths, "limit_label": f"four-fifths ({num(four_fifths, 2)})" if four_fifths else ""},
        ]
        alt = (f"{name}: approval rate and adverse impact ratio by group with confidence intervals. "
               + "; ".join(f"{g}: approval rate {pct(a)}, adverse impact ratio {num(r)}"
                           for g, a, r in zip(groups, rows["approval_rate"], rows["adverse_impact_ratio"], strict=True)))
        charts.append(_svg(C.interval_panels(groups, panels, f"{name}: approval rate by group, with confidence "
                                                              "interval"), alt))
    return charts


DISPARITY_PANELS = (
    ("lowest_adverse_impact_ratio", "Lowest adverse impact ratio", "four_fifths"),
    ("demographic_parity_difference", "Approval-rate gap", "parity_gap_max"),
    ("equalized_odds_difference", "Equalized odds difference", "equalized_odds_gap_max"),
)


def _disparity_chart(summary) -> Markup | None:  # noqa: ANN001 - the record's fairness section
    """Every attribute's three verdict criteria against their limits, one axis per criterion."""
    judged = [a for a in summary.attributes if a.disparities]
    if not judged:
        return None
    panels, described = [], []
    for key, label, limit_key in DISPARITY_PANELS:
        ds = [a.disparities.get(key) or Interval(value=math.nan, lo=math.nan, hi=math.nan) for a in judged]

        def col(field: str, ds: list[Interval] = ds) -> list[float]:
            return [math.nan if getattr(d, field) is None else float(getattr(d, field)) for d in ds]

        limit = getattr(summary.thresholds, limit_key)
        panels.append({"label": label, "values": col("value"), "lows": col("lo"), "highs": col("hi"),
                       "xlim": _axis(col("lo"), col("hi"), [limit], top=1.0 if key.endswith("ratio") else None),
                       "limit": limit, "limit_label": f"limit {num(limit, 2)}"})
        described.append(f"{label} (limit {num(limit, 2)}): "
                         + ", ".join(f"{_label(a.attribute)} {_interval(d)}" for a, d in zip(judged, ds, strict=True)))
    return _svg(C.interval_panels([_label(a.attribute) for a in judged], panels,
                                  "Verdict criteria by attribute, with confidence interval and limit",
                                  height_per_row=7.0), ". ".join(described) + ".")


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
        if "approval_rate_lo" in table.columns and "adverse_impact_ratio_lo" in table.columns:
            charts = _group_charts(table, summary.thresholds.four_fifths if summary else None)
    judged = [a for a in summary.attributes if a.disparities] if summary else []
    return {
        "proxies": _proxies(summary.proxies if summary else ()),
        "mitigation": _mitigation(summary.unawareness_and_mitigation if summary else None),
        "attributes": attributes,
        "tables": tables,
        "charts": charts,
        "disparity_chart": _disparity_chart(summary) if summary else None,
        "criteria_judged": f"{len(judged) * len(DISPARITY_PANELS):,}",
        "attributes_judged": f"{len(judged):,}",
        "rules": summary.rules if summary else "",
        "conventions": summary.conventions if summary else "",
        "ci_level": pct(summary.thresholds.ci_level, 0) if summary else "",
        "error_share": pct(1 - summary.thresholds.ci_level, 0) if summary else "",
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
        flags = run.record.flags  # the count the flag rule made: one computation for every page
        cut = float(flags.config.get("min_stability", STABILITY_FLAG_BELOW)) if flags else STABILITY_FLAG_BELOW
        low = flags.counts.get("unstable_explanation", 0) if flags else int((s < cut).sum())
        stability = {"mean": num(float(s.mean()), 2), "low": f"{low:,}", "n": f"{len(s):,}", "cut": num(cut, 2)}
    return {
        "declined": f"{len(declined):,}",
        "with_reasons": f"{with_reasons:,}",
        "rows": [{"label": label, "count": f"{n:,}", "share": pct(n / max(with_reasons, 1))} for label, n in items],
        "chart": _svg(C.counts(items, "Declined applicants for whom the factor is a principal reason"),
                      "How often each factor is a principal reason for declined applicants: "
                      + "; ".join(f"{label} {n:,}" for label, n in items)) if items else None,
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
    raised = [(str(labels.get(k, k)), v) for k, v in items if v]
    return {
        "applicants_flagged": f"{summary.applicants_flagged:,}",
        "total": f"{summary.total:,}",
        "rows": [{"code": k, "label": str(labels.get(k, k.replace("_", " "))), "count": f"{v:,}", "n": v} for k, v in items],
        "skipped": [{"label": str(labels.get(k, k)), "why": str(v)} for k, v in summary.skipped.items()],
        "chart": _svg(C.counts(raised, "Flags raised"),
                      "Flags raised: " + "; ".join(f"{label} {n:,}" for label, n in raised)) if raised else None,
    }


# ---- reproducibility and comparison ---------------------------------------------------------
def _reproducibility(run: RunResult) -> dict:
    r = run.record
    return {
        "versions": list(r.versions.items()),
        "timings": [(k.replace("_", " "), f"{v:.1f} s") for k, v in r.timings.items()],
        "command": f"credit-audit run --data {_file_name(r.data.source)} --seed {r.seed} --out DIR",
        "code_version": r.code_version,
    }


def _compared(run: RunResult) -> dict:
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
    now, before = _compared(run), _compared(previous)
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
        "changed": sum(row["before"] != row["now"] for row in rows),
        "drift": [{"label": _label(f), "psi": num(d.psi, 3), "reading": d.reading} for f, d in ranked],
        "same_data": a.data.data_hash == b.data.data_hash,
        "same_model": a.model.model_hash == b.model.model_hash,
    }


# ---- page 1: the conclusion, who answers for the model, and the headline figures with their baselines ----
OUTCOME_CLASS = {FIT: "fit", FIT_WITH_CONDITIONS: "conditions", NOT_FIT: "notfit"}
# Figures the conclusion cites that are shares, printed as percentages (the others as numbers).
PERCENT_RULES = ("accuracy_baseline", "surrogate_baseline")
NOT_SET = "not set ([audit.governance] {key})"


def _condition(c: Condition) -> dict:
    fmt = pct if c.rule in PERCENT_RULES else (signed if c.rule == "challenger_better" else num)
    value = "" if c.value is None else _interval(c.value, fmt)
    groups = " vs ".join(c.groups) if c.basis else ", ".join(c.groups)
    return {"blocking": c.severity == BLOCKING, "subject": c.subject, "groups": groups, "basis": c.basis,
            "figure": c.figure, "value": value, "limit": c.limit_text, "action": c.action}


def _conclusion(run: RunResult) -> dict | None:
    c = run.record.conclusion
    if c is None:
        return None
    conditions = [_condition(x) for x in c.conditions]
    for i, x in enumerate(conditions):  # consecutive findings that ask the same action share its cell
        same = 0 if i and conditions[i - 1]["action"] == x["action"] else 1
        while same and i + same < len(conditions) and conditions[i + same]["action"] == x["action"]:
            same += 1
        x["action_rows"] = same
    level = run.record.fairness.thresholds.ci_level if run.record.fairness else CI_LEVEL
    return {"outcome": c.outcome, "css": OUTCOME_CLASS.get(c.outcome, "conditions"), "rules": list(c.rules),
            "ci_level": pct(level, 0),
            "conditions": conditions, "blocking": sum(x["blocking"] for x in conditions),
            "count": len(conditions)}


def _governance(run: RunResult) -> dict:
    g = run.record.governance
    fields = {"model_owner": "Model owner", "validator": "Validator", "risk_tier": "Risk tier",
              "intended_use": "Intended use"}
    missing = NOT_SET if g else "not recorded in this run"
    rows = {key: {"label": label, "value": (getattr(g, key) if g else "") or missing.format(key=key),
                  "short": (getattr(g, key) if g else "") or f"{label.lower()} not set",
                  "unset": not (g and getattr(g, key))} for key, label in fields.items()}
    return {"recorded": g is not None, "rows": list(rows.values()), **rows,
            "unset": any(row["unset"] for row in rows.values()), "sign_off": list(g.sign_off) if g else []}


def _model_score(m: ModelScore) -> dict:
    d = m.auc_difference
    return {"name": m.name, "description": m.description, "auc": _interval(m.roc_auc),
            "difference": _interval(d, signed),
            "reading": m.reading, "accuracy": pct(m.accuracy), "decline_rate": pct(m.decline_rate),
            "brier": num(m.brier, 4), "ece": num(m.ece), "threshold": pct(m.threshold, 1)}


def _with_bounds(value: str, interval: Interval | None, fmt) -> str:  # noqa: ANN001
    """A stress figure as printed before, followed by its interval where the run recorded one."""
    bounds = _bounds(interval, fmt)
    return f"{value} {bounds}" if bounds else value


def _points_short(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:+.1f}"


def _stress(run: RunResult) -> dict | None:
    section = run.record.stress
    if section is None:
        return None
    held_out = run.record.held_out()
    return {"rows_n": f"{section.rows:,}", "base_auc": num(held_out.roc_auc), "base_decline_rate": pct(held_out.decline_rate),
            "method": section.method, "ci_level": pct(section.ci_level, 0) if section.ci_level else "",
            "cases": [{"description": c.description, "auc": _with_bounds(num(c.roc_auc), c.roc_auc_ci, num),
                       "auc_change": _interval(c.roc_auc_change, signed) if c.roc_auc_change else DASH,
                       "decline_rate": pct(c.decline_rate),
                       "change": _with_bounds(points(c.decline_rate_change), c.decline_rate_change_ci, _points_short),
                       "changed": _with_bounds(pct(c.decisions_changed), c.decisions_changed_ci, pct),
                       "probability": points(c.mean_probability_change)} for c in section.cases]}


def _verdict_move(before: str, after: str) -> str:
    return before if before == after else f"{before} \u2192 {after}"


def _shift_case(case: ShiftCase) -> dict:
    title = f"{_label(case.attribute)}: {case.group or 'least-favoured group'} {case.delta * 100:+g} points"
    shares = f"{pct(case.share_before)} \u2192 {pct(case.share_after)}" if case.share_after is not None else ""
    unchanged = [_label(a.attribute) for a in case.attributes if a.unchanged_by_construction]
    rows = []
    for a in case.attributes:
        if a.unchanged_by_construction:
            continue
        for i, f in enumerate(a.figures):
            rows.append({"attribute": _label(a.attribute) if i == 0 else "", "span": len(a.figures) if i == 0 else 0,
                         "figure": f.label, "before": _interval(f.before), "after": _interval(f.after),
                         "degradation": signed(f.degradation), "worse": (f.degradation or 0) > 0,
                         "verdict": _verdict_move(a.verdict_before, a.verdict_after),
                         "moved": a.verdict_before != a.verdict_after})
    moved = [f"{_label(a.attribute)} {_verdict_move(a.verdict_before, a.verdict_after)}"
             for a in case.attributes if a.verdict_before != a.verdict_after]
    return {"title": title, "check": case.check, "chosen": case.chosen, "shares": shares, "ok": case.status == "ok",
            "reason": case.reason, "effective": num(case.effective_rows, 0) if case.effective_rows else DASH,
            "unchanged": ", ".join(unchanged), "rows": rows, "moved": "; ".join(moved) or "none"}


def _shift(run: RunResult) -> dict | None:
    """Fairness under demographic shift: per check, each verdict figure before and after with its interval."""
    section = run.record.shift
    if section is None:
        return None
    cases = [_shift_case(c) for c in section.cases]
    return {"definition": section.definition, "method": section.method, "ci_level": pct(section.ci_level, 0),
            "n_boot": f"{section.n_boot:,}", "rows_n": f"{section.rows:,}", "cases": cases,
            "measured": sum(c["ok"] for c in cases),
            "moved": [f"{c['title']}: {c['moved']}" for c in cases if c["ok"] and c["moved"] != "none"]}


def _benchmarks(run: RunResult) -> dict | None:
    b = run.record.benchmarks
    if b is None:
        return None
    best = max(b.challengers, key=lambda c: c.roc_auc.value or 0.0, default=None)
    return {"rows": [_model_score(m) for m in (b.production, *b.challengers)], "method": b.method,
            "ci_level": pct(b.ci_level, 0), "rows_n": f"{b.rows:,}",
            "best": _model_score(best) if best is not None else None}


def _headline(run: RunResult, benchmarks: dict | None) -> dict:
    """The page-1 figures, each with the baseline that gives it meaning."""
    r = run.record
    test = r.held_out()
    bench = r.benchmarks
    majority = bench.challenger(MAJORITY) if bench else None
    sur = r.surrogate
    return {
        "auc": num(test.roc_auc),
        "auc_interval": _bounds(bench.production.roc_auc) if bench else "",
        "auc_baseline": num(majority.roc_auc.value) if majority else None,
        "accuracy": pct(test.accuracy),
        "accuracy_baseline": pct(r.approve_everyone_accuracy()),
        "decline_rate": pct(test.decline_rate),
        "default_rate": pct(r.held_out_default_rate()),
        "fidelity": pct(sur.fidelity_test),
        "fidelity_baseline": pct(sur.fidelity_approve_all_test) if sur.fidelity_approve_all_test is not None else None,
        "rows": f"{test.rows:,}",
        "best": benchmarks["best"] if benchmarks else None,
    }


# ---- use, oversight, risks and monitoring (EU AI Act Art. 9, 13, 14, 72; SR 11-7) ------------------
def _oversight(run: RunResult) -> dict:
    """The human review process, with this run's flag figures and the overrides recorded against the previous run."""
    r = run.record
    overrides = r.human_overrides
    to_approve = sum(o.final_decision == "approve" for o in overrides.items) if overrides else 0
    return {
        "flagged": f"{r.flags.applicants_flagged:,}" if r.flags else None,
        "applicants": f"{r.flags.applicants:,}" if r.flags else None,
        "declined": f"{r.decisions.get('decline', 0):,}",
        "previous_run": overrides.previous_run if overrides else None,
        "overrides": f"{len(overrides.items):,}" if overrides else None,
        "to_approve": f"{to_approve:,}",
        "to_decline": f"{len(overrides.items) - to_approve:,}" if overrides else "0",
    }


def _risks(run: RunResult, benchmarks: dict | None) -> list[dict]:
    """The risks a validator weighs, each with this run's evidence and the control that answers it."""
    r = run.record
    verdicts = list(r.fairness.verdicts.values()) if r.fairness else []
    counts = Counter(verdicts)
    flags = r.flags.counts if r.flags else {}
    proxies = [p for p in (r.fairness.proxies if r.fairness else ()) if isinstance(p.get("roc_auc"), int | float)]
    strongest = max(proxies, key=lambda p: p["roc_auc"], default=None)
    held_out = r.held_out()
    best = benchmarks["best"] if benchmarks else None
    about = about_data(run)
    return [
        {"risk": "Different treatment of protected groups",
         "evidence": ", ".join(f"{n} {v}" for v, n in counts.most_common()) + f" of {len(verdicts)} attributes"
         if verdicts else NOT_COMPUTED,
         "control": "Conditions on page 1 name each group and gap; every run re-tests them (section 5)."},
        {"risk": "Discrimination through proxies of a protected attribute",
         "evidence": (f"{_label(str(strongest.get('attribute', '')))} is predictable from the inputs with ROC AUC "
                      f"{num(strongest['roc_auc'])} ({strongest.get('strength', DASH)})") if strongest else NOT_COMPUTED,
         "control": (f"{about['excluded']} {'is' if ' and ' not in about['excluded'] else 'are'} not inputs; "
                     if about["excluded"] else "Every protected attribute is an input; ")
                    + "proxy strength and group outcomes are measured every run."},
        {"risk": "Population and period unlike those of use",
         "evidence": f"{about['population']}; the test split is random within that window, so no out-of-time test is possible",
         "control": "Validate on the lender's own recent applicants before use; the monitoring plan's triggers below."},
        {"risk": "Probabilities read as chances of default",
         "evidence": f"Expected calibration error {num(held_out.ece)} on held-out data",
         "control": "Probabilities are used only against the threshold; recalibration is a monitoring trigger."},
        {"risk": "An opaque model where a simpler one would do",
         "evidence": (f"Best challenger ({best['name'].lower()}): ROC AUC difference {best['difference']} "
                      f"({best['reading']})") if best else NOT_COMPUTED,
         "control": "Challengers re-trained and compared every run (section 3); reasons from SHAP; a readable surrogate."},
        {"risk": "Explanations that do not hold for an applicant",
         "evidence": f"{flags.get('unstable_explanation', 0):,} unstable explanations, "
                     f"{flags.get('surrogate_disagrees', 0):,} surrogate disagreements" if r.flags else NOT_COMPUTED,
         "control": "Each is flagged for a human look before the notice is relied on (section 7)."},
        {"risk": "Inputs outside what the model was validated on",
         "evidence": f"{flags.get('out_of_range', 0):,} values far outside the training data, "
                     f"{flags.get('undocumented_code', 0):,} undocumented codes" if r.flags else NOT_COMPUTED,
         "control": "Flagged for review; undocumented codes are reported in section 1."},
    ]


def _monitoring(run: RunResult) -> dict | None:
    m = run.record.monitoring
    if m is None:
        return None
    return {"cadence": m.cadence, "triggers": [t.model_dump() for t in m.triggers]}


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
    fairness, flags, benchmarks = _fairness(run), _flags(run), _benchmarks(run)
    return {
        "id": _identity(run),
        "about": about_data(run),  # what the report says of the data and its outcome: the schema's words
        "conclusion": _conclusion(run),
        "governance": _governance(run),
        "headline": _headline(run, benchmarks),
        "benchmarks": benchmarks,
        "stress": _stress(run),
        "shift": _shift(run),
        "oversight": _oversight(run),
        "risks": _risks(run, benchmarks),
        "monitoring": _monitoring(run),
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
