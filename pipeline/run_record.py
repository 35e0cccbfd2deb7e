"""The run record: one typed definition of everything an audit run computed.

A run's results used to be a dict assembled in several places and read back
by several tolerant loaders; a key that drifted (`"count"` vs `"n"`) was
silently read as missing. Here, as in Evidently's typed snapshot, there is
one immutable type (`RunRecord`, made of frozen sections), one writer
(`write_record`) and one loader (`load_record`) with a format version:

- every section is a frozen pydantic model that forbids unknown keys, so a
  record that does not match this definition is refused on load with the
  file, the key path and what was expected, never half-read;
- sections a run may not compute (explanations, fairness, flags, what
  changed, human overrides of the previous run, benchmarks, the conclusion,
  governance) are `None` when absent, so records written before a section
  existed still load under the same format version;
- `record_digest` is the hash of the record's canonical JSON, which the
  report's cache key uses, so the report is re-rendered exactly when what it
  renders changes.

Analytic sub-results whose inner layout belongs to the module that computes
them (proxy analysis, mitigation variants, chart curves) are typed as JSON
values here; the keys that reports and review read are typed fields.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from ._io import atomic_write_text
from .constants import MAJORITY
from .layout import AUDIT_JSON

FORMAT_VERSION = 2
RECORD_FILE = AUDIT_JSON

MSG_MISSING = "{path}: no run record here ({name} is missing; a run directory holds it, see docs/outputs.md)"
MSG_NOT_JSON = "{path}: the run record is not valid JSON ({reason})"
MSG_NOT_OBJECT = "{path}: the run record must be a JSON object, got {got}"
MSG_FORMAT = (
    "{path}: run record format {got!r}; this version reads format {expected} only"
    " (re-run the audit with this version to rewrite it)"
)
MSG_INVALID = "{path}: the run record does not match format {expected}: {problems}"
MAX_LISTED_PROBLEMS = 5


class RecordError(ValueError):
    """A run record that is missing, damaged or of another format version."""


class _Section(BaseModel):
    """Frozen, strict about keys: a typo or a drifted key is an error, not a silent None."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# ---- data ----------------------------------------------------------------------------------------
class Finding(_Section):
    column: str
    value: float
    count: int
    message: str


class Range(_Section):
    min: float
    max: float


class SchemaRecord(_Section):
    """The schema file the data was read with: the shipped default, or the lender's (copied into the run)."""

    name: str  # the file's [source] name
    file: str  # "pipeline/schemas/uci_credit_card.toml", or the run's copy "schema.toml"
    sha256: str


class DataSection(_Section):
    source: str
    rows: int
    data_hash: str
    header_variant: str
    default_rate: float
    findings: tuple[Finding, ...]
    ranges: dict[str, Range]


class SplitSection(_Section):
    test_fraction: float
    train_rows: int
    test_rows: int
    seed: int


# ---- model ---------------------------------------------------------------------------------------
class Policy(_Section):
    kind: str
    value: float


class Epoch(_Section):
    epoch: int
    train_loss: float
    val_auc: float


class ModelSection(_Section):
    model_hash: str
    features: tuple[str, ...]
    excluded_inputs: tuple[str, ...]
    architecture: str
    hidden: tuple[int, ...]
    threshold: float
    policy: Policy
    policy_text: str
    best_epoch: int | None
    training: dict[str, JsonValue]
    preprocessing: JsonValue
    calibration: JsonValue
    history: tuple[Epoch, ...]
    reused_from: str | None = None
    # A lender's model audited as is (pipeline.adapters): its type, name, files and their SHA-256, the
    # library that ran it, and the card's decision policy. None for the project's own MLP.
    card: dict[str, JsonValue] | None = None


class Confusion(_Section):
    tn: int
    fp: int
    fn: int
    tp: int


class RocCurve(_Section):
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]


class CalibrationCurve(_Section):
    mean_predicted: tuple[float, ...]
    observed: tuple[float, ...]
    count: tuple[int, ...]


