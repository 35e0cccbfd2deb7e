"""Prefect tasks of the audit flow: each wraps pipeline/ or reports/ functions, nothing more.

Durable tasks (see flows/caching.py) take a `key` and return the list of
files they wrote under the run directory; plain tasks return objects in
memory. Per-applicant work (explanation chunks, notice chunks) is one task
per chunk, so it can be mapped over a Dask cluster and resumed chunk by chunk.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline import CreditModel, Portfolio, atomic_write_bytes, check_audit_size, load_portfolio, scoring
from pipeline import outputs as O
from pipeline import schema as S
from pipeline.acquire import locate_dataset
from pipeline.audited_model import AuditedModel, decisions
from pipeline.config import AuditConfig
from pipeline.policy import policy_of
from pipeline.run_record import (
    BenchmarksSection,
    ConclusionSection,
    MonitoringSection,
    RunRecord,
    ShiftSection,
    StressSection,
)
from pipeline.splitting import SplitIndex, split_portfolio
from pipeline.surrogate import Surrogate

from .caching import CACHE_DIR, item_journal
from .progress import Progress, heartbeat

plain = partial(task, cache_policy=NO_CACHE)
WORK_DIR = Path(CACHE_DIR) / "work"


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
    check_audit_size(portfolio, config.test_fraction)  # scheduled runs skip the CLI's preflight
    return split_portfolio(portfolio, config.test_fraction, config.seed)


@task
def train_model(portfolio: Portfolio, split: SplitIndex, config: AuditConfig, device: str, model_dir: str,
                key: str) -> list[str]:
    """Durable: trains, saves the model under the run, returns its files."""
    log = get_run_logger()
    features = S.FEATURE_NAMES if config.protected_inputs else S.DEFAULT_MODEL_FEATURES
    model = CreditModel(features=features, policy=config.policy, device=device, seed=config.seed)

    def progress(epoch: int, loss: float, auc: float) -> None:
        log.info("training epoch %d/%d: loss %.4f, validation AUC %.4f", epoch, model.max_epochs, loss, auc)

    model.fit(portfolio.features.iloc[split.train], portfolio.labels.iloc[split.train], progress=progress)
    return [str(p) for p in model.save(model_dir, data_hash=portfolio.data_hash)]


@plain
def load_model(model_dir: str, device: str) -> CreditModel:
    return CreditModel.load(model_dir, device=device)


def schema_hash(path: str | None, raw: bytes) -> str | None:
    """A lender's schema file's SHA-256, part of the run's identity (None for the default schema)."""
    return hashlib.sha256(raw).hexdigest() if path else None


def load_given_model(path: str, device: str = "cpu") -> AuditedModel:
    """The model to audit as is: a credit-audit model folder (a run's model/), or a lender's model file
    with its card (`pipeline.adapters`), whose inputs must be columns of the active schema. A folder
    with a card beside it is read through that card, so its type and sha256 are checked too."""
    from pipeline.adapters import card_path, check_inputs, load_audited_model

    if Path(path).is_dir() and not card_path(path).is_symlink() and not card_path(path).exists():
        return CreditModel.load(path, device=device)

    model = load_audited_model(path)
    check_inputs(model, S.FEATURE_NAMES)
    return model


def check_given_model(path: str, portfolio: Portfolio) -> AuditedModel:
    """`load_given_model`, and a lender's model scores every applicant with a probability in [0, 1]."""
    model = load_given_model(path)
    if not isinstance(model, CreditModel):
        from pipeline.adapters import check_outputs

        check_outputs(model, portfolio.features, portfolio.ids)
    return model


def keep_model_files(model: AuditedModel, run_dir: Path) -> list[Path]:
    """Copies of a lender's model file and its card in the run's model/ folder: the audited model
    travels with its run and is sealed by its manifest. The bytes copied are the bytes the adapter
    hashed and loaded (never the file read again, which could have changed since)."""
    folder = run_dir / O.MODEL_DIR
    return [atomic_write_bytes(folder / f.path.name, f.data) for f in (model, model.card_file)]  # type: ignore[attr-defined]


