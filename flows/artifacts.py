"""Prefect artifacts of a run: the flagged applicants table and links to the reports, shown in the Prefect UI.

Called from the audit flow after the flags and reports are written. Artifact
keys are fixed (`flagged-applicants`, `flag-counts`, `audit-report`,
`adverse-action-notices`), so the Prefect UI keeps one history per key
across runs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from pipeline import outputs as O
from pipeline.flags import FLAG_LABELS

MAX_TABLE_ROWS = 500
REPORT_PDF, NOTICES_DIR = O.REPORT_PDF, O.NOTICES_DIR


def flagged_rows(applicants: pd.DataFrame, flags: pd.DataFrame, limit: int = MAX_TABLE_ROWS) -> list[dict]:
    """One row per flagged applicant (most flags, then highest probability, first), at most `limit`."""
    if flags.empty:
        return []
    grouped = flags.groupby("id").agg(codes=("code", list), reasons=("reason", list))
    info = applicants.set_index("id").loc[grouped.index, ["probability", "decision"]]
    frame = grouped.join(info).assign(n=grouped["codes"].map(len))
    frame = frame.sort_values(["n", "probability"], ascending=[False, False]).head(limit)
    return [
        {
            "applicant": int(i),
            "decision": str(r.decision),
            "probability": round(float(r.probability), 4),
            "flags": ", ".join(FLAG_LABELS.get(c, c) for c in r.codes),
            "why": " | ".join(r.reasons),
        }
        for i, r in frame.iterrows()
    ]


def counts_markdown(flags: pd.DataFrame, applicants: int) -> str:
    counts = flags["code"].value_counts()
    lines = [
        f"**{flags['id'].nunique()}** of {applicants} applicants flagged for review.",
        "",
        "| flag | applicants |",
        "|---|---:|",
    ]
    lines += [f"| {FLAG_LABELS.get(code, code)} | {int(n)} |" for code, n in counts.items()]
    return "\n".join(lines)


def publish_review_artifacts(run_dir: str | Path, flags: pd.DataFrame, applicants: pd.DataFrame) -> list[str]:
    """Publish the flagged table, the flag counts and links to the report and notices; returns artifact ids.

    `flags` is flags.parquet's frame (FlagResult.table), `applicants` the applicants table.
    """
    run_dir = Path(run_dir).resolve()
    rows = flagged_rows(applicants, flags)
    shown = f"the {len(rows)} most-flagged" if len(rows) < flags["id"].nunique() else "all"
    ids = [
        create_table_artifact(
            table=rows,
            key="flagged-applicants",
            description=f"Flagged applicants of {run_dir.name} ({shown}); review them with "
            f"`credit-audit review --run {run_dir}`.",
        ),
        create_markdown_artifact(
            counts_markdown(flags, len(applicants)), key="flag-counts", description="Flag counts by reason"
        ),
    ]
    report = run_dir / REPORT_PDF
    if report.is_file():
        ids.append(create_link_artifact(report.as_uri(), link_text="Global audit report (PDF)", key="audit-report"))
    notices = run_dir / NOTICES_DIR
    if notices.is_dir():
        ids.append(
            create_link_artifact(notices.as_uri(), link_text="Adverse-action notices", key="adverse-action-notices")
        )
    return [str(i) for i in ids]
