"""Counterfactual benchmark: the batched search against DiCE (random method), side by side in one run.

For every declined applicant of the portfolio (train and test) the batched
search looks for the sparsest, then smallest, actionable change that flips
the MLP's decision; DiCE does the same job for the first
`--reference-applicants` of them, with the same actionable features and
directions (as per-applicant permitted ranges). Each counterfactual of either
backend is verified with the model's own `predict` and checked against the
schema's directions. Printed per backend: applicants, seconds, applicants/s,
share with a verified counterfactual, mean number of changed features, mean
change in units of each feature's median absolute deviation, and the speed
ratio to DiCE.

    .venv/bin/python bench/explain_counterfactual.py [--data CSV] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from explain_lime import DEFAULT_DATA, fitted  # noqa: E402

from pipeline import schema as S  # noqa: E402
from pipeline.explain._counterfactual import _distance_unit, actionable_features, counterfactuals  # noqa: E402


@dataclass(frozen=True)
class Row:
    backend: str
    device: str
    applicants: int
    seconds: float
    found: float
    changes: float
    distance: float

    @property
    def rate(self) -> float:
        return self.applicants / self.seconds


def _respects_schema(before: pd.Series, after: pd.Series, actionable: list[str]) -> bool:
    for name in before.index:
        if after[name] == before[name]:
            continue
        direction = S.BY_NAME[name].direction
        if name not in actionable or (direction == "increase" and after[name] < before[name]):
            return False
        if direction == "decrease" and after[name] > before[name]:
            return False
    return True


def _dice(model, training: pd.DataFrame, declined: pd.DataFrame, seed: int):
    """DiCE counterfactuals (changed rows, or None) for each declined applicant, one at a time."""
    import dice_ml

    features = list(model.features)
    actionable = actionable_features(features)
    data = training[features].copy()
    data["decision"] = model.predict(data)
    dice = dice_ml.Dice(
        dice_ml.Data(
            dataframe=data, continuous_features=[f for f in features if f != "EDUCATION"], outcome_name="decision"
        ),
        dice_ml.Model(model=model, backend="sklearn"),
        method="random",
    )
    out = []
    for i in range(len(declined)):
        query = declined.iloc[[i]][features]
        ranges = {}
        for name in actionable:
            low, high, now = training[name].min(), training[name].max(), query[name].iloc[0]
            direction = S.BY_NAME[name].direction
            ranges[name] = (
                [low, now] if direction == "decrease" else [now, high] if direction == "increase" else [low, high]
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = (
                dice.generate_counterfactuals(
                    query,
                    total_CFs=1,
                    desired_class="opposite",
                    features_to_vary=actionable,
                    permitted_range=ranges,
                    random_seed=seed,
                    posthoc_sparsity_param=None,  # with it, one applicant took ~100 s
                    verbose=False,
                )
                .cf_examples_list[0]
                .final_cfs_df
            )
        out.append(None if found is None or found.empty else found[features].iloc[0])
    return out


def run(
    model, training: pd.DataFrame, declined: pd.DataFrame, seed: int = 0, reference_applicants: int = 20
) -> list[Row]:
    features = list(model.features)
    actionable = actionable_features(features)
    units = {n: _distance_unit(training[n].to_numpy(np.float64)) for n in actionable}
    model.to("cpu")
    sample = declined.iloc[:reference_applicants]
    start = time.perf_counter()
    dice_rows = _dice(model, training, sample, seed)
    dice_seconds = time.perf_counter() - start
    verified = []
    for (_, before), after in zip(sample[features].iterrows(), dice_rows, strict=True):
        ok = after is not None and model.predict(after.to_frame().T.astype(np.float64))[0] == 0
        ok = ok and _respects_schema(before, after, actionable)
        verified.append((before, after) if ok else None)
    good = [v for v in verified if v is not None]
    rows = [
        Row(
            "dice-ml random",
            "cpu",
            len(sample),
            dice_seconds,
            len(good) / len(sample),
            float(np.mean([(a != b).sum() for b, a in good])) if good else float("nan"),
            float(np.mean([sum(abs(a[n] - b[n]) / units[n] for n in actionable) for b, a in good]))
            if good
            else float("nan"),
        )
    ]
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        start = time.perf_counter()
        results = counterfactuals(model, declined, training, device, seed)
        seconds = time.perf_counter() - start
        found = [cf for cf in results if cf.found]
        rows.append(
            Row(
                "batched search",
                device,
                len(declined),
                seconds,
                len(found) / len(results),
                float(np.mean([len(cf.changes) for cf in found])),
                float(np.mean([sum(abs(c.after - c.before) / units[c.feature] for c in cf.changes) for cf in found])),
            )
        )
    return rows


def table(rows: list[Row]) -> str:
    header = (
        f"{'backend':<16}{'device':<7}{'applicants':>11}{'seconds':>9}{'applicants/s':>13}"
        f"{'found':>8}{'changes':>9}{'distance (MAD)':>16}{'ratio to dice':>15}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.backend:<16}{r.device:<7}{r.applicants:>11}{r.seconds:>9.2f}{r.rate:>13.1f}"
            f"{r.found:>8.1%}{r.changes:>9.2f}{r.distance:>16.2f}{r.rate / rows[0].rate:>14.1f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-applicants", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads, for both backends")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, training, declined = fitted(args.data, args.seed)
    rows = run(model, training, declined, args.seed, args.reference_applicants)
    print(
        f"Counterfactuals, torch threads {torch.get_num_threads()}: DiCE explains the first"
        f" {args.reference_applicants} declined applicants, the batched search all {len(declined)}"
    )
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
