"""Check a data file against a schema file: every cell, with the line and column of each problem.

`credit-audit check-schema` runs this before a lender's file is audited, so
that a mismatch between what the schema declares and what the file holds is
found by the person who wrote the schema, with the line to look at, rather
than by a model that silently reads a code it was never told about. Value
checks are one pandera schema built from the schema file
(`pipeline.schema_pandera`), the same the default UCI loader validates with,
so the two never disagree about what a valid value is.

Problems are collected, not raised one at a time: a person fixing a file
wants the first few at once. Structural problems (encoding, header, a row of
the wrong length) stop the check, since nothing after them can be located.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandera.errors import SchemaErrors

from ._loading import (
    DataValidationError,
    _check_line_lengths,
    _csv_rows,
    _listed,
    _read_text,
    _row_lengths,
)
from .schema_file import FeatureSpec, SchemaSpec
from .schema_pandera import is_text, label_is_text, pandera_schema

MSG_EMPTY = "{file}: the file is empty; expected a header line and at least one row"
MSG_HEADER_ONLY = "{file}: the file has a header but no rows"
MSG_DUPLICATE_COLUMNS = "{file}: line 1: duplicate column(s) {dups} in the header"
MSG_MISSING = "{file}: line 1: missing column(s) {missing} that the schema declares; the header has {header}"
MSG_UNKNOWN = (
    "{file}: line 1: column(s) {unknown} are not in the schema; declare them in the schema file or remove them"
)
MSG_NOT_NUMBER = "expected a number, got {value!r}"
MSG_NOT_WHOLE = "expected a whole number, got {value!r}"
MSG_NOT_DATE = "expected a date written as YYYY-MM-DD, got {value!r}"
MSG_VALUE = "got {value}, expected {expected}"
MSG_BLANK_ID = "expected an applicant id, got a blank cell"
MSG_DUPLICATE_ID = "duplicate id {value!r} (first seen on line {first})"
MSG_UNDOCUMENTED = "{label}: {count} row(s) use {code!r} ({meaning}), a code the schema marks as undocumented"
MAX_PROBLEMS = 10  # problems listed; the total is always given


@dataclass(frozen=True)
class Problem:
    """One cell (or row) that does not match the schema."""

    line: int
    column: str
    message: str

    def text(self, file: Path) -> str:
        return f"{file}: line {self.line}, column {self.column}: {self.message}"


@dataclass(frozen=True)
class CheckReport:
    """What `check_data` found: rows read, problems (first `MAX_PROBLEMS` kept), findings that do not fail."""

    file: Path
    rows: int
    problems: tuple[Problem, ...]
    problem_count: int
    findings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.problem_count == 0


def _canonical(name: str, spec: SchemaSpec) -> str:
    """A header cell under the name the schema gives its column (an alias: PAY_1 for PAY_0)."""
    if name in spec.label.aliases:
        return spec.label.column
    return next((f.name for f in spec.features if name in f.aliases), name)


def _header(names: list[str], spec: SchemaSpec, file: Path) -> None:
    dups = sorted(n for n, k in Counter(names).items() if k > 1)
    if dups:
        raise DataValidationError(MSG_DUPLICATE_COLUMNS.format(file=file, dups=_listed(dups)))
    expected = [f.name for f in spec.features] + [spec.label.column] + ([spec.id_column] if spec.id_column else [])
    missing = [n for n in expected if n not in set(names)]
    if missing:
        raise DataValidationError(MSG_MISSING.format(file=file, missing=_listed(missing), header=_listed(names)))
    unknown = [n for n in names if n not in set(expected)]
    if unknown:
        raise DataValidationError(MSG_UNKNOWN.format(file=file, unknown=_listed(unknown)))


def _convert(cells: pd.Series, spec: SchemaSpec, f: FeatureSpec | None,
             lines: list[int], problems: list[Problem]) -> pd.Series:
    """Cell text to the column's type; unreadable cells become problems and NaN."""
    text = cells.str.strip()
    name = str(cells.name)
    if (f is None and label_is_text(spec)) or (f is not None and is_text(spec, f)):
        return text
    if f is not None and f.kind == "date":
        values = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        message = MSG_NOT_DATE
    else:
        values = pd.to_numeric(text, errors="coerce").astype("float64")
        message = MSG_NOT_NUMBER
    bad = values.isna().to_numpy()
    for r in np.flatnonzero(bad):
        problems.append(Problem(lines[r], name, message.format(value=cells.iat[r])))
    if f is None or f.kind not in ("amount", "date"):
        frac = ~bad & (values.to_numpy() % 1 != 0)
        for r in np.flatnonzero(frac):
            problems.append(Problem(lines[r], name, MSG_NOT_WHOLE.format(value=cells.iat[r])))
    return values


