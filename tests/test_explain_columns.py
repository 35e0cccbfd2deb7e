"""The applicants-table column names of the explanation methods, and their inverse (pipeline.columns)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from pipeline import schema as S
from pipeline.columns import MSG_METHOD, SHAP_BASE, columns_of, explained_name, explanation_column


def test_names_follow_docs_outputs_and_invert():
    assert explanation_column("shap", "PAY_0") == "shap_PAY_0"
    assert explanation_column("lime", "LIMIT_BAL") == "lime_LIMIT_BAL"
    assert explanation_column("shapgroup", "repayment history") == "shapgroup_repayment_history"
    assert explained_name("shap_PAY_0", "shap") == "PAY_0"
    assert explained_name("shapgroup_repayment_history", "shapgroup") == "repayment_history"
    assert explained_name("shapgroup_repayment_history", "shapgroup", ["repayment history"]) == "repayment history"
    # the base value and the other methods' columns are not SHAP values of a feature
    assert explained_name(SHAP_BASE, "shap") is None
    assert explained_name("shapgroup_repayment_history", "shap") is None
    assert explained_name("lime_PAY_0", "shap") is None
    with pytest.raises(ValueError, match=MSG_METHOD.split("{")[0]):
        explanation_column("gradient", "PAY_0")


def test_columns_of_a_frame_in_order():
    frame = pd.DataFrame(
        columns=["ID", "shap_PAY_0", SHAP_BASE, "shap_AGE", "shapgroup_demographics", "lime_PAY_0", "shap_other"]
    )
    assert columns_of(frame, "shap") == {"shap_PAY_0": "PAY_0", "shap_AGE": "AGE", "shap_other": "other"}
    assert columns_of(frame, "shap", S.FEATURE_NAMES) == {"shap_PAY_0": "PAY_0", "shap_AGE": "AGE"}
    assert columns_of(list(frame.columns), "lime") == {"lime_PAY_0": "PAY_0"}
    assert columns_of(frame, "shapgroup", ["demographics"]) == {"shapgroup_demographics": "demographics"}


def test_column_names_and_the_model_protocol_import_without_torch():
    code = "import sys, pipeline.columns, pipeline.audited_model; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
