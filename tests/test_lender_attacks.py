"""A hostile or careless lender's hand-over, each failure found by attacking `run --model --schema`.

Every case here once failed: a TOML file nested a few thousand levels deep
(card, schema or configuration) stopped the run with "maximum recursion depth
exceeded" and no file named; a model path that is a fifo or a symlink to
/dev/zero hung the run (waiting for a writer, or reading endless zeros into
memory); a card that is a directory or fifo was reported as missing; a
skops or TorchScript zip of a few hundred kilobytes unpacked hundreds of
megabytes into memory before any check; a CreditModel folder with a card
beside it was loaded without its card, so the card's sha256 was never checked.
Each now stops with one message naming the file and what was expected.
"""

from __future__ import annotations

import io
import os
import re
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from german import MODEL_FILES, card_text, load_german, train_xgboost

from pipeline.adapters import ModelCardError, ModelFileError, card_path, load_audited_model
from pipeline.config import ConfigError, load_config
from pipeline.schema_file import SchemaFileError, load_schema

DEEP = "x = " + "[" * 3000 + "]" * 3000 + "\n"  # ~6 kB: far under every size limit, deeper than Python's stack
TOO_DEEP = "nested too deeply"
HANG_GUARD_S = 20  # a read that blocks (fifo) or never ends (/dev/zero) fails the test instead of hanging it


@pytest.fixture(scope="module")
def columns() -> list[str]:
    return list(load_german().X.columns)


@pytest.fixture(scope="module")
def xgb_bytes(tmp_path_factory) -> bytes:
    """The German XGBoost example as its JSON file's bytes (trained once for the module)."""
    path = tmp_path_factory.mktemp("xgb") / MODEL_FILES["xgboost_json"]
    train_xgboost(load_german()).save_model(str(path))
    return path.read_bytes()


