"""Read a copy of the UCI credit-card file into a validated Portfolio.

Real copies of this dataset differ in their header (named, `X1..X23, Y`, the
spreadsheet's two-row header, `PAY_1` for `PAY_0`, label spelt with spaces,
with or without `ID`), so the header is mapped to the schema's names first;
cell values are then checked by the pandera schema built from the schema file.
Every rejection names the file, the line, the column, the value and what was
expected, because the person fixing the file needs exactly that.

Hostile or broken files must fail fast, not hang or crash: line and cell
lengths are capped before the CSV parser sees them, every header check is
linear in the number of columns, and column lists in messages are shortened.
Applicant ids are read from their text, never through floats, so an id
survives exactly (int64) or is refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from . import schema as S
from ._io import NotRegularFile, read_regular
from .schema_pandera import pandera_schema

MSG_NOT_REGULAR = "{file}: the data file is {kind}, not a regular file; expected a CSV file"
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
MSG_BAD_ID = (
    "{file}: line {line}, column ID: expected an applicant id written as a whole number from 0 to"
    " 9223372036854775807 (digits only: no sign, decimal point, exponent or leading zero), got {value!r}"
)
MSG_ONE_CLASS = "{file}: column {column}: every row has label {value!r}; an audit needs rows of both {adverse!r} and {other!r}"
MSG_LONG_LINE = "{file}: line {line}: the line is {length:,} characters long; expected at most {limit:,} characters"
MSG_LONG_CELL = (
    "{file}: line {line}, column {column}: the cell is {length:,} characters long; expected at most {limit}"
    " characters (a number or a column name)"
)
MSG_CSV = "{file}: line {line}: not readable as CSV ({reason})"
MSG_TOO_FEW_ROWS = (
    "{file}: the file has {rows} applicant row(s); an audit needs at least {minimum}"
    " (enough of each label to train, validate and test the model)"
)
MSG_TOO_FEW_OF_LABEL = (
    "{file}: column {column}: {count} row(s) have label {label} ({meaning}); with test_fraction {fraction:g}"
    " that leaves about {test} for the test split and {validation} for the model's validation split,"
    " and each needs at least {minimum} of each label; use a file with more rows of label {label}"
    " or a larger test_fraction"
)

# Real rows are at most ~270 characters and cells ~30 ("default payment next month"); the caps
# are far above that, and low enough that a hostile file is refused in milliseconds.
MAX_CELL_CHARS = 100
MAX_LINE_CHARS = 10_000
# Columns named in one message: a header of thousands of junk names must not become the error.
MAX_LISTED = 10
# Each label needs this many rows in the test split and in the model's validation split: fewer
# and AUC, calibration and the fairness intervals are computed on a handful of people.
MIN_ROWS = 200
MIN_ROWS_PER_LABEL_PER_SPLIT = 20
VALIDATION_FRACTION = 0.15  # share of the training split the model holds out (CreditModel's default)
ID_MAX_TEXT = str(np.iinfo(np.int64).max)
_ID_PATTERN = r"0|[1-9][0-9]{0,18}"
MSG_INVALID_CODE = "{file}: line {line}, column {column}: got {value!r}, expected one of the codes {expected}"


def _x_names() -> dict[str, str]:
    """The numbered header variant (`X1..Xn`, the label `Y`) of the active schema's features."""
    return {f"X{i + 1}": name for i, name in enumerate(S.FEATURE_NAMES)}


def label_meaning(label: int) -> str:
    """The schema's meaning of a loaded label: 1 is the adverse outcome, 0 the other value."""
    adverse = str(S.ADVERSE)
    return next(m for v, m in S.LABEL_MEANINGS.items() if (str(v) == adverse) == bool(label))


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
    try:
        raw = read_regular(path)  # a fifo or /dev/zero given as --data is refused, not read forever
    except NotRegularFile as exc:
        raise _fail(MSG_NOT_REGULAR, file=path, kind=exc.kind) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(MSG_ENCODING, file=path, line=line, reason=f"byte 0x{raw[exc.start]:02x}") from None


def _canonical(name: str) -> str:
    name = name.strip()
    if name in S.LABEL_ALIASES:
        return S.LABEL_COLUMN
    if name.upper() == S.ID_COLUMN:
        return S.ID_COLUMN
    return _x_names().get(name, S.ALIASES.get(name, name))


