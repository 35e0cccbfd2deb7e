"""One whole run of the Prefect audit flow on the real data, and its outputs' contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import CreditModel
from pipeline import outputs as O
from pipeline import schema as S
from pipeline.run_record import load_record

pytestmark = pytest.mark.slow


def test_run_writes_the_documented_outputs(audit_run, portfolio):
    record = load_record(audit_run)  # the one loader validates every section's keys and types
    assert record.data.data_hash == portfolio.data_hash
    assert record.model.model_hash == CreditModel.load(audit_run / O.MODEL_DIR).model_hash()
    assert record.performance["test"].roc_auc >= 0.77
    assert record.surrogate.fidelity_test >= 0.90
    assert record.surrogate.rules and all(r.text.startswith("IF ") for r in record.surrogate.rules)
    assert record.device == "cpu"
    assert None not in (record.explanations, record.fairness, record.flags)


def test_applicants_table_contract(audit_run, portfolio):
    table = pd.read_parquet(audit_run / O.APPLICANTS)
    assert len(table) == len(portfolio)
    assert {"id", "split", "probability", "decision", "surrogate_decision"} <= set(table.columns)
    assert set(table["split"]) == {"train", "test"}
    assert (table["split"] == "test").sum() == 6000
    assert set(table["decision"]) == {"approve", "decline"}
    assert table["id"].is_unique
    assert list(table[list(S.FEATURE_NAMES)].columns) == list(S.FEATURE_NAMES)


def test_manifest_verifies(audit_run):
    assert O.verify_manifest(audit_run) == []


def test_run_is_sealed_with_the_operators_key(audit_run, signing_keystore):
    """The flow signs its manifest with the keystore's key; the signature is the run's first checkpoint."""
    from pipeline.checkpoint import Checkpoint
    from pipeline.signing import load_public
    from review import verify_run

    key = load_public(signing_keystore)
    sealed = Checkpoint.from_json((audit_run / O.MANIFEST_SIG).read_text())
    assert sealed.key_id == key.key_id and sealed.manifest_sha256 == O.manifest_digest(audit_run)
    report = verify_run(audit_run, public_key=key, checkpoints=[("manifest.json.sig", sealed)])
    assert report.ok, report.problems


def test_flow_predictions_reproduce_a_direct_fit(audit_run, fitted_model, portfolio):
    """Same seed, same device: the flow's model equals the one trained directly."""
    table = pd.read_parquet(audit_run / O.APPLICANTS)
    direct = fitted_model.predict_proba(portfolio.features)[:, 1]
    np.testing.assert_array_equal(table["probability"].to_numpy(), direct)