@plain
def fit_surrogate(portfolio: Portfolio, split: SplitIndex, model: CreditModel, config: AuditConfig) -> Surrogate:
    X = portfolio.features.iloc[split.train]
    return Surrogate(features=model.features, max_depth=config.surrogate_depth, seed=config.seed).fit(X, decisions(model, X))


@plain
def score(portfolio: Portfolio, split: SplitIndex, model: CreditModel, surrogate: Surrogate) -> pd.DataFrame:
    return scoring.applicants_table(portfolio, split, model, surrogate)


@task
def explain_chunk(
    run_dir: str,
    model: CreditModel,
    surrogate: Surrogate,
    frame: pd.DataFrame,
    labels: np.ndarray,
    declined: np.ndarray,
    background: pd.DataFrame,
    training: pd.DataFrame,
    device: str,
    seed: int,
    name: str,
    key: str,
    counterfactual_margin: float | None = None,
    max_limit_factor: float | None = None,
) -> list[str]:
    """Durable: explain one chunk of applicants; writes its summary (JSON) and columns (Parquet)."""
    from pipeline.explain import explain_portfolio

    S.activate_for_run(run_dir)  # a Dask worker is another process: the run's schema, not the default
    settings = {} if counterfactual_margin is None else {"counterfactual_margin": counterfactual_margin}
    result = explain_portfolio(
        model.to(device) if isinstance(model, CreditModel) else model, surrogate, frame, declined, background, device=device, seed=seed,
        training_frame=training, labels=labels, max_limit_factor=max_limit_factor, **settings,
    )
    out = Path(run_dir) / WORK_DIR
    return [str(O.write_json(out / f"{name}.json", result.summary())),
            str(O.write_parquet(out / f"{name}.parquet", result.columns.reset_index(drop=True)))]


@task
def fairness_audit(
    run_dir: str, portfolio: Portfolio, split: SplitIndex, model: CreditModel, table: pd.DataFrame,
    device: str, seed: int, key: str,
) -> list[str]:
    """Durable: the fairness audit of the held-out split; writes its summary (JSON) and fairness.parquet."""
    from pipeline.fairness import audit_fairness

    test = table.iloc[split.test]  # same index as the X_test below
    declined = test[test["decision"] == "decline"]
    reasons = declined["reasons"].map(lambda r: [x["feature"] for x in json.loads(r)])
    result = audit_fairness(
        portfolio.features.iloc[split.train], portfolio.labels.iloc[split.train],
        portfolio.features.iloc[split.test], portfolio.labels.iloc[split.test], model,
        device=device, seed=seed, reasons=reasons,
        surrogate_decisions=(test["surrogate_decision"] == "decline").astype(int).to_numpy(),
    )
    table = O.write_parquet(Path(run_dir) / O.FAIRNESS, result.table)
    return [str(O.write_json(Path(run_dir) / WORK_DIR / "fairness.json", result.summary())), str(table)]


@plain
def flag_applicants(run_dir: str, table: pd.DataFrame, portfolio: Portfolio, split: SplitIndex, threshold: float,
                    config: AuditConfig) -> dict:
    """Flags for every applicant -> flags.parquet; returns the audit.json summary."""
    from pipeline.flags import compute_flags, flag_summary

    result = compute_flags(table, threshold, config.flags, training=portfolio.features.iloc[split.train])
    O.write_parquet(Path(run_dir) / O.FLAGS, result.table)
    return flag_summary(result)


@plain
def benchmark_models(portfolio: Portfolio, split: SplitIndex, model: CreditModel, table: pd.DataFrame,
                     seed: int) -> BenchmarksSection:
    """The majority-class baseline and the challengers on the production split (seconds: not worth a cache)."""
    from pipeline.benchmarks import benchmark

    test = table.iloc[split.test]  # the production scores the performance section reads
    return benchmark(portfolio.features.iloc[split.train], portfolio.labels.iloc[split.train].to_numpy(),
                     portfolio.features.iloc[split.test], portfolio.labels.iloc[split.test].to_numpy(),
                     test["probability"].to_numpy(), model.threshold_, policy_of(model), model.features, seed=seed)


