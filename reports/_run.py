"""A finished run, loaded once and read-only: what every report renders from.

Reports never see a model or the raw CSV (Evidently's "compute once, render
at the edge"): they read the run directory that the flow wrote
(docs/outputs.md) into a `RunResult`: the typed, frozen run record
(`pipeline.run_record`, read by its one loader) and the tables, handed out as
copy-on-write views, so a renderer cannot change what the next renderer sees.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from pipeline import outputs as O
from pipeline import schema as S
from pipeline.columns import SHAP, SHAP_BASE, columns_of
from pipeline.run_record import RunRecord, load_record

MSG_NOT_A_RUN = (
    "{path}: not a finished run directory: {missing} is missing"
    " (a run holds audit.json and applicants.parquet, see docs/outputs.md)"
)
MSG_MISSING_COLUMNS = "{path}: applicants.parquet lacks the column(s) {missing}"
MSG_UNKNOWN_APPLICANT = "applicant {id!r} is not in run {run_id}"
MSG_BAD_ID = "an applicant id is a whole number, got {id!r}"

REQUIRED_COLUMNS = ("id", "probability", "decision")
# The tables a report reads beside the record (their hashes are part of the report's cache key).
REPORT_TABLES = (O.APPLICANTS, O.FAIRNESS, O.FLAGS)


def _freeze(value: Any) -> Any:
    """Deep read-only copy of parsed JSON: dicts become mappingproxies, lists tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _json_cell(value: Any) -> Any:
    """A JSON-in-a-cell column (reasons, counterfactual): parsed, or None when empty."""
    if _missing(value) or value == "":
        return None
    return _freeze(json.loads(value)) if isinstance(value, str) else _freeze(value)


def parse_applicant_id(value: object) -> int:
    """Applicant ids are integers (docs/outputs.md); anything else is refused, not guessed."""
    if isinstance(value, bool):
        raise ValueError(MSG_BAD_ID.format(id=value))
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        raise ValueError(MSG_BAD_ID.format(id=value))
    return int(text)


@dataclass(frozen=True)
class Applicant:
    """One applicant of a run: identity, outcome, raw features and their explanation."""

    id: int
    split: str
    probability: float
    decision: str
    features: Mapping[str, float]
    shap: Mapping[str, float] | None
    shap_base: float | None
    reasons: tuple | None
    counterfactual: Mapping | None
    stability: float | None

    @property
    def declined(self) -> bool:
        return self.decision == "decline"


@dataclass(frozen=True)
class RunResult:
    """The contents of one run directory: its `record` and its tables."""

    path: Path
    record: RunRecord
    _applicants: pd.DataFrame
    _fairness: pd.DataFrame | None
    _flags: pd.DataFrame | None

    # ---- identity --------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.record.run_id

    # ---- tables (copy-on-write views: changing them never changes the run) ----
    @property
    def applicants(self) -> pd.DataFrame:
        return self._applicants.copy(deep=False)

    @property
    def fairness(self) -> pd.DataFrame | None:
        return None if self._fairness is None else self._fairness.copy(deep=False)

    @property
    def flags(self) -> pd.DataFrame | None:
        return None if self._flags is None else self._flags.copy(deep=False)

    @property
    def model_features(self) -> tuple[str, ...]:
        return self.record.model.features

    @property
    def has_shap(self) -> bool:
        return bool(columns_of(self._applicants, SHAP))

    def declined_ids(self) -> list[int]:
        frame = self._applicants
        return [int(i) for i in frame.loc[frame["decision"] == "decline", "id"]]

    def applicant(self, applicant_id: object) -> Applicant:
        """One applicant's record; raises KeyError with the run id when unknown."""
        key = parse_applicant_id(applicant_id)
        rows = self._applicants.index[self._applicants["id"].to_numpy() == key]
        if len(rows) == 0:
            raise KeyError(MSG_UNKNOWN_APPLICANT.format(id=applicant_id, run_id=self.run_id))
        row = self._applicants.loc[rows[0]]
        features = {n: float(row[n]) for n in S.FEATURE_NAMES if n in row.index}
        shap = None
        if self.has_shap:
            values = {n: float(row[c]) for c, n in columns_of(row.index, SHAP, self.model_features).items()}
            shap = None if all(math.isnan(v) for v in values.values()) else MappingProxyType(values)
        base = row.get(SHAP_BASE)
        stability = row.get("stability")
        return Applicant(
            id=key,
            split=str(row.get("split", "")),
            probability=float(row["probability"]),
            decision=str(row["decision"]),
            features=MappingProxyType(features),
            shap=shap,
            shap_base=None if _missing(base) else float(base),
            reasons=_json_cell(row.get("reasons")),
            counterfactual=_json_cell(row.get("counterfactual")),
            stability=None if _missing(stability) else float(stability),
        )


def _read_optional(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None


def load_run(run_dir: str | Path) -> RunResult:
    """Read a finished run directory; fails with one clear message when it is not one."""
    path = Path(run_dir)
    for name in (O.AUDIT_JSON, O.APPLICANTS):
        if not (path / name).is_file():
            raise FileNotFoundError(MSG_NOT_A_RUN.format(path=path, missing=name))
    S.activate_for_run(path)  # names, labels and reason wording of the data this run audited
    record = load_record(path)
    applicants = pd.read_parquet(path / O.APPLICANTS)
    missing = [c for c in REQUIRED_COLUMNS if c not in applicants.columns]
    if missing:
        raise ValueError(MSG_MISSING_COLUMNS.format(path=path, missing=missing))
    return RunResult(
        path=path,
        record=record,
        _applicants=applicants,
        _fairness=_read_optional(path / O.FAIRNESS),
        _flags=_read_optional(path / O.FLAGS),
    )
