"""Loader: every header variant real copies use, and a clear error for every bad input."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from pipeline import DataValidationError, load_portfolio
from pipeline import _loading as L
from pipeline import schema as S


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


def _write(path: Path, header: list[list[str]] | list[str], body: list[list[str]], delimiter: str = ",") -> Path:
    headers = header if header and isinstance(header[0], list) else [header]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerows(headers)
        w.writerows(body)
    return path


@pytest.fixture(scope="module")
def real_rows(data_path: Path) -> tuple[list[str], list[list[str]]]:
    return _rows(data_path)


@pytest.fixture
def small(real_rows, tmp_path):
    """A 40-row file from the real data's first rows, with a mutator for one cell."""
    header, body = real_rows
    body = [list(r) for r in body[:40]]

    def make(row: int = 0, column: str | None = None, value: str | None = None, name: str = "f.csv") -> Path:
        rows = [list(r) for r in body]
        if column is not None:
            rows[row][header.index(column)] = value
        return _write(tmp_path / name, header, rows)

    return make


def test_real_file_loads_with_findings(portfolio):
    assert len(portfolio) == 30_000
    assert list(portfolio.features.columns) == list(S.FEATURE_NAMES)
    assert portfolio.labels.mean() == pytest.approx(0.2212, abs=1e-4)
    found = {(f.column, f.value): f.count for f in portfolio.findings}
    assert found == {("EDUCATION", 0): 14, ("EDUCATION", 5): 280, ("EDUCATION", 6): 51, ("MARRIAGE", 0): 54}
    assert re.fullmatch(r"[0-9a-f]{64}", portfolio.data_hash)


def _variant(header: list[str], body: list[list[str]], kind: str) -> tuple[list, list[list[str]]]:
    names = list(header)
    if kind == "x_names":
        return ["ID", *[f"X{i}" for i in range(1, 24)], "Y"], body
    if kind == "two_row":
        spaced = [n if n != S.LABEL_COLUMN else "default payment next month" for n in names]
        return [["", *[f"X{i}" for i in range(1, 24)], "Y"], spaced], body
    if kind == "pay_1":
        return [n if n != "PAY_0" else "PAY_1" for n in names], body
    if kind == "spaced_label":
        return [n if n != S.LABEL_COLUMN else "default payment next month" for n in names], body
    if kind == "no_id":
        return names[1:], [r[1:] for r in body]
    raise AssertionError(kind)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["x_names", "two_row", "pay_1", "spaced_label", "no_id"])
def test_header_variants_give_the_same_data_hash(kind, real_rows, portfolio, tmp_path):
    header, body = real_rows
    new_header, new_body = _variant(header, body, kind)
    loaded = load_portfolio(_write(tmp_path / f"{kind}.csv", new_header, new_body))
    assert loaded.data_hash == portfolio.data_hash
    assert loaded.features.equals(portfolio.features)


def test_scientific_notation_cells_are_numbers(small):
    loaded = load_portfolio(small(0, "LIMIT_BAL", "5e+05"))
    assert loaded.features["LIMIT_BAL"].iloc[0] == 500_000


def test_undocumented_codes_are_findings_not_errors(small):
    loaded = load_portfolio(small(3, "MARRIAGE", "0"))
    assert any(f.column == "MARRIAGE" and f.value == 0 for f in loaded.findings)


@pytest.mark.parametrize(
    ("row", "column", "value", "pattern"),
    [
        (4, "AGE", "abc", r"line 6, column AGE: expected a number, got 'abc'"),
        (4, "AGE", "", r"line 6, column AGE: expected a number, got ''"),
        (4, "AGE", "NaN", r"line 6, column AGE: expected a number, got 'NaN'"),
        (2, "AGE", "150", r"line 4, column AGE: got 150, expected a value from 18 to 120"),
        (2, "AGE", "30.5", r"line 4, column AGE: expected a whole number, got '30.5'"),
        (7, "SEX", "3", r"line 9, column SEX: got 3, expected one of the codes \[1, 2\]"),
        (7, "EDUCATION", "9", r"line 9, column EDUCATION: got 9, expected one of the codes"),
        (1, "PAY_0", "12", r"line 3, column PAY_0: got 12, expected an integer from -2 to 9"),
        (1, "PAY_AMT3", "-5", r"line 3, column PAY_AMT3: got -5, expected a value from 0 to"),
        (5, S.LABEL_COLUMN, "2", r"line 7, column default.payment.next.month: got 2, expected 0 or 1"),
        (6, "ID", "1", r"line 8, column ID: duplicate applicant id 1 \(first seen on line 2\)"),
    ],
)
def test_bad_cells_name_file_line_column_value_and_expectation(small, row, column, value, pattern):
    path = small(row, column, value)
    with pytest.raises(DataValidationError, match=pattern) as err:
        load_portfolio(path)
    assert str(path) in str(err.value)


def test_missing_column(real_rows, tmp_path):
    header, body = real_rows
    drop = header.index("BILL_AMT3")
    path = _write(tmp_path / "m.csv", header[:drop] + header[drop + 1 :], [r[:drop] + r[drop + 1 :] for r in body[:5]])
    with pytest.raises(DataValidationError, match=r"line 1: missing column\(s\) \['BILL_AMT3'\]"):
        load_portfolio(path)


def test_duplicate_column(real_rows, tmp_path):
    header, body = real_rows
    path = _write(tmp_path / "d.csv", [*header, "AGE"], [[*r, r[5]] for r in body[:5]])
    with pytest.raises(DataValidationError, match=r"duplicate column\(s\) \['AGE'\]"):
        load_portfolio(path)


def test_unknown_column(real_rows, tmp_path):
    header, body = real_rows
    path = _write(tmp_path / "u.csv", [*header, "INCOME"], [[*r, "1"] for r in body[:5]])
    with pytest.raises(DataValidationError, match=r"unexpected column\(s\) \['INCOME'\]"):
        load_portfolio(path)


def test_short_row(real_rows, tmp_path):
    header, body = real_rows
    rows = [list(r) for r in body[:5]]
    rows[2] = rows[2][:-3]
    with pytest.raises(DataValidationError, match=r"line 4: expected 25 cells, got 22"):
        load_portfolio(_write(tmp_path / "s.csv", header, rows))


def test_one_class_label(real_rows, tmp_path):
    header, body = real_rows
    zeros = [r for r in body[:200] if r[-1] == "0"]
    with pytest.raises(DataValidationError, match=r"every row has label 0"):
        load_portfolio(_write(tmp_path / "o.csv", header, zeros))


def test_empty_and_header_only(real_rows, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataValidationError, match=re.escape(L.MSG_EMPTY.format(file=empty))):
        load_portfolio(empty)
    header, _ = real_rows
    only = _write(tmp_path / "h.csv", header, [])
    with pytest.raises(DataValidationError, match=re.escape(L.MSG_HEADER_ONLY.format(file=only))):
        load_portfolio(only)


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_wrong_delimiter(real_rows, tmp_path, delimiter):
    header, body = real_rows
    path = _write(tmp_path / "w.csv", header, body[:5], delimiter=delimiter)
    with pytest.raises(DataValidationError, match=rf"expected comma-separated values.*{re.escape(repr(delimiter))}"):
        load_portfolio(path)


def test_wrong_encoding(small, tmp_path):
    path = small()
    raw = path.read_bytes().replace(b"\n", b"\n", 1)
    lines = raw.split(b"\n")
    lines[3] = lines[3] + "é".encode("utf-16")
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataValidationError, match=r"line 4: the file is not UTF-8 text"):
        load_portfolio(path)
