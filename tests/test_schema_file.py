"""The schema file format: the shipped files parse, and a mistake is named by file, key path and expectation."""

from __future__ import annotations

import ast
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from pipeline import schema as S
from pipeline.schema_file import (
    DEFAULT_SCHEMA,
    GERMAN_CREDIT_SCHEMA,
    SchemaFileError,
    load_schema,
    parse_schema,
    shipped_schema,
)

SHIPPED = resources.files("pipeline") / "schemas"
UCI_TEXT = (SHIPPED / DEFAULT_SCHEMA).read_text(encoding="utf-8")


def _mutated(old: str, new: str, count: int = 1) -> str:
    assert UCI_TEXT.count(old) >= 1, old  # the mutation must hit the file, or the test proves nothing
    return UCI_TEXT.replace(old, new, count)


def _error(text: str, tmp_path: Path) -> str:
    file = tmp_path / "lender.toml"
    file.write_text(text)
    with pytest.raises(SchemaFileError) as err:
        load_schema(file)
    return str(err.value)


def test_every_shipped_schema_parses():
    names = sorted(p.name for p in SHIPPED.iterdir() if p.name.endswith(".toml"))
    assert names == sorted([DEFAULT_SCHEMA, GERMAN_CREDIT_SCHEMA])
    for name in names:
        assert shipped_schema(name).features


def test_the_default_schema_declares_every_uci_column_once():
    spec = shipped_schema()
    assert [f.name for f in spec.features] == list(S.FEATURE_NAMES)
    assert len(spec.features) == 23 and spec.id_column == "ID" and spec.label.column == "default.payment.next.month"
    assert spec.label_values[spec.label.adverse] == "default"


def test_the_counterfactual_rules_are_data_in_the_file():
    """_plausibility.py and the search read these; they come from the TOML, not from code."""
    raw = tomllib.loads(UCI_TEXT)
    pay0 = next(f for f in raw["features"] if f["name"] == "PAY_0")
    assert pay0["change"]["improves_to"]["2"] == [1, 0, -1]
    assert raw["payment_rules"]["slack_amount"] == S.BY_NAME["PAY_AMT1"].pays.slack_amount == 1000.0
    limit = next(f for f in raw["features"] if f["name"] == "LIMIT_BAL")
    assert limit["change"] == {"by": "lender", "direction": "any", "max_factor": 2.0}


