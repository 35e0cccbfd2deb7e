"""The audit flow: Prefect tasks that wrap pipeline/ functions, and the flow that wires them.

Tasks hold no logic of their own (Kedro/Prefect ETL style): each calls one
pipeline function so that the same work can be unit-tested with `task.fn()`
and orchestrated here. Only I/O tasks retry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline import CreditModel, Portfolio, load_portfolio, resolve_device
from pipeline.config import AuditConfig
from pipeline.model import seed_everything
from pipeline import outputs as O
from pipeline import scoring
from pipeline.acquire import locate_dataset
from pipeline.splitting import SplitIndex, split_portfolio
from pipeline.surrogate import Surrogate
from pipeline.versions import library_versions
from pipeline import schema as S


@dataclass(frozen=True)
class RunPaths:
    """Where a run writes; `out` is created by the flow."""

    out: Path

    @property
    def audit_json(self) -> Path:
        return self.out / O.AUDIT_JSON


def new_run_id(data_hash: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{data_hash[:8]}"


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def locate_data(path: str | None) -> Path:
    return locate_dataset(path)


@task(cache_policy=NO_CACHE)
def load_data(path: Path) -> Portfolio:
    portfolio = load_portfolio(path)
    get_run_logger().info("loaded %d applicants from %s (data hash %s)", len(portfolio), path, portfolio.data_hash[:12])
    return portfolio


@task(cache_policy=NO_CACHE)
def split_data(portfolio: Portfolio, config: AuditConfig) -> SplitIndex:
    return split_portfolio(portfolio, config.test_fraction, config.seed)


@task(cache_policy=NO_CACHE)
def train_model(portfolio: Portfolio, split: SplitIndex, config: AuditConfig, device: str) -> CreditModel:
    log = get_run_logger()
    features = S.FEATURE_NAMES if config.protected_inputs else S.DEFAULT_MODEL_FEATURES
    model = CreditModel(features=features, policy=config.policy, device=device, seed=config.seed)

    def progress(epoch: int, loss: float, auc: float) -> None:
        log.info("training epoch %d/%d: loss %.4f, validation AUC %.4f", epoch, model.max_epochs, loss, auc)

    train = split.train
    return model.fit(portfolio.features.iloc[train], portfolio.labels.iloc[train], progress=progress)


@task(cache_policy=NO_CACHE)
def fit_surrogate(portfolio: Portfolio, split: SplitIndex, model: CreditModel, config: AuditConfig) -> Surrogate:
    X = portfolio.features.iloc[split.train]
    return Surrogate(features=model.features, max_depth=config.surrogate_depth, seed=config.seed).fit(X, model.predict(X))


@task(cache_policy=NO_CACHE)
def score(portfolio: Portfolio, split: SplitIndex, model: CreditModel, surrogate: Surrogate) -> pd.DataFrame:
    return scoring.applicants_table(portfolio, split, model, surrogate)


def build_audit_record(
    run_id: str,
    config: AuditConfig,
    device: str,
    portfolio: Portfolio,
    split: SplitIndex,
    model: CreditModel,
    surrogate: Surrogate,
    table: pd.DataFrame,
    timings: dict[str, float],
) -> dict:
    """Everything computed, as the JSON document reports and other tools read."""
    return {
        "format": 1,
        "run_id": run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": config.seed,
        "device": device,
        "config": config.to_dict(),
        "lender": config.to_dict()["lender"],
        "data": scoring.data_section(portfolio),
        "split": {
            "test_fraction": split.test_fraction,
            "train_rows": int(len(split.train)),
            "test_rows": int(len(split.test)),
            "seed": split.seed,
        },
        "model": scoring.model_section(model),
        "performance": scoring.performance_section(table, model.threshold_),
        "surrogate": scoring.surrogate_section(surrogate, table),
        "decisions": table["decision"].value_counts().to_dict(),
        "versions": library_versions(),
        "timings": timings,
    }


@task(cache_policy=NO_CACHE)
def write_outputs(out: Path, record: dict, table: pd.DataFrame, model: CreditModel) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / O.MODEL_DIR, data_hash=record["data"]["data_hash"])
    O.write_parquet(out / O.APPLICANTS, table)
    O.write_json(out / O.AUDIT_JSON, record)
    return O.write_manifest(out)


class _Timer:
    """Wall-clock seconds per step, recorded in audit.json."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self._t, 3)
        self._t = now


@flow(name="credit-audit", log_prints=True)
def audit_flow(data: str | None = None, out: str | None = None, config: AuditConfig | None = None) -> str:
    """Load, split, train, surrogate, score, write. Returns the run directory."""
    config = config or AuditConfig()
    device = str(resolve_device(config.device))
    seed_everything(config.seed)
    timer = _Timer()
    portfolio = load_data(locate_data(data))
    timer.lap("load")
    split = split_data(portfolio, config)
    model = train_model(portfolio, split, config, device)
    timer.lap("train")
    surrogate = fit_surrogate(portfolio, split, model, config)
    table = score(portfolio, split, model, surrogate)
    timer.lap("surrogate_and_score")
    run_id = new_run_id(portfolio.data_hash)
    run_dir = Path(out) if out else Path("runs") / O.check_run_id(run_id)
    record = build_audit_record(run_id, config, device, portfolio, split, model, surrogate, table, timer.times)
    write_outputs(run_dir, record, table, model)
    get_run_logger().info("run %s written to %s", run_id, run_dir)
    return str(run_dir)