class Performance(_Section):
    """Figures of one split (pipeline.metrics.performance)."""

    rows: int
    roc_auc: float
    accuracy: float
    precision: float
    recall: float
    brier: float
    ece: float
    decline_rate: float
    confusion: Confusion
    roc_curve: RocCurve
    calibration_curve: CalibrationCurve


class Rule(_Section):
    conditions: tuple[str, ...]
    decision: str
    samples: int
    purity: float
    text: str


class SurrogateSection(_Section):
    max_depth: int
    n_leaves: int
    fidelity_test: float
    fidelity_train: float
    rules: tuple[Rule, ...]
    feature_importance: dict[str, float]
    # The fidelity's baseline: how often a "tree" that approves everyone agrees with the model
    # on the held-out rows (the model's held-out approval share).
    fidelity_approve_all_test: float | None = None


class Lender(_Section):
    name: str
    address: str
    contact: str
    review_contact: str
    data_protection_officer: str = ""


class Governance(_Section):
    """Who owns, validates and signs off the model, and what it is for ([audit.governance] of the configuration)."""

    model_owner: str = ""
    validator: str = ""
    intended_use: str = ""
    risk_tier: str = ""
    sign_off: tuple[str, ...] = ()


class NoticeSection(_Section):
    """What every notice of the run says about the law it is written under and how to reach the lender.

    `regime`: "eu" (GDPR Art. 13-15 and 22, AI Act Art. 86, complaint to
    `data_protection_authority`) or "us" (ECOA / Regulation B adverse-action
    statement naming `federal_agency`; the FCRA 615(a) text when
    `consumer_report_agency` names the agency whose report was used).
    """

    regime: str = "eu"
    postal_contact: str = ""
    email_contact: str = ""
    data_protection_authority: str = ""
    federal_agency: str = ""
    consumer_report_agency: str = ""


# ---- explanations --------------------------------------------------------------------------------
class ShapSummary(_Section):
    variant: str | None = None  # "TreeSHAP", "batched Kernel SHAP" or "shap KernelExplainer"; None: older records
    base: float
    background_rows: int
    n_coalitions: int | None
    max_additivity_gap: float


class StabilitySummary(_Section):
    top_k: int
    flag_below: float
    mean: float | None
    low: int
    undefined: int


class CounterfactualSummary(_Section):
    """How many declined applicants got a plausible counterfactual, and under which rules.

    `found / declined` is the found-rate; `found_by_applicant`: found with the
    applicant's own actions only (no credit-limit change); `violations`: found
    counterfactuals that break a rule of the schema, recounted independently
    after the search (zero unless the search has a bug); `margin`: every found
    counterfactual re-scores at most threshold - margin; `max_limit_factor`:
    a limit change stays within this factor of the current limit.
    """

    declined: int
    found: int
    found_by_applicant: int | None = None
    violations: int | None = None
    margin: float | None = None
    max_limit_factor: float | None = None

    @property
    def found_rate(self) -> float | None:
        return self.found / self.declined if self.declined else None


class ElderlyRule(_Section):
    """Regulation B, 12 CFR 1002.6(b)(2)(ii): no applicant aged `min_age` or more may have age counted against them.

    `age_is_input` False: age is not a model input, so it counts against no one (the counts are 0).
    `elderly`: applicants explained aged `min_age` or more; `age_counted_against`: of them, those whose
    SHAP value for age is positive; `declined_age_counted_against`: of those, the declined ones.
    """

    age_is_input: bool
    min_age: int
    elderly: int
    age_counted_against: int
    declined_age_counted_against: int


class CompletenessSummary(_Section):
    mean_completeness_gap: float


