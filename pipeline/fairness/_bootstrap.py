"""Group rates and their bootstrap replicates, vectorised in torch.

Every rate the audit reports is a ratio of sums over a group's rows (counts
of defaults, declines, true and false positives; sums of predicted
probabilities and squared errors). A bootstrap replicate of a group is a
vector of multiplicities (how often each row was drawn), so all replicates of
all rates are one matrix product `counts (B, n_g) @ indicators (n_g, k)`.
ROC AUC is a weighted Mann-Whitney statistic over the same multiplicities,
computed from cumulative sums over the sorted scores, so it is vectorised too.
Resampling is within each group (stratified): the group sizes stay fixed, as
they are in the audited portfolio.

Conventions: the model's positive class is "default" (label 1, decision
"decline"). TPR = P(decline | default), FPR = P(decline | no default),
FNR = P(approve | default), precision = P(default | decline). The
favourable outcome is approval, so selection (demographic parity, the
four-fifths rule) is measured on approval rates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

DTYPE = torch.float64  # point estimates: exact sums, as fairlearn computes them
# Replicates: multiplicities are small integers (exact in float32); float32 halves the memory
# traffic, and its ~1e-7 relative rounding is far below the Monte Carlo error of any interval.
REPLICATE_DTYPE = torch.float32
# Sums kept per row; rates are ratios of these.
_SUMS = ("n", "defaults", "declines", "true_pos", "false_pos", "sum_p", "sum_sq_err", "agree")
RATES: tuple[str, ...] = (
    "base_rate",
    "approval_rate",
    "decline_rate",
    "tpr",
    "fpr",
    "fnr",
    "precision",
    "roc_auc",
    "mean_predicted",
    "calibration_gap",
    "brier",
    "surrogate_fidelity",
)
RATE_INDEX: dict[str, int] = {r: i for i, r in enumerate(RATES)}
# On CPU the bootstrap runs on one intra-op thread: each op touches one group's (B, n_g)
# arrays, too little to gain from more threads, and on shared cores OpenMP threads wait on
# each other (measured on the project's 2 shared cores: SEX, 1,000 replicates, 1.3 s on one
# thread vs 3.9 s on two).
BOOTSTRAP_CPU_THREADS = 1


@contextmanager
def bootstrap_threads(device: torch.device) -> Iterator[None]:
    """Set torch's CPU threads for the bootstrap on entry and restore them on exit."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(BOOTSTRAP_CPU_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def indicator_matrix(y: np.ndarray, decline: np.ndarray, p_default: np.ndarray, agree: np.ndarray | None,
                     device: torch.device) -> torch.Tensor:
    """(n, 8) per-row contributions to the sums every rate is built from."""
    yt = torch.as_tensor(np.asarray(y, dtype=np.float64), device=device)
    dt = torch.as_tensor(np.asarray(decline, dtype=np.float64), device=device)
    pt = torch.as_tensor(np.asarray(p_default, dtype=np.float64), device=device)
    at = torch.full_like(yt, float("nan")) if agree is None else torch.as_tensor(np.asarray(agree, dtype=np.float64), device=device)
    cols = [torch.ones_like(yt), yt, dt, yt * dt, (1 - yt) * dt, pt, (pt - yt) ** 2, at]
    return torch.stack(cols, dim=1)


