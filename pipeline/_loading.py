"""Read a copy of the UCI credit-card file into a validated Portfolio.

Real copies of this dataset differ in their header (named, `X1..X23, Y`, the
spreadsheet's two-row header, `PAY_1` for `PAY_0`, label spelt with spaces,
with or without `ID`), so the header is mapped to the schema's names first;
cell values are then checked by a pandera schema built from `schema.FEATURES`.
Every rejection names the file, the line, the column, the value and what was
expected, because the person fixing the file needs exactly that.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from . import schema as S

MSG_EMPTY = "{file}: the file is empty; expected a header line and at least one applicant row"
MSG_HEADER_ONLY = "{file}: the file has a header but no applicant rows"
MSG_ENCODING = "{file}: line {line}: the file is not UTF-8 text ({reason}); save it as UTF-8 CSV"
MSG_DELIMITER = (
    "{file}: line {line}: expected comma-separated values, but the header is one column"
    " that contains {delim!r}; save the file with ',' as delimiter"
)
MSG_MISSING_COLUMNS = "{file}: line {line}: missing column(s) {missing}; expected the columns {expected}"
MSG_UNKNOWN_COLUMNS = "{file}: line {line}: unexpected column(s) {unknown}; expected only {expected}"
MSG_DUPLICATE_COLUMNS = "{file}: line {line}: duplicate column(s) {dups} in the header"
MSG_ROW_LENGTH = "{file}: line {line}: expected {expected} cells, got {got}"
MSG_NOT_NUMERIC = "{file}: line {line}, column {column}: expected a number, got {value!r}"
MSG_NOT_INTEGER = "{file}: line {line}, column {column}: expected a whole number, got {value!r}"
MSG_INVALID_VALUE = "{file}: line {line}, column {column}: got {value:g}, expected {expected}"
MSG_DUPLICATE_ID = "{file}: line {line}, column ID: duplicate applicant id {value!r} (first seen on line {first})"
MSG_ONE_CLASS = "{file}: column {column}: every row has label {value}; an audit needs both defaulters (1) and non-defaulters (0)"

LABEL_ALIASES = ("default.payment.next.month", "default payment next month", "Y", "y", "default")
_RENAMES = {"PAY_1": "PAY_0"}
_X_NAMES = {f"X{i + 1}": name for i, name in enumerate(S.FEATURE_NAMES)}


class DataValidationError(ValueError):
    """The input file is not a usable copy of the dataset; the message says where and why."""


@dataclass(frozen=True)
class Finding:
    """A data-quality observation that does not stop the audit (e.g. undocumented codes)."""

    column: str
    value: float
    count: int
    message: str


@dataclass(frozen=True)
class Portfolio:
    """The validated applicants: raw features in schema order, labels, ids, provenance."""

    features: pd.DataFrame
    labels: pd.Series
    ids: pd.Series
    source: str
    header_variant: str
    data_hash: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.features)


def _fail(template: str, **kw: object) -> DataValidationError:
    return DataValidationError(template.format(**kw))


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(MSG_ENCODING, file=path, line=line, reason=f"byte 0x{raw[exc.start]:02x}") from None


def _canonical(name: str) -> str:
    name = name.strip()
    if name in LABEL_ALIASES:
        return S.LABEL_COLUMN
    if name.upper() == S.ID_COLUMN:
        return S.ID_COLUMN
    return _X_NAMES.get(name, _RENAMES.get(name, name))


def _header(rows: list[list[str]], file: Path) -> tuple[list[str], int, str]:
    """Map the header to schema names; return (names, header line count, variant)."""
    first = [c.strip() for c in rows[0]]
    if len(first) == 1:
        for delim in (";", "\t", "|"):
            if delim in first[0]:
                raise _fail(MSG_DELIMITER, file=file, line=1, delim=delim)
    is_x = any(c in _X_NAMES for c in first)
    if is_x and len(rows) > 1 and any(c.strip() in S.FEATURE_NAMES or c.strip() == "PAY_1" for c in rows[1]):
        return [_canonical(c) for c in rows[1]], 2, "two-row"
    variant = "X1..X23" if is_x else ("PAY_1" if "PAY_1" in first else "named")
    names = [_canonical(c) if c else S.ID_COLUMN for c in first]
    return names, 1, variant


def _check_columns(names: list[str], file: Path, line: int) -> None:
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise _fail(MSG_DUPLICATE_COLUMNS, file=file, line=line, dups=dups)
    expected = [*S.FEATURE_NAMES, S.LABEL_COLUMN]
    missing = [n for n in expected if n not in names]
    if missing:
        raise _fail(MSG_MISSING_COLUMNS, file=file, line=line, missing=missing, expected=expected)
    unknown = [n for n in names if n not in expected and n != S.ID_COLUMN]
    if unknown:
        raise _fail(MSG_UNKNOWN_COLUMNS, file=file, line=line, unknown=unknown, expected=[S.ID_COLUMN, *expected])


def _to_numbers(body: list[list[str]], names: list[str], file: Path, lines: list[int]) -> pd.DataFrame:
    """Strings to float64, naming the first cell that is not a (whole) number."""
    for i, row in enumerate(body):
        if len(row) != len(names):
            raise _fail(MSG_ROW_LENGTH, file=file, line=lines[i], expected=len(names), got=len(row))
    text = pd.DataFrame(body, columns=names, dtype=str)
    frame = text.apply(lambda col: pd.to_numeric(col.str.strip(), errors="coerce")).astype("float64")
    bad = frame.isna() | ~np.isfinite(frame.to_numpy(dtype=float))
    if bad.to_numpy().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise _fail(MSG_NOT_NUMERIC, file=file, line=lines[r], column=names[c], value=text.iat[r, c])
    integral = [n for n in names if n == S.ID_COLUMN or n == S.LABEL_COLUMN or S.BY_NAME[n].kind != "amount"]
    frac = frame[integral].to_numpy() % 1 != 0
    if frac.any():
        r, c = np.argwhere(frac)[0]
        raise _fail(MSG_NOT_INTEGER, file=file, line=lines[r], column=integral[c], value=text.at[r, integral[c]])
    return frame


def _pandera_schema() -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {}
    for f in S.FEATURES:
        if f.is_categorical:
            allowed = sorted(f.allowed_codes)
            if f.kind == "repayment_status":
                check = pa.Check.in_range(f.minimum, f.maximum, error=f"an integer from {f.minimum:g} to {f.maximum:g}")
            else:
                check = pa.Check.isin(allowed, error=f"one of the codes {allowed}")
        else:
            check = pa.Check.in_range(f.minimum, f.maximum, error=f"a value from {f.minimum:g} to {f.maximum:g}")
        columns[f.name] = pa.Column(float, check, nullable=False)
    columns[S.LABEL_COLUMN] = pa.Column(float, pa.Check.isin([0, 1], error="0 or 1"), nullable=False)
    columns[S.ID_COLUMN] = pa.Column(float, pa.Check.ge(0, error="a non-negative applicant id"), nullable=False)
    return pa.DataFrameSchema(columns, strict=False)


def _validate_values(frame: pd.DataFrame, file: Path, lines: list[int]) -> None:
    try:
        _pandera_schema().validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases.dropna(subset=["index"]).sort_values("index")
        first = cases.iloc[0]
        r = int(first["index"])
        raise _fail(
            MSG_INVALID_VALUE,
            file=file,
            line=lines[r],
            column=first["column"],
            value=float(frame.at[r, first["column"]]),
            expected=first["check"],
        ) from None


def _check_ids_and_labels(frame: pd.DataFrame, file: Path, lines: list[int]) -> None:
    ids = frame[S.ID_COLUMN]
    dup = ids.duplicated(keep="first")
    if dup.any():
        r = int(np.flatnonzero(dup.to_numpy())[0])
        first = int(np.flatnonzero((ids == ids.iat[r]).to_numpy())[0])
        raise _fail(MSG_DUPLICATE_ID, file=file, line=lines[r], value=int(ids.iat[r]), first=lines[first])
    labels = frame[S.LABEL_COLUMN].unique()
    if len(labels) == 1:
        raise _fail(MSG_ONE_CLASS, file=file, column=S.LABEL_COLUMN, value=int(labels[0]))


def _findings(features: pd.DataFrame) -> tuple[Finding, ...]:
    found = []
    for f in S.FEATURES:
        for code, meaning in f.extra_codes.items():
            n = int((features[f.name] == code).sum())
            if n:
                found.append(Finding(f.name, code, n, f"{f.label}: {n} rows use {meaning}, not in the data dictionary"))
    return tuple(found)


def content_hash(features: pd.DataFrame, labels: pd.Series, ids: pd.Series) -> str:
    """SHA-256 of the values in schema order: the same data under any header variant hashes alike."""
    h = hashlib.sha256()
    h.update(",".join([S.ID_COLUMN, *features.columns, S.LABEL_COLUMN]).encode())
    block = np.column_stack([ids.to_numpy(np.float64), features.to_numpy(np.float64), labels.to_numpy(np.float64)])
    h.update(np.ascontiguousarray(block).tobytes())
    return h.hexdigest()


def load_portfolio(path: str | Path) -> Portfolio:
    """Load, map the header, validate every cell, and fingerprint the data."""
    file = Path(path)
    text = _read_text(file)
    if not text.strip():
        raise _fail(MSG_EMPTY, file=file)
    reader = csv.reader(io.StringIO(text))
    rows, line_of = [], []
    for row in reader:
        if any(c.strip() for c in row):
            rows.append(row)
            line_of.append(reader.line_num)
    names, n_header, variant = _header(rows, file)
    _check_columns(names, file, n_header)
    body = rows[n_header:]
    if not body:
        raise _fail(MSG_HEADER_ONLY, file=file)
    lines = line_of[n_header:]  # data row r (0-based) sits on file line lines[r]
    frame = _to_numbers(body, names, file, lines)
    if S.ID_COLUMN not in frame:
        frame.insert(0, S.ID_COLUMN, np.arange(1, len(frame) + 1, dtype=float))
    _validate_values(frame, file, lines)
    _check_ids_and_labels(frame, file, lines)
    features = frame[list(S.FEATURE_NAMES)].astype(
        {f.name: ("int64" if f.kind != "amount" else "float64") for f in S.FEATURES}
    )
    labels = frame[S.LABEL_COLUMN].astype("int64").rename("default")
    ids = frame[S.ID_COLUMN].astype("int64").rename("id")
    return Portfolio(
        features=features,
        labels=labels,
        ids=ids,
        source=str(file),
        header_variant=variant,
        data_hash=content_hash(features, labels, ids),
        findings=_findings(features),
    )
