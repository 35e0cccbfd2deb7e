"""Benchmarks and challengers: is the neural network worth its opacity?

SR 11-7 asks that a model be compared with simpler alternatives on the same
data. Here the production model's held-out split is scored by three models
trained on the same training rows and inputs: the majority-class baseline
(approve everyone; it scores every applicant with the training default rate),
a logistic regression and gradient-boosted trees (scikit-learn's
HistGradientBoostingClassifier). Each model's decisions follow the
production threshold policy, applied to its own training scores.

Every model's point figures come from `pipeline.metrics.performance`, the
function that computes the production model's performance section, so the
production row here equals that section. ROC AUC intervals come from one
stratified bootstrap (defaulters and non-defaulters resampled separately,
class sizes fixed) whose replicates are shared by all models: the difference
of two models' AUC on each replicate is the paired comparison, and its
percentile interval says whether a challenger ranks applicants better or
worse than the production model. AUC is a smooth statistic (a Mann-Whitney
mean), so its percentile intervals contain their estimates; a test checks it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from . import schema as S
from .constants import BENCHMARK_BOOTSTRAP, BOOSTED, CI_LEVEL, LOGISTIC, MAJORITY, PRODUCTION
from .fairness import weighted_auc
from .metrics import performance
from .policy import ThresholdPolicy
from .run_record import BenchmarksSection, Interval, ModelScore

NAMES = {
    PRODUCTION: "Production model",
    MAJORITY: "Majority class (approve everyone)",
    LOGISTIC: "Logistic regression",
    BOOSTED: "Gradient-boosted trees",
}
DESCRIPTIONS = {
    PRODUCTION: "the audited model",
    MAJORITY: "scores every applicant with the training default rate, so it ranks no one above anyone",
    LOGISTIC: "categories and statuses one-hot encoded, amounts signed-log compressed, all inputs standardised",
    BOOSTED: "scikit-learn HistGradientBoostingClassifier, default settings, early stopping off",
}
HIGHER, LOWER, SAME = "higher", "lower", "no clear difference"
METHOD = (
    "stratified bootstrap of the held-out split ({n_boot} replicates; defaulters and non-defaulters resampled "
    "separately); {level:.0%} percentile intervals; paired: every model is scored on the same replicates and the "
    "AUC difference is taken replicate by replicate"
)
MSG_LENGTH = "{name}: {got} scores for {want} held-out applicants"

# One OpenMP/BLAS thread: the trees of 24,000 rows fit in ~1.6 s on one thread, and on the
# project's shared cores more threads wait on each other (measured under load: 45 s on all threads).
BENCHMARK_THREADS = 1
APPROVE_EVERYONE = 1.0  # a threshold no probability below 1 reaches

Scorer = Callable[[pd.DataFrame], np.ndarray]


def _signed_log(x: np.ndarray) -> np.ndarray:
    """The production encoder's compression of NT$ amounts (bills can be negative)."""
    return np.sign(x) * np.log1p(np.abs(x) / 1000.0)


def _logistic(features: Sequence[str], seed: int) -> object:
    statuses = [n for n in features if S.BY_NAME[n].is_categorical]
    amounts = [n for n in features if S.BY_NAME[n].kind == "amount"]
    others = [n for n in features if n not in statuses and n not in amounts]
    encode = ColumnTransformer([
        ("status", OneHotEncoder(handle_unknown="ignore"), statuses),
        ("amount", make_pipeline(FunctionTransformer(_signed_log), StandardScaler()), amounts),
        ("other", StandardScaler(), others),
    ])
    return make_pipeline(encode, LogisticRegression(max_iter=2000, random_state=seed))