def _ids(cells: pd.Series, lines: list[int], problems: list[Problem]) -> None:
    text = cells.str.strip()
    name = str(cells.name)
    for r in np.flatnonzero((text == "").to_numpy()):
        problems.append(Problem(lines[r], name, MSG_BLANK_ID))
    dup = text.duplicated(keep="first") & (text != "")
    for r in np.flatnonzero(dup.to_numpy()):
        first = int(np.flatnonzero((text == text.iat[r]).to_numpy())[0])
        problems.append(Problem(lines[r], name, MSG_DUPLICATE_ID.format(value=text.iat[r], first=lines[first])))


def _shown(value: object) -> str:
    """A cell's value as the person wrote it: 7 not 7.0, a date as 2030-01-01, text quoted."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return repr(value)


def _values(frame: pd.DataFrame, spec: SchemaSpec, lines: list[int], problems: list[Problem]) -> None:
    try:
        pandera_schema(spec, nullable=True).validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases.dropna(subset=["index"]).sort_values("index")
        for _, case in cases.iterrows():
            r = int(case["index"])
            value = frame.at[r, case["column"]]
            shown = _shown(value)
            problems.append(Problem(lines[r], str(case["column"]), MSG_VALUE.format(value=shown, expected=case["check"])))


def _findings(frame: pd.DataFrame, spec: SchemaSpec) -> tuple[str, ...]:
    out = []
    for f in spec.features:
        for code, meaning in spec.undocumented(f).items():
            n = int((frame[f.name] == code).sum())
            if n:
                out.append(MSG_UNDOCUMENTED.format(label=f.label, count=n, code=code, meaning=meaning))
    return tuple(out)


def check_data(spec: SchemaSpec, path: str | Path) -> CheckReport:
    """Every cell of `path` against `spec`; raises DataValidationError when the file's structure is wrong."""
    file = Path(path)
    text = _read_text(file)
    if not text.strip():
        raise DataValidationError(MSG_EMPTY.format(file=file))
    _check_line_lengths(text, file)
    rows, line_of = _csv_rows(text, file)
    if not rows:
        raise DataValidationError(MSG_EMPTY.format(file=file))
    names = [_canonical(c.strip(), spec) for c in rows[0]]
    _header(names, spec, file)
    body, lines = rows[1:], line_of[1:]
    if not body:
        raise DataValidationError(MSG_HEADER_ONLY.format(file=file))
    _row_lengths(body, len(names), file, lines)
    cells = pd.DataFrame(body, columns=names, dtype=str)
    problems: list[Problem] = []
    if spec.id_column:
        _ids(cells[spec.id_column], lines, problems)
    by_name = spec.by_name
    frame = pd.DataFrame({
        name: _convert(cells[name], spec, by_name.get(name), lines, problems)
        for name in [*by_name, spec.label.column]
    })
    _values(frame, spec, lines, problems)
    listed = sorted(problems, key=lambda p: (p.line, names.index(p.column)))
    return CheckReport(file, len(body), tuple(listed[:MAX_PROBLEMS]), len(problems), _findings(frame, spec))

