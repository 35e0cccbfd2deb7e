"""LIME benchmark: the batched torch backend against the lime library, side by side in one run.

Prints one row per backend: applicants explained, wall seconds,
applicants/s, CPU seconds of this process, top-5 agreement with lime's own
weights on the same applicants, and the speed ratio to lime (by wall clock
and by CPU time, which other load on a shared machine disturbs less).
lime's self-agreement (same applicants, other seeds) is the yardstick for
the agreement column: sampling noise makes two lime runs disagree too. lime
explains the first `--reference-applicants` declined
applicants; the batched backend explains every declined applicant of the
portfolio (train and test), on the CPU (the ratio asked for) and on CUDA
when there is one.

    .venv/bin/python bench/explain_lime.py [--data CSV] [--threads N]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import CreditModel, load_portfolio  # noqa: E402
from pipeline.explain._lime import lime_explain, lime_reference, top_k_agreement  # noqa: E402
from pipeline.versions import library_versions  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "UCI_Credit_Card.csv"


@dataclass(frozen=True)
class Row:
    backend: str
    device: str
    applicants: int
    seconds: float  # wall clock
    cpu_seconds: float  # this process's CPU time: less sensitive to other load on a shared machine
    agreement: float
    agreement_note: str

    @property
    def rate(self) -> float:
        return self.applicants / self.seconds

    @property
    def cpu_rate(self) -> float:
        return self.applicants / self.cpu_seconds


def fitted(data: Path, seed: int) -> tuple[CreditModel, pd.DataFrame, pd.DataFrame]:
    """Model on the standard split, its training frame, and every declined applicant of the portfolio."""
    portfolio = load_portfolio(data)
    idx = np.arange(len(portfolio.features))
    train, _ = train_test_split(idx, test_size=0.2, stratify=portfolio.labels, random_state=seed)
    x_train = portfolio.features.iloc[train]
    model = CreditModel(seed=seed).fit(x_train, portfolio.labels.iloc[train])
    declined = portfolio.features[model.predict(portfolio.features) == 1]
    return model, x_train, declined


def _timed(fn, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def run(
    model: CreditModel,
    training: pd.DataFrame,
    declined: pd.DataFrame,
    seed: int = 0,
    reference_applicants: int = 20,
    num_samples: int = 5000,
    seeds: int = 5,
) -> list[Row]:
    """Time both backends and measure top-5 agreement; returns the table's rows.

    Agreement is averaged over `seeds` seeds of each backend on the same
    applicants: lime with itself over every pair of its runs, ours with lime
    over every (ours, lime) pair, so one lucky seed does not decide it.
    """
    model.to("cpu")
    sample = declined.iloc[:reference_applicants]
    lime_runs, wall, cpu = [], 0.0, 0.0
    for k in range(seeds):
        weights, w, c = _timed(lime_reference, model, sample, training, "cpu", seed + k, num_samples)
        lime_runs.append(weights.values)
        wall, cpu = wall + w, cpu + c
    ours_runs = [lime_explain(model, sample, training, "cpu", seed + k, num_samples).values for k in range(seeds)]
    lime_self = np.mean([top_k_agreement(a, b).mean() for a, b in itertools.combinations(lime_runs, 2)])
    ours_lime = np.mean([top_k_agreement(a, b).mean() for a in ours_runs for b in lime_runs])
    library = f"lime {library_versions().get('lime', '')}"
    rows = [Row(library, "cpu", len(sample) * seeds, wall, cpu, lime_self, "lime vs lime")]
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        _, w, c = _timed(lime_explain, model, declined, training, device, seed, num_samples)
        rows.append(Row("torch batched", device, len(declined), w, c, ours_lime, "ours vs lime"))
    return rows


def table(rows: list[Row]) -> str:
    lib = rows[0]
    header = (
        f"{'backend':<15}{'device':<7}{'applicants':>11}{'seconds':>9}{'applicants/s':>13}"
        f"{'cpu s':>9}{'top-5 agreement':>29}{'ratio to lime':>15}{'(cpu time)':>12}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        agreement = f"{r.agreement:.3f} ({r.agreement_note})"
        lines.append(
            f"{r.backend:<15}{r.device:<7}{r.applicants:>11}{r.seconds:>9.2f}{r.rate:>13.1f}{r.cpu_seconds:>9.2f}"
            f"{agreement:>29}{r.rate / lib.rate:>14.1f}x{r.cpu_rate / lib.cpu_rate:>11.1f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-applicants", type=int, default=20)
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=5, help="seeds per backend for the agreement figures")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads, for both backends")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, training, declined = fitted(args.data, args.seed)
    rows = run(model, training, declined, args.seed, args.reference_applicants, args.num_samples, args.seeds)
    print(
        f"LIME, {args.num_samples} samples per applicant, torch threads {torch.get_num_threads()},"
        f" seeds {args.seed}..{args.seed + args.seeds - 1}; lime explains the first {args.reference_applicants}"
        f" declined applicants once per seed, the batched backend all {len(declined)} declined"
    )
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
