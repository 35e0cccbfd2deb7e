"""Scheduled audits: the audit flow as a Prefect deployment on a cron schedule.

`credit-audit schedule` serves it from this process (Prefect's Runner: no
work pool needed); teams with a Prefect server and a work pool deploy the same
thing from prefect.yaml. Both carry the same parameters: plain data only.
"""

from __future__ import annotations

import asyncio
import signal

from prefect.deployments.runner import RunnerDeployment

from .audit import audit_flow

DEPLOYMENT_NAME = "scheduled-audit"
MSG_BAD_CRON = (
    "--cron {cron!r} is not a cron expression: five fields, minute hour day-of-month month day-of-week,"
    ' e.g. "0 6 1 * *" for 06:00 on the 1st of every month'
)
MSG_BAD_TIMEZONE = "--timezone {timezone!r} is not a time zone name (e.g. UTC, Europe/Berlin, Asia/Taipei)"


def check_schedule(cron: str, timezone: str = "UTC") -> None:
    """A cron expression and time zone Prefect accepts, or one clear ValueError (no pydantic dump)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(MSG_BAD_TIMEZONE.format(timezone=timezone)) from None
    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError:
        raise ValueError(MSG_BAD_CRON.format(cron=cron)) from None


def audit_deployment(cron: str, parameters: dict | None = None, name: str = DEPLOYMENT_NAME,
                     timezone: str = "UTC") -> RunnerDeployment:
    """The deployment the runner serves: the audit flow with `parameters` (as `run` would pass them)."""
    check_schedule(cron, timezone)
    return audit_flow.to_deployment(
        name=name,
        cron=cron,
        parameters=parameters or {},
        description="Credit-audit run on a schedule: score, explain, audit and report the portfolio.",
        tags=["credit-audit"],
    )


def serve_until_stopped(deployment: RunnerDeployment) -> None:
    """Serve until SIGTERM or SIGINT, then stop the runner properly (awaited, cancelling its loops).

    Prefect's `serve` leaves SIGTERM to a handler that never awaits the runner's stop, so a
    service manager's stop printed an un-awaited coroutine. Here the runner is started as a task,
    and this loop's own signal handlers, installed after the runner's, stop it and wait for it.
    """
    from prefect.runner import Runner

    async def main() -> None:
        runner = Runner()
        await runner.aadd_deployment(deployment)
        started = asyncio.create_task(runner.start())
        await asyncio.sleep(0)  # the runner installs its SIGTERM handler first; ours replace it
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({started, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set() and not started.done():
            await runner.astop()
        stopping.cancel()
        await asyncio.gather(started, return_exceptions=True)

    asyncio.run(main())