def _code_strings(path: Path) -> str:
    """Every string literal of a module's code, docstrings left out (they may explain with examples)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out.append(node.value)
    return "\n".join(out)


def test_no_uci_column_name_is_left_in_the_code_of_schema_py():
    code = _code_strings(Path(S.__file__))
    words = set(re.split(r"[^A-Za-z0-9_]+", code))  # "AGE" is a column, the derived name "AGE_BANDS" is not
    for name in ("LIMIT_BAL", "EDUCATION", "MARRIAGE", "PAY_0", "AGE", "September"):
        assert name not in words, name
    for text in ("BILL_AMT", "PAY_AMT", "default.payment", "NT$", "graduate school"):
        assert text not in code, text
    assert "repayment_status" in code  # the walk sees the code's strings


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('direction = "increase"', 'direction = "upward"',
     "features[17] (PAY_AMT1).change.direction: expected 'none', 'increase', 'decrease' or 'any', got 'upward'"),
    ('unit = "NT$"', 'units = "NT$"',
     "features[0] (LIMIT_BAL).units: unknown key (a typing mistake?); expected one of the keys name, label, kind"),
    ("maximum = 6", "maximum = 4", "features[2] (EDUCATION).codes: code 5 is outside the range 0 to 4"),
    ('bill = "BILL_AMT2"', 'bill = "BILL_AMT9"',
     "features[17] (PAY_AMT1).change.pays.bill: expected the name of a feature of kind 'amount', got 'BILL_AMT9'"),
    ('bill = "BILL_AMT2"', 'bill = "PAY_2"',
     "features[17] (PAY_AMT1).change.pays.bill: expected the name of a feature of kind 'amount', got 'PAY_2'"),
    ("format = 1", "format = 2", "format: expected format = 1, the only version this credit-audit reads, got 2"),
    ("adverse = 1", "adverse = 2", "label: expected `adverse` to be one of the label values ['0', '1'], got 2"),
    ('codes = "repayment_status"', 'codes = "repayment"',
     "features[5] (PAY_0).codes: expected the name of a [code_lists] entry (['repayment_status']), got 'repayment'"),
    ("minimum = 18", 'minimum = "18"', "features[4] (AGE).minimum: expected a valid integer or a valid number"),
    ("[payment_rules]", "[payment_rulez]", "payment_rulez: unknown key"),
    ('name = "SEX"', 'name = "AGE"', "features[4] (AGE).name: the name 'AGE' is declared twice (also in features[1])"),
    ('"1" = [0, -1]', '"1" = [0, -3]', "features[5] (PAY_0).change.improves_to.1: expected codes of this feature"
     " ([-2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), got -3"),
    ('name = "UCI default of credit card clients"', "", "source.name: missing; expected this key (it is required)"),
    ('title = "Bill statements"', 'titel = "Bill statements"',
     "groups.bill amounts.titel: unknown key (a typing mistake?); expected one of the keys title, reason_subject"),
    ('[features.change]\nby = "lender"', '[features.change]\nby = "nobody"',
     "features[0] (LIMIT_BAL).change: change.by = \"nobody\" cannot have direction"),
    ('aliases = ["PAY_1"]', 'aliases = ["PAY_2"]',
     "features[6] (PAY_2).name: the name 'PAY_2' is declared twice (also in features[5])"),
    ('aliases = ["default payment next month"', 'aliases = ["AGE"',
     "features[4] (AGE).name: 'AGE' is the label column; it cannot also be a feature"),
    ("paid_minimum = 0", "paid_minimum = 10", "payment_rules.paid_minimum: expected a code of the status 'PAY_0'"),
    ('"-1" = 1.0, "0" = 0.02', '"-1" = 1.0, "x" = 0.02', "payment_rules.min_share.x: expected a code of the status"),
    ("max_factor = 2.0", "max_factor = 0.5", "features[0] (LIMIT_BAL).change.max_factor: expected greater than 1"),
    ('unit = "years"', 'unit = "years"\ncodes = { "1" = "x" }', 'features[4] (AGE).codes: kind = "count" has no codes'),
    ('name = "SEX"', 'name = "ID"', "features[1] (ID).name: 'ID' is the id column; it cannot also be a feature"),
    ('unordered_codes = [-2, -1, 0]', 'unordered_codes = [-2, -1, 10]', "features[5] (PAY_0).unordered_codes"),
    ('kind = "count"', 'kind = "category"', "features[4] (AGE).codes: a category needs `codes`"),
])
def test_a_mistake_is_named_by_file_key_and_expectation(tmp_path, old, new, expected):
    message = _error(_mutated(old, new), tmp_path)
    assert message.startswith(f"{tmp_path / 'lender.toml'}: "), message
    assert expected in message, message


def test_many_mistakes_are_listed_up_to_a_cap(tmp_path):
    message = _error(UCI_TEXT.replace('kind = "amount"', 'kind = "money"'), tmp_path)
    lines = message.splitlines()
    assert len(lines) == 11 and lines[-1].endswith("... and 3 more problem(s) in the schema")
    assert all("kind: expected 'amount', 'count', 'category', 'status' or 'date', got 'money'" in x for x in lines[:10])


def test_not_toml_and_not_a_file(tmp_path):
    assert re.search(r"lender.toml: not a valid TOML file \(.*line 2", _error("format = 1\nlabel = = 2\n", tmp_path))
    with pytest.raises(SchemaFileError, match="nowhere.toml: no such schema file"):
        load_schema(tmp_path / "nowhere.toml")


def test_text_codes_have_no_numeric_range():
    text = (SHIPPED / GERMAN_CREDIT_SCHEMA).read_text()
    bad = text.replace('name = "housing"\nlabel = "Housing"\n', 'name = "housing"\nlabel = "Housing"\nminimum = 1\n')
    assert bad != text
    with pytest.raises(SchemaFileError, match=r"features\[14\] \(housing\).minimum: a feature with text codes"):
        parse_schema(bad, "german.toml")


def test_mixed_codes_are_refused():
    bad = UCI_TEXT.replace('codes = { "1" = "male", "2" = "female" }', 'codes = { "1" = "male", "F" = "female" }')
    assert bad != UCI_TEXT
    with pytest.raises(SchemaFileError, match="all whole numbers or all text"):
        parse_schema(bad, "x.toml")
