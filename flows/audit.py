"""The audit flow: Prefect tasks that wrap pipeline/ functions, and the flow that wires them.

Tasks hold no logic of their own (Kedro/Prefect ETL style): each calls
pipeline functions so the same work is unit-tested with `task.fn()` and
orchestrated here. Expensive steps are *durable* (see flows/caching.py): they
write their output into the run directory and return its path, so a killed
run resumes where it stopped. Only I/O tasks retry.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline import CreditModel, Portfolio, load_portfolio, resolve_device
from pipeline import outputs as O
from pipeline import schema as S
from pipeline import scoring
from pipeline.acquire import locate_dataset
from pipeline.config import AuditConfig
from pipeline.model import seed_everything
from pipeline.splitting import SplitIndex, split_portfolio
from pipeline.surrogate import Surrogate
from pipeline.versions import library_versions

from .caching import code_version, durable, step_key

plain = partial(task, cache_policy=NO_CACHE)


def run_id_for(data_hash: str, config: dict, model_hash: str | None = None) -> str:
    """Deterministic: the same data, configuration and model give the same run (and resume it)."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps([config, model_hash, code_version()], sort_keys=True).encode()).hexdigest()
    return O.check_run_id(f"run-{data_hash[:10]}-{digest[:10]}")


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def locate_data(path: str | None) -> Path:
    return locate_dataset(path)


@plain
def load_data(path: Path) -> Portfolio:
    portfolio = load_portfolio(path)
    get_run_logger().info("loaded %d applicants from %s (data hash %s)", len(portfolio), path, portfolio.data_hash[:12])
    return portfolio


@plain
def split_data(portfolio: Portfolio, config: AuditConfig) -> SplitIndex:
    return split_portfolio(portfolio, config.test_fraction, config.seed)


@task
def train_model(portfolio: Portfolio, split: SplitIndex, config: AuditConfig, device: str, model_dir: str, key: str) -> str:
    """Durable: trains, saves the model under the run, returns its folder."""
    log = get_run_logger()
    features = S.FEATURE_NAMES if config.protected_inputs else S.DEFAULT_MODEL_FEATURES
    model = CreditModel(features=features, policy=config.policy, device=device, seed=config.seed)

    def progress(epoch: int, loss: float, auc: float) -> None:
        log.info("training epoch %d/%d: loss %.4f, validation AUC %.4f", epoch, model.max_epochs, loss, auc)

    model.fit(portfolio.features.iloc[split.train], portfolio.labels.iloc[split.train], progress=progress)
    model.save(model_dir, data_hash=portfolio.data_hash)
    return model_dir


@plain
def load_model(model_dir: str, device: str) -> CreditModel:
    return CreditModel.load(model_dir, device=device)


@plain
def fit_surrogate(portfolio: Portfolio, split: SplitIndex, model: CreditModel, config: AuditConfig) -> Surrogate:
    X = portfolio.features.iloc[split.train]
    return Surrogate(features=model.features, max_depth=config.surrogate_depth, seed=config.seed).fit(X, model.predict(X))


@plain
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
    reused_model: str | None,
) -> dict:
    """Everything computed, as the JSON document reports and other tools read."""
    return {
        "format": 1,
        "run_id": run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": config.seed,
        "device": device,
        "code_version": code_version(),
        "config": config.to_dict(),
        "lender": config.to_dict()["lender"],
        "data": scoring.data_section(portfolio),
        "split": {
            "test_fraction": split.test_fraction,
            "train_rows": int(len(split.train)),
            "test_rows": int(len(split.test)),
            "seed": split.seed,
        },
        "model": {**scoring.model_section(model), "reused_from": reused_model},
        "performance": scoring.performance_section(table, model.threshold_, all_rows=reused_model is not None),
        "surrogate": scoring.surrogate_section(surrogate, table),
        "decisions": table["decision"].value_counts().to_dict(),
        "versions": library_versions(),
    }


@plain
def write_outputs(run_dir: Path, record: dict, table: pd.DataFrame) -> Path:
    """The run's tables and record, then the manifest over everything in the run."""
    O.write_parquet(run_dir / O.APPLICANTS, table)
    O.write_json(run_dir / O.AUDIT_JSON, record)
    return O.write_manifest(run_dir)


class _Timer:
    """Wall-clock seconds per step, recorded in audit.json."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self._t, 3)
        self._t = now


def _model_step(portfolio, split, config, device, run_dir: Path, key, model_dir: str | None) -> CreditModel:
    """A given production model is loaded as is; otherwise train (durable) and load what was saved."""
    if model_dir:
        return load_model(model_dir, device)
    trained = durable(train_model, run_dir)(
        portfolio, split, config, device, str(run_dir / O.MODEL_DIR), key=key("train")
    )
    return load_model(trained, device)


@flow(name="credit-audit", log_prints=True)
def audit_flow(
    data: str | None = None,
    out: str | None = None,
    config: dict | None = None,
    model_dir: str | None = None,
) -> str:
    """Load, split, model, surrogate, score, write. Returns the run directory.

    `config` is `AuditConfig.to_dict()` (plain data, so deployments and schedules can carry it).
    """
    config = AuditConfig.from_dict(config or {})
    device = str(resolve_device(config.device))
    seed_everything(config.seed)
    timer = _Timer()
    portfolio = load_data(locate_data(data))
    timer.lap("load")
    reused_hash = CreditModel.load(model_dir).model_hash() if model_dir else None
    run_id = run_id_for(portfolio.data_hash, config.to_dict(), reused_hash)
    run_dir = Path(out) if out else Path("runs") / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    key = partial(step_key, run_dir=run_dir, data_hash=portfolio.data_hash, config={**config.to_dict(), "device": device, "model": reused_hash})
    split = split_data(portfolio, config)
    model = _model_step(portfolio, split, config, device, run_dir, key, model_dir)
    timer.lap("model")
    surrogate = fit_surrogate(portfolio, split, model, config)
    table = score(portfolio, split, model, surrogate)
    timer.lap("surrogate_and_score")
    record = build_audit_record(run_id, config, device, portfolio, split, model, surrogate, table, model_dir)
    if model_dir:
        model.save(run_dir / O.MODEL_DIR)  # the audited model travels with its run
    record["timings"] = timer.times
    write_outputs(run_dir, record, table)
    get_run_logger().info("run %s written to %s", run_id, run_dir)
    return str(run_dir)