class ExplanationsSection(_Section):
    """pipeline.explain's portfolio summary (merged over chunks by pipeline.explain_chunks)."""

    backend: str
    device: str
    seed: int
    applicants: int
    declined: int
    features: tuple[str, ...]
    methods: dict[str, str]
    shap: ShapSummary
    global_importance: dict[str, dict[str, float]]
    agreement: dict[str, dict[str, float | None]]
    group_importance: dict[str, float]
    groups: dict[str, tuple[str, ...]]
    stability: StabilitySummary
    counterfactuals: CounterfactualSummary
    surrogate_vs_mlp: dict[str, JsonValue]
    integrated_gradients: CompletenessSummary | None = None  # None: the model is not differentiable
    limitations: dict[str, str]
    timings: dict[str, float]
    chunks: int = 1
    not_applicable: dict[str, str] = {}
    elderly_rule: ElderlyRule | None = None


# ---- fairness ------------------------------------------------------------------------------------
class Interval(_Section):
    """A disparity's point estimate and bootstrap interval (None where undefined)."""

    value: float | None
    lo: float | None
    hi: float | None
    valid_replicates: int | None = None


class FairnessThresholds(_Section):
    four_fifths: float
    parity_gap_max: float
    equalized_odds_gap_max: float
    ci_level: float


class AttributeVerdict(_Section):
    attribute: str
    kind: str
    groups_judged: tuple[str, ...]
    groups_insufficient: tuple[str, ...]
    favoured_group: str | None
    disparities: dict[str, Interval]
    verdict: str
    reasons: tuple[str, ...]


class FairnessSection(_Section):
    """pipeline.fairness's audit summary; the per-group rates are in fairness.parquet."""

    settings: dict[str, JsonValue]
    conventions: str
    rules: str
    thresholds: FairnessThresholds
    min_group_size: int
    min_outcome_count: int
    grouping: JsonValue
    attributes: tuple[AttributeVerdict, ...]
    verdicts: dict[str, str]
    proxies: tuple[dict[str, JsonValue], ...]
    unawareness_and_mitigation: dict[str, JsonValue] | None
    explanation_disparity: dict[str, JsonValue] | None


# ---- benchmarks and conclusion -------------------------------------------------------------------
class ModelScore(_Section):
    """One model's held-out figures on the production split (pipeline.benchmarks)."""

    key: str
    name: str
    description: str
    threshold: float
    roc_auc: Interval
    accuracy: float
    decline_rate: float
    brier: float
    ece: float
    auc_difference: Interval | None = None  # this model's AUC minus production's, on the same replicates
    reading: str = ""  # "higher", "lower" or "no clear difference" than production


class BenchmarksSection(_Section):
    """The production model against the majority-class baseline and challengers trained on the same split."""

    method: str
    n_boot: int
    seed: int
    rows: int
    ci_level: float
    production: ModelScore
    challengers: tuple[ModelScore, ...]

    def challenger(self, key: str) -> ModelScore | None:
        return next((c for c in self.challengers if c.key == key), None)


class Condition(_Section):
    """One finding the conclusion rests on: what, which groups, the figure, its limit and the action asked."""

    rule: str
    severity: str  # "blocking" (not fit) or "condition" (fit with conditions)
    subject: str
    groups: tuple[str, ...] = ()  # for a gap: the groups with the lowest and the highest rate
    basis: str = ""  # the rate those groups are ranked by
    figure: str
    value: Interval | None = None
    limit: float | None = None
    limit_text: str = ""
    action: str


class ConclusionSection(_Section):
    """The overall conclusion (pipeline.conclusion), derived from the other sections by stated rules."""

    outcome: str
    rules: tuple[str, ...]
    conditions: tuple[Condition, ...]


class StressCase(_Section):
    """The production model's held-out figures when every applicant's inputs are changed one stated way.

    The `*_ci` intervals (None in records written before they existed) come from one paired
    bootstrap of the held-out rows (`StressSection.method`): the same resample scores the
    unperturbed and the perturbed inputs, so a change and its interval are of the same people.
    """

    key: str
    description: str
    roc_auc: float
    decline_rate: float
    decline_rate_change: float  # minus the unperturbed decline rate
    decisions_changed: float  # share of held-out applicants whose decision changes
    mean_probability_change: float
    roc_auc_ci: Interval | None = None
    roc_auc_change: Interval | None = None  # perturbed minus unperturbed ROC AUC
    decline_rate_change_ci: Interval | None = None
    decisions_changed_ci: Interval | None = None


