"""Turn the fitted model and surrogate into the per-applicant table and the run's summary sections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema as S
from ._loading import Portfolio
from .audited_model import AuditedModel
from .config import AuditConfig
from .metrics import performance
from .model import CreditModel
from .policy import policy_of
from .run_record import DataSection, ModelSection, Performance, RunRecord, SplitSection, SurrogateSection
from .splitting import SplitIndex
from .surrogate import DECISIONS, Surrogate
from .versions import library_versions


def applicants_table(portfolio: Portfolio, split: SplitIndex, model: CreditModel, surrogate: Surrogate) -> pd.DataFrame:
    """One row per applicant: id, split, label, probability, decisions, raw features."""
    p = model.predict_proba(portfolio.features)[:, 1]
    decline = p >= model.threshold_
    table = pd.DataFrame({
        "id": portfolio.ids.to_numpy(),
        "split": split.labels(len(portfolio)),
        "label": portfolio.labels.to_numpy(),
        "probability": p,
        "decision": np.where(decline, DECISIONS[1], DECISIONS[0]),
        "surrogate_decision": np.take(DECISIONS, surrogate.predict(portfolio.features)),
    })
    return pd.concat([table, portfolio.features.reset_index(drop=True)], axis=1)


def data_section(portfolio: Portfolio) -> DataSection:
    f = portfolio.features
    return DataSection(
        source=Path(portfolio.source).name,  # the file's name: no local path in any output
        rows=len(portfolio),
        data_hash=portfolio.data_hash,
        header_variant=portfolio.header_variant,
        default_rate=float(portfolio.labels.mean()),
        findings=tuple(vars(x) | {"value": float(x.value)} for x in portfolio.findings),
        ranges={c: {"min": float(f[c].min()), "max": float(f[c].max())} for c in f.columns},
    )


def split_section(split: SplitIndex) -> SplitSection:
    return SplitSection(test_fraction=split.test_fraction, train_rows=len(split.train), test_rows=len(split.test),
                        seed=split.seed)


# How the report names each model card type.
MODEL_KINDS = {"onnx": "ONNX, run by onnxruntime", "torchscript": "TorchScript", "skops": "scikit-learn, saved with skops",
               "xgboost": "XGBoost native model", "lightgbm": "LightGBM text model",
               "credit-audit-mlp": "credit-audit MLP"}


def lender_model_section(model: AuditedModel, reused_from: str | None) -> ModelSection:
    """A lender's model, audited as is: what its card and files say; nothing about training, which the audit
    did not do (pipeline.adapters `describe`)."""
    card = model.describe()  # type: ignore[attr-defined]
    policy = policy_of(model)
    return ModelSection(
        model_hash=model.model_hash(),  # type: ignore[attr-defined]
        features=tuple(model.features),
        excluded_inputs=tuple(n for n in S.FEATURE_NAMES if n not in model.features),
        architecture=f"{card['name']} ({MODEL_KINDS.get(card['type'], card['type'])}, the lender's model, audited as"
                     " given: not trained by this audit)",
        hidden=(),
        threshold=model.threshold_,
        policy=policy.to_dict(),
        policy_text=card.get("policy") or policy.describe(model.threshold_),
        best_epoch=None,
        training={},
        preprocessing="the model's own (inside the model file)",
        calibration="the model's own",
        history=(),
        reused_from=reused_from,
        card=json.loads(json.dumps(card)),
    )


def model_section(model: AuditedModel, reused_from: str | None = None) -> ModelSection:
    if not isinstance(model, CreditModel):
        return lender_model_section(model, reused_from)
    meta = model.metadata()
    return ModelSection(
        model_hash=model.model_hash(),
        features=tuple(model.features),
        excluded_inputs=tuple(n for n in S.FEATURE_NAMES if n not in model.features),
        architecture=model.architecture(),
        hidden=tuple(model.hidden),
        threshold=model.threshold_,
        policy=model.policy.to_dict(),
        policy_text=model.policy.describe(model.threshold_),
        best_epoch=model.best_epoch_,
        training=meta["training"],
        preprocessing=meta["preprocessing"],
        calibration=meta["calibration"],
        history=tuple(getattr(model, "history_", [])),
        reused_from=reused_from,
    )


def performance_section(table: pd.DataFrame, threshold: float, all_rows: bool = False) -> dict[str, Performance]:
    """Per split; with a reused model no row was trained on, so `all` is out-of-sample too."""
    parts = dict(iter(table.groupby("split")))
    if all_rows:
        parts["all"] = table
    return {
        name: Performance.model_validate(performance(part["label"].to_numpy(), part["probability"].to_numpy(), threshold))
        for name, part in parts.items()
    }


def surrogate_section(surrogate: Surrogate, table: pd.DataFrame) -> SurrogateSection:
    agree = table["decision"] == table["surrogate_decision"]
    test = table["split"] == "test"
    importance = surrogate.tree_.feature_importances_
    return SurrogateSection(
        max_depth=surrogate.max_depth,
        n_leaves=int(surrogate.tree_.get_n_leaves()),
        fidelity_test=float(agree[test].mean()),
        fidelity_train=float(agree[table["split"] == "train"].mean()),
        rules=tuple(surrogate.rules()),
        feature_importance={n: float(v) for n, v in zip(surrogate.features, importance, strict=True) if v > 0},
        fidelity_approve_all_test=float((table.loc[test, "decision"] == DECISIONS[0]).mean()),
    )


def core_record(*, run_id: str, created: str, config: AuditConfig, device: str, code_version: str,
                portfolio: Portfolio, split: SplitIndex, model: CreditModel, surrogate: Surrogate,
                table: pd.DataFrame, reused_from: str | None = None) -> RunRecord:
    """The record of everything computed before the optional sections (explanations, fairness, flags, ...).

    The one place a run record's core is assembled: the flow and the tests that build runs call it.
    """
    settings = json.loads(json.dumps(config.to_dict()))  # tuples -> lists: the record holds JSON values
    return RunRecord(
        run_id=run_id,
        created=created,
        seed=config.seed,
        device=device,
        code_version=code_version,
        config=settings,
        lender=settings["lender"],
        governance=settings.get("governance"),
        notice=settings["notice"],
        data=data_section(portfolio),
        split=split_section(split),
        model=model_section(model, reused_from),
        performance=performance_section(table, model.threshold_, all_rows=reused_from is not None),
        surrogate=surrogate_section(surrogate, table),
        decisions={str(k): int(v) for k, v in table["decision"].value_counts().items()},
        versions=library_versions(),
    )
