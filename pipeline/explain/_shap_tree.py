"""Exact SHAP of a tree ensemble: interventional TreeSHAP of P(adverse), for `TreeEnsemble` models.

The game is the one the Kernel SHAP engine estimates: v(S) = mean over the
background rows b of P(adverse | x on S, b elsewhere). shap's TreeExplainer
(`feature_perturbation="interventional"`, the same recorded background,
`model_output="probability"`) computes its Shapley values exactly from the
trees when the ensemble's probability is a sum of its trees' outputs: forests
and single trees whose leaves hold probabilities (shap's "identity" link).
Then the values are the kernel path's numbers without its sampling error, in
the same units (base = E_background[P(adverse)]).

For boosted ensembles (XGBoost, LightGBM, scikit-learn gradient boosting) the
trees add up log-odds and P(adverse) is their logistic transform. There shap
computes exact log-odds values and rescales them per background row by
(P(x) - P(b)) / (logit(x) - logit(b)) (`dense_independent` in its
tree_shap.h): additive, but not the Shapley values of P(adverse), and far from
them (German credit data, XGBoost 200 trees of depth 4: up to 0.12 off exact
enumeration for one applicant and background row, 18% mean relative error
against converged Kernel SHAP over 100 background rows; tests/test_explain_tree.py
pins this). So such a booster is refused with the reason, and the caller
keeps Kernel SHAP of the probability, the reason recorded.

The booster is also the adapter's claim about the model, checked on every
call: the trees must reproduce `predict_proba`'s column 1 within
`TREE_OUTPUT_TOLERANCE` on the rows explained (base + sum of values), on the
background, and on `HYBRID_CHECKS` random hybrid rows (the rows the game is
made of, where a model could differ from its trees unseen elsewhere); named
booster inputs must be the model's features in order. When a check fails (a
calibration or preprocessing outside the trees, another column order, a
booster shap cannot read) `TreeShapUnavailable` says why: a wrong booster
costs speed, never a wrong explanation.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import shap

from ..audited_model import MissingCapability, TreeEnsemble, require
from ._values import Attributions

# Libraries give P(adverse) in float32 arithmetic (XGBoost: 2e-7 from shap's float64 sums on the German data);
# a calibration or preprocessing outside the trees moves it by far more.
TREE_OUTPUT_TOLERANCE = 1e-5
HYBRID_CHECKS = 256  # random hybrid rows on which the trees must give the model's P(adverse)
MSG_NO_BOOSTER = "the model's tree_booster() failed ({error})"
MSG_NAMES = (
    "the booster's inputs are not the model's features in that order: its input {i} is {name!r},"
    " the model's feature {i} is {feature!r}"
)
MSG_UNREADABLE = "shap {version} TreeExplainer cannot explain {kind} as a probability ({error})"
MSG_NOT_ADDITIVE = (
    "the {kind}'s trees add up {output}, not P(adverse): shap's TreeExplainer would rescale their exact values"
    " per background row, which are not the Shapley values of P(adverse)"
)
MSG_NOT_BINARY = "the booster has {classes} outputs per row; TreeSHAP of P(adverse) needs a binary classifier"
MSG_OUTPUT = (
    "the trees give a P(adverse) up to {gap:.3g} away from predict_proba on the {where} (tolerance {tol:g}):"
    " the booster is not the whole model"
)
_GENERATED_NAME = re.compile(r"(f|Column_|x)\d+")  # names a library makes up when it was given none


class TreeShapUnavailable(ValueError):
    """The model offers a booster, but TreeSHAP of it would not explain the model's own P(adverse)."""


def booster_input_names(booster: object) -> list[str] | None:
    """The input names the booster was fitted with, or None when it has none of its own."""
    if hasattr(booster, "feature_names_in_"):  # scikit-learn, fitted on a frame
        names = list(booster.feature_names_in_)
    elif callable(getattr(booster, "feature_name", None)):  # lightgbm.Booster
        names = list(booster.feature_name())
    else:  # xgboost.Booster: a list or None
        names = list(getattr(booster, "feature_names", None) or [])
    if not names or all(_GENERATED_NAME.fullmatch(str(n)) for n in names):
        return None
    return [str(n) for n in names]


def _explainer(booster: object, background: np.ndarray) -> shap.TreeExplainer:
    """The TreeExplainer of P(adverse), once it is known to be exact for this booster (else TreeShapUnavailable)."""
    kind = type(booster).__name__
    try:
        explainer = shap.TreeExplainer(
            booster, data=background, feature_perturbation="interventional", model_output="probability"
        )
        link = explainer.model.get_transform()
    except Exception as exc:  # shap raises several types for models it cannot read as a probability
        raise TreeShapUnavailable(MSG_UNREADABLE.format(version=shap.__version__, kind=kind, error=exc)) from None
    if link != "identity":
        output = getattr(explainer.model, "tree_output", link).replace("_", "-")
        raise TreeShapUnavailable(MSG_NOT_ADDITIVE.format(kind=kind, output=output))
    return explainer