def _header(rows: list[list[str]], file: Path) -> tuple[list[str], int, str]:
    """Map the header to schema names; return (names, header line count, variant)."""
    first = [c.strip() for c in rows[0]]
    if len(first) == 1:
        for delim in (";", "\t", "|"):
            if delim in first[0]:
                raise _fail(MSG_DELIMITER, file=file, line=1, delim=delim)
    x_names = _x_names()
    is_x = any(c in x_names for c in first)
    if is_x and len(rows) > 1 and any(c.strip() in S.FEATURE_NAMES or c.strip() in S.ALIASES for c in rows[1]):
        return [_canonical(c) for c in rows[1]], 2, "two-row"
    renamed = [c for c in first if c in S.ALIASES]  # the variant is named by the first alias: "PAY_1"
    variant = f"X1..X{len(x_names)}" if is_x else (renamed[0] if renamed else "named")
    names = [_canonical(c) if c else S.ID_COLUMN for c in first]
    return names, 1, variant


def _listed(names: Sequence[str]) -> str:
    """A column list for a message, shortened: a hostile header must not become a megabyte of error."""
    shown = repr(list(names[:MAX_LISTED]))
    return shown if len(names) <= MAX_LISTED else f"{shown[:-1]}, ... and {len(names) - MAX_LISTED} more]"


def _check_columns(names: list[str], file: Path, line: int) -> None:
    """Duplicates, missing and unknown columns; linear in the column count (sets and one Counter)."""
    dups = sorted(n for n, k in Counter(names).items() if k > 1)
    if dups:
        raise _fail(MSG_DUPLICATE_COLUMNS, file=file, line=line, dups=_listed(dups))
    expected = [*S.FEATURE_NAMES, S.LABEL_COLUMN]
    present = set(names)
    missing = [n for n in expected if n not in present]
    if missing:
        raise _fail(MSG_MISSING_COLUMNS, file=file, line=line, missing=_listed(missing), expected=expected)
    allowed = {*expected, S.ID_COLUMN}
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise _fail(MSG_UNKNOWN_COLUMNS, file=file, line=line, unknown=_listed(unknown), expected=[S.ID_COLUMN, *expected])


def _to_numbers(text: pd.DataFrame, file: Path, lines: list[int]) -> pd.DataFrame:
    """Cell strings to float64, naming the first cell that is not a (whole) number."""
    names = list(text.columns)
    frame = text.apply(lambda col: pd.to_numeric(col.str.strip(), errors="coerce")).astype("float64")
    bad = frame.isna() | ~np.isfinite(frame.to_numpy(dtype=float))
    if bad.to_numpy().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise _fail(MSG_NOT_NUMERIC, file=file, line=lines[r], column=names[c], value=text.iat[r, c])
    integral = [n for n in names if n == S.LABEL_COLUMN or S.BY_NAME[n].kind != "amount"]
    frac = frame[integral].to_numpy() % 1 != 0
    if frac.any():
        r, c = np.argwhere(frac)[0]
        raise _fail(MSG_NOT_INTEGER, file=file, line=lines[r], column=integral[c], value=text.at[r, integral[c]])
    return frame


def _parse_ids(cells: pd.Series, file: Path, lines: list[int]) -> np.ndarray:
    """Ids from their text, never through float64 (which merges 2**53 + 1 with 2**53 and wraps 1e20).

    Only the canonical decimal form is accepted, so the id on a notice is exactly the id in the
    lender's file: `007`, `+7`, `7.0` and `1e20` are refused rather than silently renamed.
    """
    text = cells.str.strip()
    canonical = text.str.fullmatch(_ID_PATTERN).fillna(False).to_numpy(dtype=bool)
    in_range = ((text.str.len() < len(ID_MAX_TEXT)) | (text <= ID_MAX_TEXT)).to_numpy(dtype=bool)
    bad = ~(canonical & in_range)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise _fail(MSG_BAD_ID, file=file, line=lines[r], value=cells.iat[r])
    return np.array([int(t) for t in text], dtype=np.int64)


def _pandera_schema() -> pa.DataFrameSchema:
    """The active schema file's value checks (the same `credit-audit check-schema` applies), for the
    numeric columns: text codes were checked and numbered by `_decode_text` before."""
    schema = pandera_schema(S.SPEC)
    return schema.remove_columns([c for c in _text_columns() if c in schema.columns])


def _text_columns() -> dict[str, tuple[str, ...]]:
    """{column: its codes in order} of the columns the data writes as text (categories, the label)."""
    columns = {f.name: f.text_codes for f in S.FEATURES if f.text_codes}
    if any(isinstance(v, str) for v in S.LABEL_MEANINGS):
        columns[S.LABEL_COLUMN] = tuple(map(str, S.LABEL_MEANINGS))
    return columns