def _boosted(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(early_stopping=False, random_state=seed)


def fit_challengers(X_train: pd.DataFrame, y_train: np.ndarray, features: Sequence[str],
                    seed: int) -> dict[str, Scorer]:
    """Fit the challengers on the production model's training rows and inputs: key -> P(default) scorer."""
    X = X_train[list(features)]
    y = np.asarray(y_train, dtype=int)
    rate = float(y.mean())
    logistic = _logistic(features, seed).fit(X, y)
    boosted = _boosted(seed).fit(X, y)
    return {
        MAJORITY: lambda frame: np.full(len(frame), rate),
        LOGISTIC: lambda frame: logistic.predict_proba(frame[list(features)])[:, 1],
        BOOSTED: lambda frame: boosted.predict_proba(frame[list(features)])[:, 1],
    }


def stratified_counts(y: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) multiplicities: each class resampled with replacement within itself, class sizes fixed."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, len(y)), dtype=np.int64)
    for cls in (0, 1):
        rows = np.flatnonzero(y == cls)
        draws = rng.integers(0, len(rows), size=(n_boot, len(rows)))
        offsets = np.arange(n_boot)[:, None] * len(rows)
        per_class = np.bincount((draws + offsets).ravel(), minlength=n_boot * len(rows)).reshape(n_boot, len(rows))
        counts[:, rows] = per_class
    return counts


def bootstrap_auc(y: np.ndarray, score: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """AUC of `score` on each replicate of `counts` (the fairness audit's weighted Mann-Whitney statistic)."""
    order = np.argsort(score, kind="stable")
    auc = weighted_auc(torch.as_tensor(counts[:, order]), torch.as_tensor(y[order], dtype=torch.float64),
                       torch.as_tensor(score[order], dtype=torch.float64))
    return auc.numpy()


def _interval(value: float, replicates: np.ndarray, level: float) -> Interval:
    alpha = (1 - level) / 2
    lo, hi = np.quantile(replicates, [alpha, 1 - alpha])
    return Interval(value=value, lo=float(lo), hi=float(hi), valid_replicates=int(len(replicates)))


def _reading(difference: Interval) -> str:
    if difference.lo is not None and difference.lo > 0:
        return HIGHER
    if difference.hi is not None and difference.hi < 0:
        return LOWER
    return SAME


def compare_models(y_test: np.ndarray, scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float], *,
                   n_boot: int = BENCHMARK_BOOTSTRAP, seed: int = 0, level: float = CI_LEVEL) -> BenchmarksSection:
    """Held-out figures of every model in `scores` (PRODUCTION first) with paired bootstrap AUC intervals."""
    y = np.asarray(y_test, dtype=int)
    for key, s in scores.items():
        if len(s) != len(y):
            raise ValueError(MSG_LENGTH.format(name=key, got=len(s), want=len(y)))
    counts = stratified_counts(y, n_boot, seed)
    replicates = {key: bootstrap_auc(y, np.asarray(s, dtype=float), counts) for key, s in scores.items()}
    rows = {}
    for key, s in scores.items():
        figures = performance(y, s, thresholds[key])
        auc = _interval(figures["roc_auc"], replicates[key], level)
        difference = None
        if key != PRODUCTION:
            difference = _interval(figures["roc_auc"] - rows[PRODUCTION].roc_auc.value,
                                   replicates[key] - replicates[PRODUCTION], level)
        rows[key] = ModelScore(
            key=key, name=NAMES.get(key, key), description=DESCRIPTIONS.get(key, ""), threshold=thresholds[key],
            roc_auc=auc, accuracy=figures["accuracy"], decline_rate=figures["decline_rate"],
            brier=figures["brier"], ece=figures["ece"], auc_difference=difference,
            reading=_reading(difference) if difference is not None else "",
        )
    return BenchmarksSection(
        method=METHOD.format(n_boot=n_boot, level=level), n_boot=n_boot, seed=seed, rows=len(y), ci_level=level,
        production=rows[PRODUCTION], challengers=tuple(v for k, v in rows.items() if k != PRODUCTION),
    )


def benchmark(X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame, y_test: np.ndarray,
              production_test: np.ndarray, production_threshold: float, policy: ThresholdPolicy,
              features: Sequence[str], *, seed: int = 0, n_boot: int = BENCHMARK_BOOTSTRAP) -> BenchmarksSection:
    """Train the challengers on the training rows, score everyone on the held-out rows, compare.

    `production_test` holds the production model's P(default) on `X_test` (from the applicants
    table, so that this section and the performance section read the same scores).
    """
    y_tr = np.asarray(y_train, dtype=int)
    scores = {PRODUCTION: np.asarray(production_test, dtype=float)}
    thresholds = {PRODUCTION: float(production_threshold)}
    with threadpool_limits(BENCHMARK_THREADS):
        scorers = fit_challengers(X_train, y_train, features, seed)
        for key, score in scorers.items():
            scores[key] = score(X_test)
            # The majority class is "no default": the baseline approves everyone whatever the policy says.
            thresholds[key] = APPROVE_EVERYONE if key == MAJORITY else policy.threshold(score(X_train), y_tr)
    return compare_models(y_test, scores, thresholds, n_boot=n_boot, seed=seed)