@pytest.fixture
def no_hang() -> Iterator[None]:
    def stop(*_: object) -> None:
        raise TimeoutError(f"still reading after {HANG_GUARD_S} s: the read blocks or never ends")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(HANG_GUARD_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _xgb_model(folder: Path, data: bytes, columns: list[str], card_extra: str = "") -> Path:
    model = folder / "m.json"
    model.write_bytes(data)
    card_path(model).write_text(card_text("xgboost", "German XGBoost", columns) + card_extra)
    return model


# ---- TOML nested too deeply: named as bad TOML in its file -------------------

def test_a_card_nested_too_deeply_is_bad_toml_naming_the_card(xgb_bytes, columns, tmp_path):
    model = _xgb_model(tmp_path, xgb_bytes, columns, DEEP)
    with pytest.raises(ModelCardError, match=TOO_DEEP) as err:
        load_audited_model(model)
    assert str(card_path(model)) in str(err.value)


def test_a_schema_nested_too_deeply_is_bad_toml_naming_the_schema(tmp_path):
    schema = tmp_path / "schema.toml"
    schema.write_text("format = 1\n" + DEEP)
    with pytest.raises(SchemaFileError, match=TOO_DEEP) as err:
        load_schema(schema)
    assert str(schema) in str(err.value)


def test_a_configuration_nested_too_deeply_is_bad_toml_naming_the_file(tmp_path):
    config = tmp_path / "audit.toml"
    config.write_text(DEEP)
    with pytest.raises(ConfigError, match=TOO_DEEP) as err:
        load_config(config)
    assert str(config) in str(err.value)


# ---- paths that are not regular files ------------------------------------------

def test_a_model_path_that_is_a_fifo_is_refused_at_once(xgb_bytes, columns, tmp_path, no_hang):
    model = _xgb_model(tmp_path, xgb_bytes, columns)
    model.unlink()
    os.mkfifo(model)
    with pytest.raises(ModelFileError, match=r"m\.json: the model file is a named pipe \(fifo\), not a regular file"):
        load_audited_model(model)


def test_a_model_symlinked_to_dev_zero_is_refused_unread(xgb_bytes, columns, tmp_path, no_hang):
    model = _xgb_model(tmp_path, xgb_bytes, columns)
    model.unlink()
    model.symlink_to("/dev/zero")
    with pytest.raises(ModelFileError, match="the model file is a character device, not a regular file"):
        load_audited_model(model)


def test_a_model_path_that_is_a_directory_is_named_as_one(columns, tmp_path):
    model = tmp_path / "m.json"
    model.mkdir()
    card_path(tmp_path / "m.json.x").write_text(card_text("xgboost", "x", columns))  # m.json.card.toml: a folder's card
    assert card_path(model).is_file()
    with pytest.raises(ModelFileError, match="the model file is a directory, not a regular file"):
        load_audited_model(model)


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_card_that_is_not_a_file_is_named_as_such_not_as_missing(kind, xgb_bytes, columns, tmp_path, no_hang):
    model = _xgb_model(tmp_path, xgb_bytes, columns)
    card = card_path(model)
    card.unlink()
    card.mkdir() if kind == "directory" else os.mkfifo(card)
    with pytest.raises(ModelCardError, match=f"{card}: the model card is a {kind if kind == 'directory' else 'named'}"):
        load_audited_model(model)


def test_a_card_that_grows_past_its_limit_is_refused(xgb_bytes, columns, tmp_path, monkeypatch):
    from pipeline.adapters import _card

    model = _xgb_model(tmp_path, xgb_bytes, columns, "# " + "x" * 500 + "\n")
    monkeypatch.setattr(_card, "MAX_CARD_BYTES", 400)
    with pytest.raises(ModelCardError, match="expected at most 400"):
        load_audited_model(model)


# ---- archives that unpack to far more than they weigh ---------------------------

def _bomb(unpacked: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("schema.json", "w") as member:
        for _ in range(unpacked // (1 << 20)):
            member.write(b" " * (1 << 20))
    return buf.getvalue()


@pytest.mark.parametrize(("kind", "name"), [("skops", "m.skops"), ("torchscript", "m.torchscript")])
def test_a_zip_bomb_is_refused_before_any_loader_unpacks_it(kind, name, columns, tmp_path, monkeypatch):
    from pipeline.adapters import _files

    monkeypatch.setattr(_files, "MAX_UNPACKED_BYTES", 4 << 20)
    data = _bomb(8 << 20)
    assert len(data) < 100_000  # kilobytes on disk: the file size limit alone never sees it
    model = tmp_path / name
    model.write_bytes(data)
    card_path(model).write_text(card_text(kind, "bomb", columns, adverse_column=1))
    with pytest.raises(ModelFileError, match=r"unpack to 8,388,608 bytes from [0-9,]+; expected at most 4,194,304"):
        load_audited_model(model)


# ---- a folder with a card is read through its card --------------------------------

def test_a_model_folder_with_a_card_beside_it_is_read_through_the_card(columns, tmp_path):
    from flows.tasks import load_given_model

    folder = tmp_path / "lender_model"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    card_path(folder).write_text(card_text("credit-audit-mlp", "MLP", columns, sha256="0" * 64))
    with pytest.raises(ModelFileError, match="says sha256 = 0000"):
        load_given_model(str(folder))


# ---- text codes: the loader strips cells, so the schema's codes must be stripped too ----------

def _german_schema_with(old: str, new: str, folder: Path) -> Path:
    from pipeline.schema_file import GERMAN_CREDIT_SCHEMA

    text = (Path(__file__).resolve().parents[1] / "pipeline" / "schemas" / GERMAN_CREDIT_SCHEMA).read_text()
    assert old in text
    schema = folder / "schema.toml"
    schema.write_text(text.replace(old, new, 1))
    return schema


@pytest.mark.parametrize("code", ['"no checking account "', '" no checking account"', '" "'])
def test_a_text_code_with_spaces_around_it_is_refused(code, tmp_path):
    line = '"no checking account" = "no checking account"  # A14'
    schema = _german_schema_with(line, f'{line}\n{code} = "never matched: cells are read stripped"', tmp_path)
    with pytest.raises(SchemaFileError, match=r"features\[0\] \(status_of_existing_checking_account\)\.codes: expected "
                                              r"each code without spaces at either end"):
        load_schema(schema)


def test_a_label_value_with_spaces_around_it_is_refused(tmp_path):
    schema = _german_schema_with('"bad" = "bad credit risk"', '"bad " = "bad credit risk"', tmp_path)
    schema.write_text(schema.read_text().replace('adverse = "bad"', 'adverse = "bad "', 1))
    with pytest.raises(SchemaFileError, match=r"label: expected each code without spaces at either end.*'bad '"):
        load_schema(schema)


def _german_csv_with(edit, folder: Path) -> Path:
    """The real German file with `edit(rows)` applied, written under `folder` (never into the project)."""
    import csv

    from german import german_csv_path

    with open(german_csv_path(), newline="") as fh:
        rows = list(csv.reader(fh))
    edit(rows)
    path = folder / "german.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_a_category_spelt_in_another_case_is_refused_by_line_and_column(tmp_path):
    from pipeline import DataValidationError

    def shout(rows: list[list[str]]) -> None:
        rows[5][2] = rows[5][2].upper()  # credit_history of the file's line 6

    with pytest.raises(DataValidationError, match=r"german\.csv: line 6, column credit_history: got 'DELAY IN PAYING"):
        load_german(_german_csv_with(shout, tmp_path))


def test_a_category_with_spaces_around_it_reads_as_its_code():
    def pad(rows: list[list[str]]) -> None:
        rows[5][2] = f"  {rows[5][2]} "

    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        padded = load_german(_german_csv_with(pad, Path(folder)))
    assert padded.X.equals(load_german().X)


# ---- a data file that is not a regular file --------------------------------------

@pytest.mark.parametrize(("make", "kind"), [("fifo", "a named pipe"), ("dev_zero", "a character device"),
                                            ("directory", "a directory")])
def test_a_data_path_that_is_not_a_file_is_refused_at_once(make, kind, tmp_path, no_hang):
    from pipeline import DataValidationError, load_portfolio

    data = tmp_path / "german.csv"
    if make == "fifo":
        os.mkfifo(data)
    elif make == "dev_zero":
        data.symlink_to("/dev/zero")
    else:
        data.mkdir()
    with pytest.raises(DataValidationError, match=f"german.csv: the data file is {kind}"):
        load_portfolio(data)


@pytest.mark.parametrize("make", ["fifo", "dev_zero"])
def test_a_schema_or_configuration_that_is_not_a_file_is_refused_at_once(make, tmp_path, no_hang):
    kind = "a named pipe" if make == "fifo" else "a character device"
    for name, read, error, words in (("schema.toml", load_schema, SchemaFileError, f"the schema file is {kind}"),
                                     ("audit.toml", load_config, ConfigError, f"it is {kind}.*, not a regular file")):
        path = tmp_path / name
        os.mkfifo(path) if make == "fifo" else path.symlink_to("/dev/zero")
        with pytest.raises(error, match=f"{name}: .*{words}"):
            read(path)


# ---- --previous: only a finished run of the same schema file ------------------------

def test_an_explicit_previous_run_of_another_schema_or_none_is_refused(slice_record, tmp_path):
    from flows.cmd_run import MSG_PREVIOUS_SCHEMA, check_previous
    from pipeline import schema as S
    from pipeline.run_record import write_record

    previous = tmp_path / "uci-run"
    write_record(previous, slice_record)  # a run of the default (UCI) schema
    check_previous(str(previous), S.read_schema(None)[1])  # the same schema: a valid earlier run
    german, raw = S.read_schema(Path(__file__).resolve().parents[1] / "pipeline" / "schemas" / "german_credit.toml")[:2]
    S.activate(german)
    expected = MSG_PREVIOUS_SCHEMA.split("(")[0].format(run=previous)
    with pytest.raises(ValueError, match=re.escape(expected)):
        check_previous(str(previous), raw)
    with pytest.raises(ValueError, match="nowhere: not a finished run to compare with"):
        check_previous(str(tmp_path / "nowhere"), raw)