def _decode_text(cells: pd.DataFrame, file: Path, lines: list[int]) -> pd.DataFrame:
    """Text categories to their position in the schema's code list (as text, for `_to_numbers`).

    The comparison is exact after stripping spaces: a code spelt another way is refused with the
    codes the schema allows, not guessed.
    """
    cells = cells.copy()
    for column, codes in _text_columns().items():
        text = cells[column].str.strip()
        position = text.map({code: str(i) for i, code in enumerate(codes)})
        if position.isna().any():
            r = int(np.flatnonzero(position.isna().to_numpy())[0])
            raise _fail(MSG_INVALID_CODE, file=file, line=lines[r], column=column, value=text.iat[r],
                        expected=list(codes))
        cells[column] = position
    return cells


def _labels(frame: pd.DataFrame) -> pd.Series:
    """1 for the schema's adverse outcome, 0 for the other value (a text label arrives as its position)."""
    column = frame[S.LABEL_COLUMN]
    values = list(S.LABEL_MEANINGS)
    adverse = float(values.index(S.ADVERSE)) if S.LABEL_COLUMN in _text_columns() else float(S.ADVERSE)
    return (column == adverse).astype("int64").rename("default")


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


def _check_unique_ids(ids: np.ndarray, file: Path, lines: list[int]) -> None:
    dup = pd.Series(ids).duplicated(keep="first").to_numpy()
    if dup.any():
        r = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(ids == ids[r])[0])
        raise _fail(MSG_DUPLICATE_ID, file=file, line=lines[r], value=int(ids[r]), first=lines[first])


def _check_labels(labels: pd.Series, file: Path) -> None:
    values = labels.unique()
    if len(values) == 1:
        raise _fail(MSG_ONE_CLASS, file=file, column=S.LABEL_COLUMN, value=label_meaning(int(values[0])),
                    adverse=label_meaning(1), other=label_meaning(0))


def _findings(features: pd.DataFrame) -> tuple[Finding, ...]:
    found = []
    for f in S.FEATURES:
        for code, meaning in f.extra_codes.items():
            n = int((features[f.name] == code).sum())
            if n:
                found.append(Finding(f.name, code, n, f"{f.label}: {n} rows use {meaning}, not in the data dictionary"))
    return tuple(found)


def content_hash(features: pd.DataFrame, labels: pd.Series, ids: pd.Series) -> str:
    """SHA-256 of the values in schema order: the same data under any header variant hashes alike.

    Ids are hashed as int64 (not float64), so files that differ only in an id above 2**53 differ here.
    """
    h = hashlib.sha256()
    h.update(",".join([S.ID_COLUMN, *features.columns, S.LABEL_COLUMN]).encode())
    h.update(np.ascontiguousarray(ids.to_numpy(np.int64)).tobytes())
    block = np.column_stack([features.to_numpy(np.float64), labels.to_numpy(np.float64)])
    h.update(np.ascontiguousarray(block).tobytes())
    return h.hexdigest()


def _check_line_lengths(text: str, file: Path) -> None:
    """Refuse an over-long line before the CSV parser reads it: one linear pass, no quadratic header work.

    When a cell of that line is itself over the cell cap, the message names the cell (its header
    name when the first line is short enough to read), since that is what the person must fix.
    """
    lines = re.split(r"\r\n|\r|\n", text)
    lengths = list(map(len, lines))  # C-level loops throughout: a 5 MB line takes milliseconds
    if max(lengths) <= MAX_LINE_CHARS:
        return
    i = next(i for i, n in enumerate(lengths) if n > MAX_LINE_CHARS)
    cells = lines[i].split(",")
    longest = max(cells, key=len)
    if len(longest) <= MAX_CELL_CHARS:
        raise _fail(MSG_LONG_LINE, file=file, line=i + 1, length=lengths[i], limit=MAX_LINE_CHARS)
    k = cells.index(longest)
    header = lines[0].split(",") if i > 0 and len(lines[0]) <= MAX_LINE_CHARS else []
    column = header[k].strip().strip('"') if k < len(header) else f"#{k + 1}"
    raise _fail(MSG_LONG_CELL, file=file, line=i + 1, column=column, length=len(cells[k]), limit=MAX_CELL_CHARS)


