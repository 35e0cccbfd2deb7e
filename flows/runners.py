"""Where the flow's mapped tasks run: in this process, or on an existing Dask cluster.

Chunks of per-applicant work are submitted as tasks; the task runner decides
where they execute. A Dask cluster needs the run directory on a filesystem
every worker shares (durable steps write there).
"""

from __future__ import annotations

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