def _positive_class(values: np.ndarray, expected: object) -> tuple[np.ndarray, float]:
    """The values and base of class 1 (scikit-learn ensembles give both classes, boosters class 1 only)."""
    base = np.asarray(expected, dtype=np.float64).reshape(-1)
    if values.ndim == 3:
        if values.shape[-1] != 2:
            raise TreeShapUnavailable(MSG_NOT_BINARY.format(classes=values.shape[-1]))
        return values[..., 1], float(base[1])
    if base.size != 1:
        raise TreeShapUnavailable(MSG_NOT_BINARY.format(classes=base.size))
    return values, float(base[0])


def _hybrids(x: np.ndarray, bg: np.ndarray, n: int = HYBRID_CHECKS) -> np.ndarray:
    """`n` rows taking each feature from a random applicant or a random background row (seeded: reproducible)."""
    rng = np.random.default_rng(0)
    source = x if len(x) else bg
    mask = rng.random((n, bg.shape[1])) < 0.5
    return np.where(mask, source[rng.integers(len(source), size=n)], bg[rng.integers(len(bg), size=n)])


def _largest_gap(explainer: shap.TreeExplainer, model, rows: np.ndarray, features: list[str]) -> float:
    """max |P(adverse) of the trees - the model's predict_proba| over `rows`."""
    trees = np.asarray(explainer.model.predict(rows), dtype=np.float64)
    trees = trees[:, 1] if trees.ndim == 2 else trees
    p = np.asarray(model.predict_proba(pd.DataFrame(rows, columns=features)), dtype=np.float64)[:, 1]
    return float(np.abs(trees - p).max())


def tree_ensemble_shap(model, frame: pd.DataFrame, background: pd.DataFrame) -> Attributions:
    """Exact interventional SHAP values (n, F) of P(adverse) of a `TreeEnsemble` model; base + sum == P(adverse).

    Raises TreeShapUnavailable (the reason in its message) when the booster
    does not reproduce the model (see the module docstring).
    """
    try:
        booster = require(model, TreeEnsemble, "TreeSHAP").tree_booster()
    except MissingCapability:
        raise
    except Exception as exc:  # an adapter's bug: explain without its trees rather than fail the run
        raise TreeShapUnavailable(MSG_NO_BOOSTER.format(error=f"{type(exc).__name__}: {exc}")) from None
    features = list(model.features)
    names = booster_input_names(booster)
    if names is not None and names != features:
        i = next(i for i, pair in enumerate(zip(names + [None], features + [None], strict=False)) if len(set(pair)) > 1)
        name, feature = (n[i] if i < len(n) else "(none)" for n in (names, features))
        raise TreeShapUnavailable(MSG_NAMES.format(i=i, name=name, feature=feature))
    bg = background[features].to_numpy(np.float64)
    x = frame[features].to_numpy(np.float64)
    p = np.asarray(model.predict_proba(frame), dtype=np.float64)[:, 1]
    p_bg = np.asarray(model.predict_proba(background), dtype=np.float64)[:, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's notices (background size, model conversion); values unaffected
        explainer = _explainer(booster, bg)
        rows = x if len(x) else bg[:1]  # an empty frame: the shapes of one row, none kept
        raw = np.asarray(explainer.shap_values(rows, check_additivity=False), dtype=np.float64)[: len(x)]
    values, base = _positive_class(raw, explainer.expected_value)
    gaps = {
        "applicants explained": float(np.abs(base + values.sum(1) - p).max(initial=0.0)),
        "background": abs(base - float(p_bg.mean())),
        "hybrid rows": _largest_gap(explainer, model, _hybrids(x, bg), features),
    }
    for where, gap in gaps.items():
        if not gap <= TREE_OUTPUT_TOLERANCE:  # `not <=`: a NaN gap fails too
            raise TreeShapUnavailable(MSG_OUTPUT.format(gap=gap, where=where, tol=TREE_OUTPUT_TOLERANCE))
    return Attributions(
        values=values,
        base=base,
        output=p,
        features=tuple(features),
        method=f"TreeSHAP, interventional, shap {shap.__version__} TreeExplainer on the model's"
        f" {type(booster).__module__.split('.')[0]} {type(booster).__name__}, {len(bg)} background rows,"
        " output P(adverse) (exact: no sampling)",
    )
