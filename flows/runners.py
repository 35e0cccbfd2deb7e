"""Where the flow's mapped tasks run: in this process, or on an existing Dask cluster.

Chunks of per-applicant work are submitted as tasks; the task runner decides
where they execute. A Dask cluster needs the run directory on a filesystem
every worker shares (durable steps write there).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line reads RUNNERS without paying for Prefect's import
    from prefect import Flow

RUNNERS = ("local", "dask")
MSG_NEED_ADDRESS = "--runner dask needs --dask-address (e.g. tcp://scheduler:8786)"


def with_runner(flow: Flow, runner: str = "local", dask_address: str | None = None) -> Flow:
    """The flow as is for `local`; with a DaskTaskRunner on `dask_address` for `dask`."""
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
    if runner == "local":
        return flow
    if not dask_address:
        raise ValueError(MSG_NEED_ADDRESS)
    from prefect_dask import DaskTaskRunner

    return flow.with_options(task_runner=DaskTaskRunner(address=dask_address))


@contextmanager
def prefect_server() -> Iterator[str]:
    """The Prefect API every process of this command talks to: `PREFECT_API_URL`, or a temporary one.

    Without a configured server, start one here (as a subprocess) and point this process's
    settings at it, so other processes (Dask workers, `prefect deployment run` in another
    shell) can be given its address. Yields the API URL.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")))
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        server.stop()


@contextmanager
def api_for_workers(runner: str) -> Iterator[None]:
    """Give Dask workers the flow's Prefect API.

    Workers are other processes: with no PREFECT_API_URL configured, each would start
    its own temporary server when its first task runs (minutes on busy cores, one SQLite
    file for all; workers were lost doing it). So start the temporary server here and put
    its URL in the settings that prefect-dask sends with every task. A cluster on other
    machines needs a real server (PREFECT_API_URL) that every worker can reach.
    """
    if runner != "dask":
        yield
        return
    with prefect_server():
        yield
