"""The monitoring plan: the limits that send the model back to validation (SR 11-7 ongoing monitoring;
EU AI Act Art. 72 post-market monitoring).

A plan without numbers cannot be checked. Each trigger states a measure, its
value in this run (the baseline that later runs are compared with, through
`pipeline.drift`'s comparison with the previous run), the limit and the
action. Limits are the constants of `pipeline.constants`; baselines are read
from the record, so the plan printed is the plan of this run.
"""

from __future__ import annotations

from . import schema as S
from .constants import (
    CALIBRATION_ECE_MAX,
    MONITOR_AUC_DROP,
    MONITOR_OVERRIDE_SHARE,
    MONITOR_RATE_SHIFT,
    PSI_SHIFT,
    PSI_STABLE,
)
from .run_record import MonitoringSection, RunRecord, Trigger

CADENCE = ("Every scheduled run (weekly or monthly) is compared with the previous one (its report's changes since "
           "the previous run); a trigger below sends the model back to its validator before the next decision cycle.")
REVALIDATE = "Re-validate before further use"


def _pct(x: float) -> str:
    return f"{x:.1%}"


def monitoring_plan(record: RunRecord) -> MonitoringSection:
    """The triggers of this run, with this run's figures as their baselines."""
    held_out = record.held_out()
    auc = record.benchmarks.production.roc_auc if record.benchmarks else None
    auc_text = f"{held_out.roc_auc:.3f}" + (f" [{auc.lo:.3f}, {auc.hi:.3f}]" if auc and auc.lo is not None else "")
    auc_floor = min(held_out.roc_auc - MONITOR_AUC_DROP, auc.lo if auc and auc.lo is not None else 1.0)
    verdicts = record.fairness.verdicts if record.fairness else {}
    flagged = record.flags.applicants_flagged / record.flags.applicants if record.flags and record.flags.applicants else None
    triggers = [
        Trigger(measure="Population stability index of each input against this run's data",
                baseline=f"0 by definition; {len(record.model.features)} inputs",
                limit=f"watch at {PSI_STABLE:g}; {PSI_SHIFT:g} or more on any input",
                action=f"{REVALIDATE}: the applicants no longer resemble those the model was validated on"),
        Trigger(measure="ROC AUC on newly labelled applicants (held out)", baseline=auc_text,
                limit=f"below {auc_floor:.3f} (this run's lower bound, or {MONITOR_AUC_DROP:g} below its estimate)",
                action=f"{REVALIDATE}; compare again with the challengers"),
        Trigger(measure="Decline rate", baseline=_pct(held_out.decline_rate),
                limit=f"moves by more than {MONITOR_RATE_SHIFT * 100:g} points",
                action="Check the inputs for drift and the threshold policy; re-validate if the inputs moved"),
        Trigger(measure="Observed default rate (labelled runs)", baseline=_pct(record.held_out_default_rate()),
                limit=f"moves by more than {MONITOR_RATE_SHIFT * 100:g} points",
                action=f"{REVALIDATE}: calibration and the threshold assume this default rate"),
        Trigger(measure="Expected calibration error", baseline=f"{held_out.ece:.3f}",
                limit=f"above {CALIBRATION_ECE_MAX:g}", action="Recalibrate (Platt scaling on recent labelled data)"),
        Trigger(measure="Fairness verdicts",
                baseline=", ".join(f"{S.attribute_label(k)}: {v}" for k, v in verdicts.items()) or "none",
                limit="any criterion fails, or a pass becomes review",
                action="Review the groups named; a fail stops decisions until mitigated and re-validated"),
        Trigger(measure="Share of reviewed decisions overridden by a person",
                baseline=_overrides(record), limit=f"above {MONITOR_OVERRIDE_SHARE:.0%}",
                action="Review with the analysts why the model's decisions are overturned; re-validate"),
        Trigger(measure="Share of applicants flagged for a human look",
                baseline=_pct(flagged) if flagged is not None else "not computed",
                limit="doubles against this run", action="Find which flag rose, and why"),
    ]
    return MonitoringSection(cadence=CADENCE, triggers=tuple(triggers))


def _overrides(record: RunRecord) -> str:
    section = record.human_overrides
    if section is None:
        return "no previous run reviewed"
    to_approve = sum(o.final_decision == "approve" for o in section.items)
    return (f"{len(section.items)} decision(s) of the previous run overridden ({to_approve} to approve, "
            f"{len(section.items) - to_approve} to decline)")