class StressSection(_Section):
    """Sensitivity and stress tests (pipeline.stress) on the held-out split; outcomes stay as observed."""

    rows: int
    cases: tuple[StressCase, ...]
    method: str = ""
    n_boot: int | None = None
    ci_level: float | None = None


# ---- fairness under demographic shift ------------------------------------------------------------
class ShiftFigure(_Section):
    """One verdict criterion of one attribute before and after a shift (pipeline.fairness.audit_shift).

    `degradation` is the move towards the wrong side of the criterion's limit (a gap that
    grows, a ratio that falls); negative when the figure improves; None where undefined.
    """

    disparity: str
    label: str
    before: Interval
    after: Interval
    degradation: float | None


class ShiftAttribute(_Section):
    """How one audited attribute's figures and verdict move under one shift."""

    attribute: str
    verdict_before: str
    verdict_after: str
    unchanged_by_construction: bool  # its groups lie within the shifted groups: every rate keeps its value
    figures: tuple[ShiftFigure, ...]
    reasons_after: tuple[str, ...]


class ShiftCase(_Section):
    """One shift: which group's share moved, from what to what, and every attribute's figures after it."""

    check: str  # as asked: "SEX:+0.1", "all"
    attribute: str
    group: str | None  # None only when skipped before a group could be chosen
    chosen: str  # "named" in the check, or "least favoured" (lowest approval rate unshifted)
    delta: float
    share_before: float | None
    share_after: float | None
    effective_rows: float | None  # Kish's effective sample size of the weights, (sum w)^2 / sum w^2
    status: str  # "ok" or "skipped"
    reason: str = ""
    attributes: tuple[ShiftAttribute, ...] = ()


class ShiftSection(_Section):
    """Fairness under demographic shift: each check reweights the held-out rows, every figure is recomputed."""

    definition: str
    method: str
    n_boot: int
    seed: int
    ci_level: float
    rows: int
    cases: tuple[ShiftCase, ...]


class Trigger(_Section):
    """One monitored measure: its value in this run, the limit that calls for re-validation, the action."""

    measure: str
    baseline: str
    limit: str
    action: str


class MonitoringSection(_Section):
    """The monitoring plan (pipeline.monitoring): what later runs are compared with, and when to re-validate."""

    cadence: str
    triggers: tuple[Trigger, ...]


# ---- flags, changes, overrides -------------------------------------------------------------------
class FlagsSection(_Section):
    """pipeline.flags's summary; one row per (applicant, flag) is in flags.parquet."""

    threshold: float
    applicants: int
    applicants_flagged: int
    total: int
    counts: dict[str, int]
    labels: dict[str, str]
    skipped: dict[str, str]
    config: dict[str, JsonValue]


class Drift(_Section):
    label: str
    psi: float
    reading: str


class Delta(_Section):
    previous: float | None
    current: float | None
    change: float | None


class BeforeAfter(_Section):
    previous: dict[str, JsonValue]
    current: dict[str, JsonValue]


class ChangesSection(_Section):
    """pipeline.drift's comparison with the previous run."""

    previous_run: str
    previous_created: str
    same_model: bool
    same_data: bool
    data_drift: dict[str, Drift]
    drifted_features: tuple[str, ...]
    performance: dict[str, Delta]
    fairness_verdicts: BeforeAfter
    flag_counts: BeforeAfter


class Override(_Section):
    applicant_id: int
    model_decision: str
    final_decision: str
    outcome: str
    outcome_label: str
    reviewer: str
    reason: str
    created: str
    seq: int


class HumanOverrides(_Section):
    previous_run: str
    items: tuple[Override, ...]


class GateCheck(_Section):
    """One check of the release policy (pipeline.gates): the figure, the limit, and whether it held."""

    rule: str
    subject: str
    figure: str
    limit: str
    passed: bool
    message: str


class GatesSection(_Section):
    """The release policy's outcome: `passed` only when no check failed."""

    passed: bool
    checks: tuple[GateCheck, ...]
    failed: tuple[GateCheck, ...]