def _check_cells(row: list[str], header: list[str] | None, file: Path, line: int) -> None:
    """The cell cap on parsed cells (a quoted cell can hide commas or span lines)."""
    if max(map(len, row), default=0) <= MAX_CELL_CHARS:
        return
    k = next(k for k, c in enumerate(row) if len(c) > MAX_CELL_CHARS)
    column = header[k].strip() if header is not None and k < len(header) else f"#{k + 1}"
    raise _fail(MSG_LONG_CELL, file=file, line=line, column=column, length=len(row[k]), limit=MAX_CELL_CHARS)


def _csv_rows(text: str, file: Path) -> tuple[list[list[str]], list[int]]:
    """Non-blank CSV records and the file line each ends on; a parser error becomes a located message."""
    reader = csv.reader(io.StringIO(text))
    rows: list[list[str]] = []
    line_of: list[int] = []
    try:
        for row in reader:
            if any(c.strip() for c in row):
                if rows:  # the first record is checked after the delimiter check, which explains more
                    _check_cells(row, rows[0], file, reader.line_num)
                rows.append(row)
                line_of.append(reader.line_num)
    except csv.Error as exc:
        raise _fail(MSG_CSV, file=file, line=reader.line_num, reason=exc) from None
    return rows, line_of


def _row_lengths(body: list[list[str]], width: int, file: Path, lines: list[int]) -> None:
    for i, row in enumerate(body):
        if len(row) != width:
            raise _fail(MSG_ROW_LENGTH, file=file, line=lines[i], expected=width, got=len(row))


def load_portfolio(path: str | Path) -> Portfolio:
    """Load, map the header, validate every cell, and fingerprint the data."""
    file = Path(path)
    text = _read_text(file)
    if not text.strip():
        raise _fail(MSG_EMPTY, file=file)
    _check_line_lengths(text, file)
    rows, line_of = _csv_rows(text, file)
    if not rows:  # only separators and blanks
        raise _fail(MSG_EMPTY, file=file)
    names, n_header, variant = _header(rows, file)
    _check_cells(rows[0], None, file, line_of[0])
    _check_columns(names, file, n_header)
    body = rows[n_header:]
    if not body:
        raise _fail(MSG_HEADER_ONLY, file=file)
    lines = line_of[n_header:]  # data row r (0-based) sits on file line lines[r]
    _row_lengths(body, len(names), file, lines)
    cells = pd.DataFrame(body, columns=names, dtype=str)
    if S.ID_COLUMN in cells:
        ids = _parse_ids(cells.pop(S.ID_COLUMN), file, lines)
    else:
        ids = np.arange(1, len(cells) + 1, dtype=np.int64)
    frame = _to_numbers(_decode_text(cells, file, lines), file, lines)
    _validate_values(frame, file, lines)
    _check_unique_ids(ids, file, lines)
    _check_labels(_labels(frame), file)
    features = frame[list(S.FEATURE_NAMES)].astype(
        {f.name: ("int64" if f.kind != "amount" else "float64") for f in S.FEATURES}
    )
    labels = _labels(frame)
    id_series = pd.Series(ids, name="id", dtype="int64")
    return Portfolio(
        features=features,
        labels=labels,
        ids=id_series,
        source=str(file),
        header_variant=variant,
        data_hash=content_hash(features, labels, id_series),
        findings=_findings(features),
    )


def check_audit_size(portfolio: Portfolio, test_fraction: float,
                     validation_fraction: float = VALIDATION_FRACTION) -> None:
    """Enough rows of each label on every side of the splits, checked before training starts.

    The held-out figures (AUC, calibration, fairness intervals) and the model's early stopping
    need both labels on each side; with a handful of rows they are noise that still looks like
    an audit. `validation_fraction` is the share of the training split the model holds out.
    """
    file = portfolio.source
    if len(portfolio) < MIN_ROWS:
        raise _fail(MSG_TOO_FEW_ROWS, file=file, rows=len(portfolio), minimum=MIN_ROWS)
    counts = portfolio.labels.value_counts()
    for label in (0, 1):
        count = int(counts.get(label, 0))
        test = int(np.floor(test_fraction * count))
        validation = int(np.floor(validation_fraction * (count - np.ceil(test_fraction * count))))
        if min(test, validation) < MIN_ROWS_PER_LABEL_PER_SPLIT:
            raise _fail(MSG_TOO_FEW_OF_LABEL, file=file, column=S.LABEL_COLUMN, count=count, label=label,
                        meaning=label_meaning(label), fraction=test_fraction, test=test, validation=validation,
                        minimum=MIN_ROWS_PER_LABEL_PER_SPLIT)