def _div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, NaN where den is 0: an empty denominator is 'undefined', never an error or inf."""
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.full_like(num, float("nan")))


def rates_from_sums(sums: torch.Tensor, auc: torch.Tensor) -> torch.Tensor:
    """(m, 8) sums and (m,) AUCs -> (m, len(RATES)) rates, in RATES order."""
    n, pos, dec, tp, fp, sp, se, ag = sums.unbind(dim=1)
    neg = n - pos
    base = _div(pos, n)
    mean_p = _div(sp, n)
    out = {
        "base_rate": base,
        "approval_rate": _div(n - dec, n),
        "decline_rate": _div(dec, n),
        "tpr": _div(tp, pos),
        "fpr": _div(fp, neg),
        "fnr": _div(pos - tp, pos),
        "precision": _div(tp, dec),
        "roc_auc": auc,
        "mean_predicted": mean_p,
        "calibration_gap": mean_p - base,
        "brier": _div(se, n),
        "surrogate_fidelity": _div(ag, n),
    }
    return torch.stack([out[r] for r in RATES], dim=1)


def weighted_auc(weights: torch.Tensor, y: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """ROC AUC of each row of integer `weights` (multiplicities, shape (m, n)), ties counted one half.

    AUC = sum over defaulters i of w_i * (weight of non-defaulters scored below i
    + half of those tied with i), over (weight of defaulters x weight of non-defaulters).
    Columns must be in ascending order of `score` (`group_rates` sorts them once), so
    "scored below" is a cumulative sum and ties are blocks of equal scores. The sums run
    in integers: exact, and deterministic on CUDA (a floating-point cumsum there is not).
    Floating-point `weights` (multiplicities times importance weights, for the shifted
    populations of `pipeline.fairness.audit_shift`) are summed in float64 instead.
    """
    n = score.shape[0]
    new_block = torch.ones(n, dtype=torch.bool, device=score.device)
    new_block[1:] = score[1:] != score[:-1]
    block = torch.cumsum(new_block.long(), 0) - 1
    starts = torch.nonzero(new_block).flatten()
    ends = torch.cat([starts[1:], torch.tensor([n], device=score.device)]) - 1
    is_pos = y > 0
    pos, negs = torch.nonzero(is_pos).flatten(), torch.nonzero(~is_pos).flatten()
    exact = not weights.is_floating_point()
    # multiplicities <= n: every partial sum below fits in int32; importance-weighted: float64
    work, total = (torch.int32, torch.int64) if exact else (torch.float64, torch.float64)
    weights = weights.to(work)
    neg = weights * (~is_pos).to(work)
    cum = torch.cumsum(neg, dim=1, dtype=work)  # non-defaulter weight at or below each position
    b = block[pos]
    first, last = starts[b], ends[b]
    # (weight below the tie block) + (weight through its end) = 2 x (below + half of the tied)
    credit = cum[:, first] - neg[:, first] + cum[:, last]
    wp = weights[:, pos]
    num = (wp * credit).sum(dim=1, dtype=total).double()
    den = wp.sum(dim=1, dtype=total).double() * weights[:, negs].sum(dim=1, dtype=total).double()
    return _div(0.5 * num, den)


def resample_counts(n: int, n_boot: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n_boot, n) int64 multiplicities of n rows drawn with replacement, n draws per replicate."""
    idx = torch.randint(n, (n_boot, n), generator=generator, device=device)
    idx += torch.arange(n_boot, device=device).unsqueeze(1) * n
    return torch.bincount(idx.flatten(), minlength=n_boot * n).reshape(n_boot, n)


def group_rates(indicators: torch.Tensor, rows: torch.Tensor, n_boot: int,
                generator: torch.Generator, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Point rates (len(RATES),) and bootstrap replicates (n_boot, len(RATES)) of one group.

    `rows` indexes the group's rows in `indicators`; replicates resample within the group.
    `weights` (one per row of `indicators`, optional) are importance weights: every sum,
    the AUC included, weighs row i by w_i, in the point estimate and in each replicate
    (a replicate's weight of a row is its multiplicity times w_i). Without them every row
    weighs 1 and the draws are those of the unweighted audit, replicate for replicate.
    """
    order = torch.argsort(indicators[rows, 5], stable=True)  # ascending score, as weighted_auc needs
    ind = indicators[rows][order]
    w = None if weights is None else weights[rows][order].to(DTYPE)
    y, p = ind[:, 1], ind[:, 5]
    if w is None:
        ones = torch.ones(1, len(rows), dtype=torch.long, device=ind.device)
        point = rates_from_sums(ind.sum(dim=0, keepdim=True), weighted_auc(ones, y, p))[0]
    else:
        point = rates_from_sums((w.unsqueeze(1) * ind).sum(dim=0, keepdim=True), weighted_auc(w.unsqueeze(0), y, p))[0]
    if n_boot == 0:
        return point, torch.empty(0, len(RATES), dtype=DTYPE, device=ind.device)
    counts = resample_counts(len(rows), n_boot, generator, ind.device)
    if w is not None:
        counts = counts.to(DTYPE) * w  # (B, n_g): multiplicity x importance weight
    sums = counts.to(REPLICATE_DTYPE) @ torch.nan_to_num(ind).to(REPLICATE_DTYPE)
    reps = rates_from_sums(sums.to(DTYPE), weighted_auc(counts, y, p))
    if torch.isnan(ind[:, 7]).any():
        reps[:, RATE_INDEX["surrogate_fidelity"]] = float("nan")
    return point, reps


def percentile_interval(reps: torch.Tensor, level: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Percentile bootstrap interval per column, ignoring undefined (NaN) replicates."""
    alpha = (1 - level) / 2
    if reps.shape[0] == 0:
        nan = torch.full(reps.shape[1:], float("nan"), dtype=reps.dtype, device=reps.device)
        return nan, nan
    q = torch.tensor([alpha, 1 - alpha], dtype=reps.dtype, device=reps.device)
    lo_hi = torch.nanquantile(reps, q, dim=0)
    return lo_hi[0], lo_hi[1]
