"""The run as the review app reads it: applicants by id, their flags, and what the run lacks.

Read once at start-up (the run's outputs never change; reviews live in the
store). Columns that later issues add (SHAP, LIME, reasons, counterfactual,
stability, surrogate path) are optional: a missing one is reported as
"not computed in this run", never an error. When the run has no
flags.parquet (a run written before flags existed) the flags are computed
here with the default FlagConfig, and the app says so.
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import outputs as O
from pipeline import schema as S
from pipeline.columns import columns_of
from pipeline.flags import FLAG_LABELS, FlagConfig, compute_flags
from pipeline.run_record import RunRecord
from pipeline.surrogate import DECISIONS, Surrogate

NOTICES_DIR, REPORT_PDF = O.NOTICES_DIR, O.REPORT_PDF
NOT_COMPUTED = "Not computed in this run"
MSG_UNKNOWN = "applicant {id} is not in run {run_id}"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v == ""


def json_cell(v: Any) -> Any:
    """A JSON-in-a-cell value (reasons, counterfactual, surrogate_path), or None when empty or unreadable."""
    if _missing(v):
        return None
    if not isinstance(v, str):
        return v
    try:
        return json.loads(v)
    except ValueError:
        return None


def notice_file(applicant_id: int) -> Path:
    """Relative path of an applicant's notice, named as the reports package names it."""
    try:
        name = importlib.import_module("reports").notice_filename(int(applicant_id))
    except (ImportError, AttributeError):
        name = f"notice_{int(applicant_id)}.pdf"
    return NOTICES_DIR / name


@dataclass
class ReviewRun:
    """One run directory, loaded for review."""

    path: Path
    record: RunRecord
    applicants: pd.DataFrame  # indexed by id
    flags: pd.DataFrame  # id, code, reason, value
    flags_computed_here: bool
    _report_run: Any = field(default=None, repr=False)
    _surrogate: Any = field(default=None, repr=False)
    _surrogate_checked: bool = field(default=False, repr=False)

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def threshold(self) -> float:
        return self.record.model.threshold

    @property
    def model_features(self) -> list[str]:
        return list(self.record.model.features)

    def has(self, column: str) -> bool:
        return column in self.applicants.columns

    def explained(self, method: str) -> dict[str, str]:
        """{column: feature} of an explanation method's columns in this run, in schema order."""
        return columns_of(self.applicants, method, S.FEATURE_NAMES)

    def row(self, applicant_id: int) -> pd.Series:
        try:
            return self.applicants.loc[int(applicant_id)]
        except KeyError:
            raise KeyError(MSG_UNKNOWN.format(id=applicant_id, run_id=self.run_id)) from None

    def flags_of(self, applicant_id: int) -> pd.DataFrame:
        return self.flags[self.flags["id"] == int(applicant_id)]

    def notice_pdf(self, applicant_id: int) -> Path | None:
        p = self.path / notice_file(applicant_id)
        return p if p.is_file() else None

    def report_pdf(self) -> Path | None:
        p = self.path / REPORT_PDF
        return p if p.is_file() else None

    def report_run(self):  # noqa: ANN201 - reports.RunResult (the reports package is loaded lazily)
        """The run as the reports package reads it (what notices are rendered from), loaded once."""
        if self._report_run is None:
            self._report_run = importlib.import_module("reports").load_run(self.path)
        return self._report_run

    def notice_html(self, applicant_id: int, review: Any = None) -> str | None:  # noqa: ANN401
        """The reports package's HTML notice for this applicant (as re-issued after `review`, when given)."""
        try:
            reports = importlib.import_module("reports")
        except ImportError:
            return None
        render, load = getattr(reports, "notice_html", None), getattr(reports, "load_run", None)
        if render is None or load is None:
            return None
        return str(render(self.report_run(), int(applicant_id), review=review))

    def surrogate(self) -> Surrogate | None:
        """The run's surrogate tree, refitted from the run's own training rows and the model's decisions.

        The tree is deterministic given those rows, its depth and seed (all in the run), so it is
        rebuilt rather than stored; it is used only when it reproduces the recorded
        `surrogate_decision` of every applicant, otherwise None (and the page says the path is
        not available).
        """
        if self._surrogate_checked:
            return self._surrogate
        self._surrogate_checked = True
        t, record = self.applicants, self.record
        depth, seed = record.surrogate.max_depth, record.seed
        features = tuple(self.model_features)
        needed = {"split", "decision", "surrogate_decision", *features}
        if not needed <= set(t.columns):
            return None
        train = t[t["split"] == "train"]
        tree = Surrogate(features=features, max_depth=int(depth), seed=int(seed))
        tree.fit(train, (train["decision"] == DECISIONS[1]).to_numpy(np.int64))
        if np.array_equal(np.take(DECISIONS, tree.predict(t)), t["surrogate_decision"].to_numpy()):
            self._surrogate = tree
        return self._surrogate

    def surrogate_path(self, applicant_id: int) -> list[dict] | None:
        """The applicant's path through the surrogate tree: the recorded column, else the refitted tree."""
        if self.has("surrogate_path"):
            return json_cell(self.row(applicant_id)["surrogate_path"])
        tree = self.surrogate()
        if tree is None:
            return None
        return tree.decision_path(self.applicants.loc[[int(applicant_id)]])

    @property
    def has_notice_html(self) -> bool:
        try:
            reports = importlib.import_module("reports")
        except ImportError:
            return False
        return hasattr(reports, "notice_html") and hasattr(reports, "load_run")


def load_review_run(run_dir: str | Path, flag_config: FlagConfig | None = None) -> ReviewRun:
    """Read the run through the one loader of a run directory (`reports.load_run`), flags computed when absent."""
    from reports import load_run

    run = load_run(run_dir)
    table = run.applicants
    flags, computed = run.flags, run.flags is None
    if flags is None:
        flags = compute_flags(table, run.record.model.threshold, flag_config).table
    flags = flags.assign(label=flags["code"].map(lambda c: FLAG_LABELS.get(c, c)))
    applicants = table.set_index("id", drop=False)
    return ReviewRun(path=run.path, record=run.record, applicants=applicants, flags=flags, flags_computed_here=computed,
                     _report_run=run)
