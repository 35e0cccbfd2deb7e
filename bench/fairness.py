"""Fairness bootstrap benchmark: torch (pipeline.fairness) vs fairlearn MetricFrame `n_boot`, one run.

Same data (the real held-out split), same model decisions, same attribute,
same replicate count (default 1,000) for both. fairlearn computes the
metrics behind the verdicts (approval rate, TPR, FPR; with --all-metrics
also FNR, precision, ROC AUC, Brier score, mean prediction and base rate);
the torch side always computes every rate the audit reports (12 per group,
AUC included) plus the disparities and adverse impact ratios, so the speed
ratio understates its advantage. fairlearn runs on one core (numpy/pandas);
on CPU the audit's bootstrap runs on one torch thread too (see
pipeline.fairness._bootstrap.BOOTSTRAP_CPU_THREADS), so both use the same
resources. Agreement: each interval end of both, and
the difference in units of its Monte Carlo standard error (the standard error
of a bootstrap quantile, sqrt(q(1-q)/B)/density, for both runs combined; the
density is taken from a normal with the torch replicates' spread).

    .venv/bin/python bench/fairness.py [--data CSV] [--model DIR] [--attribute SEX]
        [--n-boot 1000] [--device auto] [--all-metrics] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate, true_positive_rate
from scipy.stats import norm
from sklearn.metrics import brier_score_loss, precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import CreditModel, load_portfolio, resolve_device  # noqa: E402
from pipeline.fairness import audited_attributes, group_disparities, group_labels  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "UCI_Credit_Card.csv"
CI = [0.025, 0.975]


def _approval(y_true, y_pred):
    return selection_rate(y_true, y_pred, pos_label=0)


def _fairlearn(labels, y, p, decline, n_boot: int, seed: int, all_metrics: bool) -> tuple[float, dict]:
    decision_metrics = {"approval_rate": _approval, "tpr": true_positive_rate, "fpr": false_positive_rate}
    if all_metrics:
        decision_metrics |= {"fnr": false_negative_rate,
                             "precision": lambda t, d: precision_score(t, d, zero_division=np.nan)}
    sf = pd.Series(labels, name="group")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = MetricFrame(metrics=decision_metrics, y_true=y, y_pred=decline, sensitive_features=sf,
                         n_boot=n_boot, ci_quantiles=CI, random_state=seed)
        if all_metrics:
            MetricFrame(metrics={"roc_auc": roc_auc_score, "brier": brier_score_loss,
                                 "mean_predicted": lambda t, s: float(np.mean(s)),
                                 "base_rate": lambda t, s: float(np.mean(t))},
                        y_true=y, y_pred=p, sensitive_features=sf, n_boot=n_boot, ci_quantiles=CI, random_state=seed)
    seconds = time.perf_counter() - t0
    lo, hi = mf.by_group_ci
    out = {f"{g}/{m}": (float(lo.loc[g, m]), float(hi.loc[g, m])) for g in lo.index for m in decision_metrics}
    dlo, dhi = mf.difference_ci()
    rlo, rhi = mf.ratio_ci()
    out["demographic_parity_difference"] = (float(dlo["approval_rate"]), float(dhi["approval_rate"]))
    out["demographic_parity_ratio"] = (float(rlo["approval_rate"]), float(rhi["approval_rate"]))
    return seconds, out


def _torch(frame, y, p, decline, attribute, n_boot: int, seed: int, device) -> tuple[float, dict]:
    group_disparities(frame, y, decline, p, device=device, seed=seed, n_boot=10, attributes=(attribute,))  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    table, (result,) = group_disparities(frame, y, decline, p, device=device, seed=seed, n_boot=n_boot,
                                         attributes=(attribute,))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    rows = table[table.attribute == attribute.name].set_index("group")
    out = {f"{g}/{m}": (float(rows.loc[g, f"{m}_lo"]), float(rows.loc[g, f"{m}_hi"]))
           for g in rows.index for m in ("approval_rate", "tpr", "fpr")}
    for d in ("demographic_parity_difference", "demographic_parity_ratio"):
        out[d] = (result.disparities[d]["lo"], result.disparities[d]["hi"])
    return seconds, out


def _mc_se(lo: float, hi: float, n_a: int, n_b: int) -> float:
    """Standard error of the difference of two independent bootstrap estimates of a 2.5 % quantile."""
    sigma = (hi - lo) / (2 * norm.ppf(0.975))
    q = 0.025
    return sigma * math.sqrt(q * (1 - q)) / norm.pdf(norm.ppf(q)) * math.sqrt(1 / n_a + 1 / n_b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", type=Path, help="a saved CreditModel directory (default: train one, seed 0)")
    ap.add_argument("--attribute", default="SEX", help="audited attribute, e.g. SEX, 'AGE band', 'SEX x AGE band'")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--all-metrics", action="store_true", help="fairlearn computes every rate, not only the verdicts'")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    device = resolve_device(args.device)

    portfolio = load_portfolio(args.data)
    idx = np.arange(len(portfolio))
    tr, te = train_test_split(idx, test_size=0.2, stratify=portfolio.labels, random_state=args.seed)
    X_train, y_train = portfolio.features.iloc[tr], portfolio.labels.iloc[tr]
    X_test, y = portfolio.features.iloc[te], portfolio.labels.iloc[te].to_numpy()
    model = CreditModel.load(args.model) if args.model else CreditModel(seed=args.seed).fit(X_train, y_train)
    p, decline = model.predict_proba(X_test)[:, 1], model.predict(X_test)
    attribute = next(a for a in audited_attributes() if a.name == args.attribute)
    labels = group_labels(X_test, attribute)

    t_torch, ours = _torch(X_test, y, p, decline, attribute, args.n_boot, args.seed, device)
    t_fl, theirs = _fairlearn(labels, y, p, decline, args.n_boot, args.seed, args.all_metrics)

    print(f"fairness bootstrap, attribute {attribute.name}, {len(X_test):,} held-out applicants, "
          f"{args.n_boot:,} replicates each, torch {torch.__version__} on {device}")
    print(f"  torch (12 rates + AUC + disparities, stratified): {t_torch:8.3f} s")
    print(f"  fairlearn MetricFrame n_boot ({'all rates' if args.all_metrics else 'approval, TPR, FPR'}): {t_fl:8.3f} s")
    print(f"  speed ratio: {t_fl / t_torch:,.0f}x")
    print(f"  {'interval':45s} {'torch':>19s} {'fairlearn':>19s} {'max |diff| / MC SE':>18s}")
    rows = []
    for key in theirs:
        if key not in ours:
            continue
        (a_lo, a_hi), (b_lo, b_hi) = ours[key], theirs[key]
        se = _mc_se(a_lo, a_hi, args.n_boot, args.n_boot)
        z = max(abs(a_lo - b_lo), abs(a_hi - b_hi)) / se if se > 0 else float("nan")
        rows.append({"interval": key, "torch": [a_lo, a_hi], "fairlearn": [b_lo, b_hi], "z": z})
        print(f"  {key:45s} [{a_lo:.4f}, {a_hi:.4f}]  [{b_lo:.4f}, {b_hi:.4f}] {z:18.2f}")
    if args.json:
        args.json.write_text(json.dumps({"attribute": attribute.name, "n_boot": args.n_boot, "device": str(device),
                                         "torch_s": t_torch, "fairlearn_s": t_fl, "ratio": t_fl / t_torch,
                                         "all_metrics": args.all_metrics, "intervals": rows}, indent=2))


if __name__ == "__main__":
    main()
