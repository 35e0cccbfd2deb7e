"""The audit flow: wires the tasks of flows/tasks.py into one run.

Load -> split -> model -> surrogate -> score -> explain (chunks) -> fairness
-> flags -> what changed -> challengers, stress, conclusion -> tables and
audit.json -> global report ->
notices (chunks) -> Prefect artifacts -> manifest. Expensive steps are
durable, so running the same command after a crash resumes; chunked steps
are mapped, so `--runner dask` spreads them over a cluster.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline import CreditModel, atomic_write_bytes, remove_temporaries, resolve_device, scoring
from pipeline import outputs as O
from pipeline import schema as S
from pipeline.audited_model import AuditedModel
from pipeline.config import AuditConfig
from pipeline.constants import EXPLAIN_CHUNK_ROWS
from pipeline.drift import compare_runs
from pipeline.explain import background_sample
from pipeline.explain_chunks import chunk_bounds, merge_summaries
from pipeline.gates import evaluate_gates
from pipeline.model import seed_everything
from pipeline.run_record import (
    ExplanationsSection,
    FairnessSection,
    FlagsSection,
    HumanOverrides,
    RecordError,
    RunRecord,
    SchemaRecord,
    load_record,
    record_digest,
    write_record,
)
from pipeline.signing import resolve_signer
from reports import REPORT_TABLES, notice_context, pdf_engine_patches
from review import REVIEW_DIR, review_overrides

from . import tasks as T
from .caching import durable, inputs_digest, step_key
from .identity import code_version, fixed_time, run_id_for
from .progress import Progress, heartbeat
from .sealing import seal_and_publish

NOTICE_CHUNK = 1000


def _schema_of(record: RunRecord) -> str:
    """The SHA-256 of the schema file a run read its data with (a run that records none read the default)."""
    return record.schema_file.sha256 if record.schema_file else _sha256(S.read_schema(None)[1])


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def find_previous_run(run_dir: Path, current_id: str, schema_sha256: str) -> Path | None:
    """The newest other finished run beside this one (by its recorded creation time) of the same schema
    file, for 'what changed': a run of other columns is not an earlier version of this one."""
    candidates = []
    for audit in run_dir.resolve().parent.glob(f"*/{O.AUDIT_JSON}"):
        if audit.parent == run_dir.resolve() or not (audit.parent / O.MANIFEST).exists():
            continue
        try:
            record = load_record(audit.parent)
        except RecordError:
            continue  # damaged, or written by another format version: not comparable
        if record.run_id != current_id and _schema_of(record) == schema_sha256:
            candidates.append((record.created, audit.parent))
    return max(candidates)[1] if candidates else None


class _Timer:
    """Wall-clock seconds per step, recorded in audit.json."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self._t, 3)
        self._t = now


def _model(portfolio, split, config, device, run_dir: Path, key,
           given: AuditedModel | None) -> tuple[AuditedModel, list[Path]]:
    """A given production model (loaded once, by the flow) is audited as is; otherwise train (durable) and load
    what was saved."""
    if given is not None:
        model = given
        if isinstance(model, CreditModel):
            return model, model.save(run_dir / O.MODEL_DIR)  # the audited model travels with its run
        return model, T.keep_model_files(model, run_dir)
    files = durable(T.train_model, run_dir)(portfolio, split, config, device, str(run_dir / O.MODEL_DIR),
                                            key=key("train"))
    return T.load_model(str(Path(files[0]).parent), device), [Path(f) for f in files]


