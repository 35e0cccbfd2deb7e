"""Scheduled audits: the audit flow as a Prefect deployment on a cron schedule.

`credit-audit schedule` serves it from this process (Prefect's `serve`: no
work pool needed); teams with a Prefect server and a work pool deploy the same
thing from prefect.yaml. Both carry the same parameters: plain data only.
"""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment

from pipeline.config import AuditConfig

from .audit import audit_flow

DEPLOYMENT_NAME = "scheduled-audit"


def audit_deployment(
    cron: str,
    data: str | None = None,
    model_dir: str | None = None,
    config: AuditConfig | None = None,
    name: str = DEPLOYMENT_NAME,
    timezone: str = "UTC",
) -> RunnerDeployment:
    """The deployment `serve` runs: the audit of `data` (or $CREDIT_AUDIT_DATA) with an optional fixed model."""
    from prefect.client.schemas.schedules import CronSchedule

    CronSchedule(cron=cron, timezone=timezone)  # validates the expression before anything starts
    params = {"data": data, "config": (config or AuditConfig()).to_dict(), "model_dir": model_dir}
    return audit_flow.to_deployment(
        name=name,
        cron=cron,
        parameters={k: v for k, v in params.items() if v is not None},
        description="Credit-audit run on a schedule: score, explain, audit and report the portfolio.",
        tags=["credit-audit"],
    )
