"""The closing summary of a run: what an engineer or a CI log needs in a few lines, or as JSON.

It is read from the run record alone, so the summary, the report's page 1 and
`audit.json` cannot disagree.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.layout import NOTICES_DIR, REPORT_PDF
from pipeline.run_record import RunRecord


def summary(record: RunRecord, run_dir: Path) -> dict:
    """JSON-able: identity, headline figures with baselines, verdicts, gates, flags, outputs."""
    test = record.held_out()
    c = test.confusion
    approve_all_accuracy = (c.tn + c.fp) / test.rows  # approving everyone is right for every non-defaulter
    gates = record.gates
    return {
        "run_id": record.run_id,
        "run_dir": str(run_dir),
        "passed": gates.passed if gates else None,
        "failed_rules": [c.model_dump() for c in gates.failed] if gates else [],
        "roc_auc": test.roc_auc,
        "accuracy": test.accuracy,
        "accuracy_approve_everyone": approve_all_accuracy,
        "decline_rate": test.decline_rate,
        "fairness_verdicts": dict(record.fairness.verdicts) if record.fairness else {},
        "applicants": record.data.rows,
        "declined": record.decisions.get("decline", 0),
        "applicants_flagged": record.flags.applicants_flagged if record.flags else None,
        "flag_counts": {k: v for k, v in record.flags.counts.items() if v} if record.flags else {},
        "shift": shift_outcomes(record),
        "notices": len(list((run_dir / NOTICES_DIR).glob("*.pdf"))),
        "report": str(run_dir / REPORT_PDF),
    }


def shift_outcomes(record: RunRecord) -> list[dict]:
    """Per shift check: the group moved, verdicts that moved, and the figure that degraded most (with interval)."""
    if record.shift is None:
        return []
    out = []
    for case in record.shift.cases:
        moved = [{"attribute": a.attribute, "before": a.verdict_before, "after": a.verdict_after}
                 for a in case.attributes if a.verdict_before != a.verdict_after]
        figures = [(a.attribute, f) for a in case.attributes for f in a.figures if f.degradation is not None]
        worst = max(figures, key=lambda af: af[1].degradation, default=None)
        out.append({
            "check": case.check, "attribute": case.attribute, "group": case.group, "delta": case.delta,
            "share_before": case.share_before, "share_after": case.share_after, "status": case.status,
            "reason": case.reason, "verdicts_moved": moved,
            "largest_degradation": None if worst is None else {
                "attribute": worst[0], "figure": worst[1].disparity, "before": worst[1].before.value,
                "after": worst[1].after.value, "after_lo": worst[1].after.lo, "after_hi": worst[1].after.hi,
                "degradation": worst[1].degradation},
        })
    return out


def _shift_line(s: dict) -> str:
    cases = s.get("shift") or []
    if not cases:
        return "  fairness under shift: not measured"
    measured = [c for c in cases if c["status"] == "ok"]
    moved = [f"{m['attribute']} {m['before']} -> {m['after']} ({c['attribute']}: {c['group']} {c['delta'] * 100:+g})"
             for c in measured for m in c["verdicts_moved"]]
    worst = max((c for c in measured if c["largest_degradation"]), default=None,
                key=lambda c: c["largest_degradation"]["degradation"])
    text = f"  fairness under shift: {len(measured)} of {len(cases)} checks measured; verdicts moved: " + (
        "; ".join(moved) or "none")
    if worst is not None:
        w = worst["largest_degradation"]
        text += (f"; largest degradation {w['degradation']:+.4f} ({w['figure']} of {w['attribute']} under "
                 f"{worst['attribute']}: {worst['group']} {worst['delta'] * 100:+g} points)")
    return text


def summary_lines(s: dict) -> list[str]:
    """The same summary as text lines for a terminal or a log."""
    gate = "not evaluated" if s["passed"] is None else ("passed" if s["passed"] else "FAILED")
    lines = [
        f"Run {s['run_id']}: release gates {gate}",
        *(f"  - {r['message']} ({r['rule']})" for r in s["failed_rules"]),
        f"  held-out ROC AUC {s['roc_auc']:.3f}; accuracy {s['accuracy']:.1%} "
        f"(approving everyone: {s['accuracy_approve_everyone']:.1%}); decline rate {s['decline_rate']:.1%}",
        "  fairness: " + (", ".join(f"{a} {v}" for a, v in s["fairness_verdicts"].items()) or "not computed"),
        _shift_line(s),
        f"  {s['declined']:,} of {s['applicants']:,} applicants declined; "
        + (f"{s['applicants_flagged']:,} flagged for review" if s["applicants_flagged"] is not None else "no flags")
        + (" (" + ", ".join(f"{k} {v:,}" for k, v in s["flag_counts"].items()) + ")" if s["flag_counts"] else ""),
        f"  {s['notices']:,} notices; report: {s['report']}",
    ]
    return lines