def _explain(run_dir, model, surrogate, portfolio, split, table, config, device, key,
             chunk_rows) -> tuple[pd.DataFrame, dict, Path]:
    """Explanation chunks mapped as tasks; their columns joined to the table, their summaries merged."""
    training = portfolio.features.iloc[split.train]
    background = background_sample(training[list(model.features)], config.background_size, config.seed)
    background_file = O.write_parquet(run_dir / O.BACKGROUND, background.reset_index(names="row"))
    declined = (table["decision"] == "decline").to_numpy()
    bounds = chunk_bounds(len(table), chunk_rows)
    task = durable(T.explain_chunk, run_dir)
    futures = [
        task.submit(
            str(run_dir), model, surrogate, portfolio.features.iloc[a:b], portfolio.labels.to_numpy()[a:b],
            declined[a:b], background, training, device, config.seed, f"explain_{i:03d}", key=key("explain", a, b),
            counterfactual_margin=config.counterfactuals.margin,
            max_limit_factor=config.counterfactuals.max_limit_factor,
        )
        for i, (a, b) in enumerate(bounds)
    ]
    progress = Progress("explanations (applicants)", len(table), get_run_logger().info)
    outputs = []  # [summary JSON, columns Parquet] per chunk
    with heartbeat(progress):
        for (_, stop), future in zip(bounds, futures, strict=True):
            outputs.append(future.result())
            progress.update(stop)
    columns = pd.concat([pd.read_parquet(parquet) for _, parquet in outputs], ignore_index=True)
    summaries = [json.loads(Path(summary).read_text()) for summary, _ in outputs]
    frames = [portfolio.features.iloc[a:b] for a, b in bounds]
    return columns, merge_summaries(summaries, frames, portfolio.features), background_file


def _rows_digest(table: pd.DataFrame, ids: list[int]) -> str:
    """SHA-256 of these applicants' rows (every column: data, decision, explanation, reasons, counterfactual)."""
    rows = table[table["id"].isin(ids)]
    return hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes()).hexdigest()


def _notices(run_dir: Path, record: RunRecord, table: pd.DataFrame, key, workers: int,
             limit: int | None) -> list[Path]:
    """Notice chunks, each keyed on its applicants' rows and the part of the record a notice shows."""
    ids = table.loc[table["decision"] == "decline", "id"].astype(int).tolist()[:limit]
    task = durable(T.render_notice_chunk, run_dir)
    chunks = [ids[i : i + NOTICE_CHUNK] for i in range(0, len(ids), NOTICE_CHUNK)]
    context = notice_context(record)
    futures = [
        task.submit(str(run_dir), chunk, workers,
                    key=key("notices", inputs_digest(chunk, _rows_digest(table, chunk), context)),
                    before=i * NOTICE_CHUNK, total=len(ids))
        for i, chunk in enumerate(chunks)
    ]
    return [Path(p) for f in futures for p in f.result()]


def _prune_notices(run_dir: Path, keep: list[Path]) -> int:
    """Remove notices of this run that this invocation did not (re)issue (e.g. a smaller --notice-limit).

    Only this run's own folder is touched (the folder is claimed by run id), and only its notices:
    the manifest must seal exactly what this invocation stands behind.
    """
    wanted = {p.resolve() for p in keep}
    stale = [p for p in (run_dir / O.NOTICES_DIR).glob("*.pdf") if p.resolve() not in wanted]
    for p in stale:
        p.unlink()
    return len(stale)


def _report_inputs(run_dir: Path, record: RunRecord, previous: RunRecord | None) -> str:
    """What the global report renders: this record, the run's tables, and the previous run's record."""
    tables = [O.sha256_file(p) if p.exists() else None for p in (run_dir / t for t in REPORT_TABLES)]
    return inputs_digest(record_digest(record), tables, record_digest(previous) if previous else None)


def _created(run_dir: Path, run_id: str, fixed: str | None) -> str:
    """A fixed (reproducible) time, else a resumed run keeps its creation time, so re-running changes no identity."""
    if fixed:
        return fixed
    try:
        old = load_record(run_dir)
    except RecordError:
        old = None
    return old.created if old and old.run_id == run_id else datetime.now(UTC).isoformat(timespec="seconds")