# ---- the record ----------------------------------------------------------------------------------
class RunRecord(_Section):
    """Everything one audit run computed (docs/outputs.md, "audit.json")."""

    format: int = FORMAT_VERSION
    run_id: str
    created: str
    seed: int
    device: str
    code_version: str
    config: dict[str, JsonValue]
    lender: Lender
    governance: Governance | None = None
    notice: NoticeSection = NoticeSection()
    data: DataSection
    schema_file: SchemaRecord | None = None  # absent in runs of the default schema made before it was recorded
    split: SplitSection
    model: ModelSection
    performance: dict[str, Performance]
    surrogate: SurrogateSection
    decisions: dict[str, int]
    versions: dict[str, str]
    explanations: ExplanationsSection | None = None
    fairness: FairnessSection | None = None
    flags: FlagsSection | None = None
    changes: ChangesSection | None = None
    human_overrides: HumanOverrides | None = None
    gates: GatesSection | None = None
    benchmarks: BenchmarksSection | None = None
    conclusion: ConclusionSection | None = None
    monitoring: MonitoringSection | None = None
    stress: StressSection | None = None
    shift: ShiftSection | None = None
    timings: dict[str, float] = {}

    def held_out(self) -> Performance:
        """The out-of-sample figures: the test split, or every row when a reused model was audited."""
        return self.performance.get("test") or self.performance["all"]

    def held_out_default_rate(self) -> float:
        """The observed default rate of the held-out rows (read off the confusion matrix)."""
        held_out = self.held_out()
        return (held_out.confusion.fn + held_out.confusion.tp) / held_out.rows if held_out.rows else math.nan

    def approve_everyone_accuracy(self) -> float:
        """Held-out accuracy of approving everyone: the majority-class benchmark's, else 1 - the default rate.

        The one definition of the accuracy baseline that page 1, the benchmarks and the conclusion print.
        """
        majority = self.benchmarks.challenger(MAJORITY) if self.benchmarks else None
        return majority.accuracy if majority is not None else 1.0 - self.held_out_default_rate()

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def record_digest(record: RunRecord, *, without: tuple[str, ...] = ("timings",)) -> str:
    """SHA-256 of the record's canonical JSON (sorted keys), leaving out fields that do not affect outputs."""
    data = record.model_dump(mode="json", exclude=set(without))
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_record(run_dir: str | Path, record: RunRecord) -> Path:
    """The one writer of a run record (atomic: a crash never leaves half a record)."""
    return atomic_write_text(Path(run_dir) / RECORD_FILE, record.to_json())


def _problems(exc: ValidationError) -> str:
    errors = exc.errors()
    listed = [f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in errors[:MAX_LISTED_PROBLEMS]]
    more = len(errors) - len(listed)
    return "; ".join(listed) + (f"; and {more} more" if more > 0 else "")


def parse_record(text: str, path: str | Path = RECORD_FILE) -> RunRecord:
    """Parse and validate a record's JSON text; RecordError names `path` and what is wrong."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(MSG_NOT_JSON.format(path=path, reason=exc)) from None
    if not isinstance(data, dict):
        raise RecordError(MSG_NOT_OBJECT.format(path=path, got=type(data).__name__))
    if data.get("format") != FORMAT_VERSION:
        raise RecordError(MSG_FORMAT.format(path=path, got=data.get("format"), expected=FORMAT_VERSION))
    try:
        return RunRecord.model_validate(data)
    except ValidationError as exc:
        raise RecordError(MSG_INVALID.format(path=path, expected=FORMAT_VERSION, problems=_problems(exc))) from None


def load_record(run_dir: str | Path) -> RunRecord:
    """The one loader of a run record."""
    path = Path(run_dir) / RECORD_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordError(MSG_MISSING.format(path=Path(run_dir), name=RECORD_FILE)) from None
    except UnicodeDecodeError as exc:
        raise RecordError(MSG_NOT_JSON.format(path=path, reason=exc)) from None
    return parse_record(text, path)
