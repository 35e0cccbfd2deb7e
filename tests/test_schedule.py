"""Scheduled audits: the served deployment exists with its cron schedule, and a triggered run works."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from flows.schedule import DEPLOYMENT_NAME, audit_deployment

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
CRON = "0 6 1 * *"
# The triggered run is a whole audit in the served process: a small slice and a few notices
# keep it short (tests/test_flow.py runs the flow on the whole file).
SMALL_ROWS = 1000
FEW_NOTICES = 5


def test_bad_cron_is_rejected():
    with pytest.raises(ValueError, match=r"--cron 'every month please' is not a cron expression: five fields"):
        audit_deployment("every month please")
    with pytest.raises(ValueError, match="--timezone 'Mars/Olympus' is not a time zone name"):
        audit_deployment(CRON, timezone="Mars/Olympus")


def test_bad_cron_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "flows.cli", "schedule", "--cron", "61 * * * *"], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    assert done.returncode == 2
    assert done.stderr.startswith("credit-audit: --cron '61 * * * *' is not a cron expression")
    assert "validation error" not in done.stderr and "Traceback" not in done.stderr


def test_schedule_takes_the_same_options_as_run():
    from flows.cli import build_parser

    parser = build_parser()
    [sub] = parser._subparsers._group_actions
    options = {name: {o for a in p._actions for o in a.option_strings} for name, p in sub.choices.items()}
    run_only = {"--json", "--runner", "--dask-address"}
    assert options["run"] - run_only <= options["schedule"]


def test_yaml_declares_the_same_deployment():
    import yaml

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    [dep] = spec["deployments"]
    assert dep["name"] == DEPLOYMENT_NAME
    assert dep["entrypoint"] == "flows/audit.py:audit_flow"
    assert dep["schedules"][0]["cron"] == CRON


def _small_copy(data_path: Path, out: Path, rows: int = SMALL_ROWS) -> Path:
    pd.read_csv(data_path, nrows=rows).to_csv(out, index=False)
    return out


def test_served_schedule_exists_and_a_triggered_run_completes(data_path, prefect_api, tmp_path):
    from prefect import get_client
    from prefect.deployments import run_deployment

    small = _small_copy(data_path, tmp_path / "portfolio.csv")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_RUNNER_POLL_FREQUENCY": "2",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "schedule", "--cron", CRON, "--data", str(small),
         "--notice-limit", str(FEW_NOTICES)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    try:
        name = f"credit-audit/{DEPLOYMENT_NAME}"
        deployment = _wait_for_deployment(name)
        with get_client(sync_client=True) as client:
            schedules = client.read_deployment_schedules(deployment.id)
        assert [s.schedule.cron for s in schedules] == [CRON]
        out = tmp_path / "triggered-run"
        run = run_deployment(name, parameters={"out": str(out)}, timeout=600)
        assert run.state.is_completed(), (run.state, (tmp_path / "serve.log").read_text()[-3000:])
        assert (out / "audit.json").exists() and (out / "manifest.json").exists()
        assert len(list((out / "reports" / "notices").glob("*.pdf"))) == FEW_NOTICES  # the served options
    finally:
        server.terminate()  # SIGTERM, as a service manager stops it
        code = server.wait(timeout=60)
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert code == 0, text[-3000:]
    assert "never awaited" not in text and "Traceback" not in text
    assert f"PREFECT_API_URL={prefect_api} prefect deployment run" in text and "Stopped." in text


def _wait_for_deployment(name: str, timeout: float = 180.0):
    from prefect import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            try:
                return client.read_deployment_by_name(name)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