def _compare(record: RunRecord, table: pd.DataFrame, previous_dir: Path, previous: RunRecord) -> RunRecord:
    """The record with 'what changed' since the previous run and the human overrides recorded in it."""
    changes = compare_runs(previous, record, pd.read_parquet(previous_dir / O.APPLICANTS), table)
    overrides = HumanOverrides(previous_run=previous.run_id, items=tuple(review_overrides(previous_dir)))
    return record.model_copy(update={"changes": changes, "human_overrides": overrides})


def _assess(record: RunRecord, portfolio, split, model: CreditModel, table: pd.DataFrame, seed: int,
            fairness_table: str) -> RunRecord:
    """The record with the challengers and stress tests and, read off everything else, the conclusion and
    monitoring plan."""
    record = record.model_copy(update={"benchmarks": T.benchmark_models(portfolio, split, model, table, seed),
                                       "stress": T.stress_model(portfolio, split, model, seed)})
    return record.model_copy(update=T.conclude_run(record, fairness_table))


# Locally, chunks run one after another: each already uses every core (torch threads,
# the notice process pool). `--runner dask` swaps in a DaskTaskRunner (flows/runners.py).
@flow(name="credit-audit", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=1))
def audit_flow(
    data: str | None = None,
    out: str | None = None,
    config: dict | None = None,
    model_dir: str | None = None,
    schema_file: str | None = None,
    previous: str | None = None,
    explain_chunk_rows: int = EXPLAIN_CHUNK_ROWS,
    notice_workers: int = 2,
    notice_limit: int | None = None,
    replace: bool = False,
    reproducible: bool = False,
    unsigned: bool = False,
) -> str:
    """The whole audit of one data file. Returns the run directory.

    `config` is `AuditConfig.to_dict()` (plain data, so deployments and schedules carry it);
    `model_dir` audits a saved model without retraining (a run's model/ folder, or a lender's model
    file with its card); `schema_file` is the schema file of the data (None: the default UCI layout;
    it is copied into the run); `previous` is the run to compare
    with (default: the newest other run beside this one). `notice_limit` renders only the
    first N declined applicants' notices (a dry run; None = all). A folder that holds another
    run is refused unless `replace` (then it is cleared first). `reproducible` (or the
    SOURCE_DATE_EPOCH variable) makes every output byte-identical for the same inputs: a fixed
    creation time and no wall-clock timings in the record (they go to the log). The run is
    sealed with the operator's signing key; without one it is refused at the start unless
    `unsigned` (then `verify` can only check internal consistency).
    """
    spec, schema_raw, schema_shown = S.read_schema(schema_file)
    S.activate(spec)  # before the configuration, which may name the schema's attributes
    config = AuditConfig.from_dict(config or {})
    device = str(resolve_device(config.device))
    seed_everything(config.seed)
    log, timer = get_run_logger(), _Timer()
    located = T.locate_data(data)
    fixed = fixed_time(located, reproducible)
    portfolio = T.load_data(located)
    given = T.load_given_model(model_dir, device) if model_dir else None  # read once: hashed and audited
    reused_hash = given.model_hash() if given is not None else None
    run_id = run_id_for(portfolio.data_hash, config.identity(), reused_hash, T.schema_hash(schema_file, schema_raw))
    run_dir = Path(out) if out else Path("runs") / run_id
    resolve_signer(unsigned=unsigned, run_dir=run_dir)  # no key: refused now, not after the whole audit
    run_dir = O.claim_run_dir(run_dir, run_id, replace)
    if stale := remove_temporaries(run_dir, skip=(REVIEW_DIR,)):  # the review app may be writing there
        log.info("removed %d half-written file(s) an interrupted run left in %s", stale, run_dir)
    key = partial(step_key, run_dir=run_dir, data_hash=portfolio.data_hash,
                  config={**config.identity(), "device": device, "model": reused_hash})
    timer.lap("load")

    split = T.split_data(portfolio, config)
    model, written = _model(portfolio, split, config, device, run_dir, key, given)
    if schema_file:  # the run is read with its own schema again (reports.load_run, the review app)
        written.append(atomic_write_bytes(run_dir / O.SCHEMA_FILE, schema_raw))
    schema_record = SchemaRecord(name=spec.source.name, file=O.SCHEMA_FILE if schema_file else schema_shown,
                                 sha256=_sha256(schema_raw))
    timer.lap("model")
    surrogate = T.fit_surrogate(portfolio, split, model, config)
    table = T.score(portfolio, split, model, surrogate)
    timer.lap("surrogate_and_score")

    columns, explanations, background_file = _explain(run_dir, model, surrogate, portfolio, split, table, config,
                                                      device, key, explain_chunk_rows)
    table = pd.concat([table, columns], axis=1)
    timer.lap("explain")
    fairness_json, fairness_table = durable(T.fairness_audit, run_dir)(
        str(run_dir), portfolio, split, model, table, device, config.seed, key=key("fairness"))
    timer.lap("fairness")
    flags = T.flag_applicants(str(run_dir), table, portfolio, split, model.threshold_, config)
    timer.lap("flags")

    core = scoring.core_record(
        run_id=run_id, created=_created(run_dir, run_id, fixed), config=config, device=device,
        code_version=code_version(), portfolio=portfolio, split=split, model=model, surrogate=surrogate,
        table=table, reused_from=model_dir,
    )
    record = core.model_copy(update={
        "schema_file": schema_record,
        "explanations": ExplanationsSection.model_validate({**explanations, "timings": {}} if fixed else explanations),
        "fairness": FairnessSection.model_validate_json(Path(fairness_json).read_text()),
        "flags": FlagsSection.model_validate(flags),
        "versions": {**core.versions, "weasyprint_patches": ", ".join(pdf_engine_patches()) or "none (refused)"},
    })
    previous_dir = Path(previous) if previous else find_previous_run(run_dir, run_id, schema_record.sha256)
    before = load_record(previous_dir) if previous_dir else None  # read once: comparison, gates, report key
    if before:
        record = _compare(record, table, previous_dir, before)
    record = _assess(record, portfolio, split, model, table, config.seed, fairness_table)
    timer.lap("challengers_stress_and_conclusion")
    n_boot = int(record.fairness.settings["n_boot"])  # the fairness audit's: the unshifted figures are its own
    record = record.model_copy(update={"shift": T.shift_fairness(portfolio, split, model, config.shift.checks, device,
                                                                 config.seed, n_boot)})
    timer.lap("shift")
    gates = evaluate_gates(record, config.gates, before)
    record = record.model_copy(update={"gates": gates})
    if not gates.passed:
        log.warning("release gates FAILED: %s", "; ".join(c.message for c in gates.failed))
    O.write_parquet(run_dir / O.APPLICANTS, table)
    write_record(run_dir, record.model_copy(update={"timings": {} if fixed else dict(timer.times)}))

    report = durable(T.render_report, run_dir)(str(run_dir), str(previous_dir) if previous_dir else None,
                                                key=key("report", _report_inputs(run_dir, record, before)))
    timer.lap("report")
    notices = _notices(run_dir, record, table, key, notice_workers, notice_limit)
    if pruned := _prune_notices(run_dir, notices):
        log.info("removed %d notice(s) of an earlier invocation of this run that this one did not issue", pruned)
    timer.lap("notices")
    write_record(run_dir, record.model_copy(update={"timings": {} if fixed else dict(timer.times)}))
    T.publish_artifacts(str(run_dir), table)
    written += [background_file, Path(fairness_table), run_dir / O.FLAGS, run_dir / O.APPLICANTS,
                run_dir / O.AUDIT_JSON, *map(Path, report), *notices]
    seal_and_publish(run_dir, written, unsigned=unsigned)  # manifest.json + .sig; the signing key was checked first
    log.info("step timings (s): %s", ", ".join(f"{k} {v:.1f}" for k, v in timer.times.items()))
    log.info("run %s: %d notices, report and tables written to %s", run_id, len(notices), run_dir)
    return str(run_dir)