@plain
def stress_model(portfolio: Portfolio, split: SplitIndex, model: CreditModel, seed: int = 0) -> StressSection:
    """The production model re-scored on the held-out rows under the stated perturbations (seconds)."""
    from pipeline.stress import stress_test

    return stress_test(model, portfolio.features.iloc[split.test], portfolio.labels.iloc[split.test].to_numpy(),
                       portfolio.features.iloc[split.train], seed=seed)


@plain
def shift_fairness(portfolio: Portfolio, split: SplitIndex, model: CreditModel, checks: tuple[str, ...], device: str,
                   seed: int, n_boot: int) -> ShiftSection | None:
    """Fairness under demographic shift on the held-out split (pipeline.fairness.audit_shift); None without checks."""
    if not checks:
        return None
    import torch

    from pipeline.fairness import audit_shift

    X_test = portfolio.features.iloc[split.test]
    p_default = model.predict_proba(X_test)[:, 1]  # as the fairness audit reads them
    return audit_shift(X_test, portfolio.labels.iloc[split.test].to_numpy(), decisions(model, X_test), p_default, checks,
                       device=torch.device(device), seed=seed, n_boot=n_boot)


@plain
def conclude_run(record: RunRecord, fairness_table: str | None) -> dict[str, ConclusionSection | MonitoringSection]:
    """The page-1 conclusion (the fairness table names the groups of each gap) and the monitoring plan."""
    from pipeline.conclusion import conclude
    from pipeline.monitoring import monitoring_plan

    path = Path(fairness_table) if fairness_table else None
    return {"conclusion": conclude(record, pd.read_parquet(path) if path and path.exists() else None),
            "monitoring": monitoring_plan(record)}


@task
def render_report(run_dir: str, previous: str | None, key: str) -> list[str]:
    """Durable: the global audit PDF of the run (compared with the previous run when there is one)."""
    from reports import load_run, render_audit_report

    prev = load_run(previous) if previous else None
    return [str(render_audit_report(load_run(run_dir), Path(run_dir) / O.REPORT_PDF, prev))]


@task
def render_notice_chunk(run_dir: str, ids: list[int], workers: int, key: str, before: int = 0,
                        total: int | None = None) -> list[str]:
    """Durable: notices for a chunk of declined applicants (sanitised file names).

    Each finished notice is journalled, so a chunk killed half-way resumes at its first
    notice not yet written instead of rendering the whole chunk again. `before` (notices of
    the earlier chunks) and `total` (of the whole run) let the progress lines count the run,
    not the chunk: an operator wants the time left until the notices are done.
    """
    from reports import load_run, render_notices

    if multiprocessing.current_process().daemon:  # a Dask worker: daemonic processes may not start a pool
        workers = 1
    log = get_run_logger()
    journal = item_journal(run_dir, key)
    done = {i: p for i, p in journal.finished().items() if i in set(ids)}
    todo = [i for i in ids if i not in done]
    if done:
        log.info("notices: %d of this chunk's %d were written before the interruption; rendering the other %d",
                 len(done), len(ids), len(todo))
    progress = Progress("notices", total or len(ids), log.info, already=before + len(done))
    with heartbeat(progress):
        fresh = render_notices(load_run(run_dir), todo, Path(run_dir) / O.NOTICES_DIR, workers=workers,
                               progress=lambda n, *_: progress.update(before + len(done) + n), written=journal.add)
    done.update(zip(todo, map(str, fresh), strict=True))
    return [done[i] for i in ids]


@plain
def publish_artifacts(run_dir: str, table: pd.DataFrame) -> list[str]:
    from .artifacts import publish_review_artifacts

    flags = pd.read_parquet(Path(run_dir) / O.FLAGS)
    return publish_review_artifacts(run_dir, flags, table)
