"""Counterfactual benchmark: the batched search against DiCE (random method), side by side in one run.

For every declined applicant of the portfolio (train and test) the batched
search looks for the preferred plausible change that flips the MLP's
decision by the stated margin; DiCE does the same job for the first
`--reference-applicants` of them (`--dice-cfs` counterfactuals each), with
the same changeable features, twice: "dice-ml bounds" gets every bound DiCE
can express as a per-applicant permitted range (direction, the limit factor,
the payment cap, statuses no better than "paid in full"); "dice-ml dirs"
only each feature's direction within the training range (as this benchmark
configured it before the schema declared more). Every counterfactual of either tool
is verified with the model's own `predict_proba` and checked against the
schema's declared rules (`pipeline.explain.plausibility_violations`).

Printed per tool: applicants, seconds, applicants/s, share with a verified
counterfactual, mean number of changed features, mean change in units of
each feature's median absolute deviation, the speed ratio to DiCE, and the
plausibility violations per 1,000 counterfactuals (any rule, then each rule).

    .venv/bin/python bench/explain_counterfactual.py [--data CSV] [--threads N] [--reference-applicants N]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from explain_lime import DEFAULT_DATA, fitted  # noqa: E402

from pipeline import schema as S  # noqa: E402
from pipeline.constants import COUNTERFACTUAL_MARGIN  # noqa: E402
from pipeline.explain import RULES, plausibility_violations  # noqa: E402
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
    counterfactuals: int = 0  # verified counterfactuals checked against the rules
    violations: dict[str, int] = field(default_factory=dict)  # per rule; "any" for the union

    @property
    def rate(self) -> float:
        return self.applicants / self.seconds

    def per_thousand(self, rule: str = "any") -> float:
        return 1000 * self.violations.get(rule, 0) / self.counterfactuals if self.counterfactuals else float("nan")


def _ranges(query: pd.Series, features: list[str], training: pd.DataFrame, bounds: str) -> dict[str, list[float]]:
    """One applicant's permitted ranges for DiCE: the schema's single-feature bounds, or directions only.

    `bounds="directions"`: what the search itself knew before the schema declared more (each feature's
    direction within the training range), as this benchmark configured DiCE until then.
    """
    ranges = {}
    for name in actionable_features(features):
        f, now = S.BY_NAME[name], float(query[name])
        if bounds == "directions":
            low, high = float(training[name].min()), float(training[name].max())
            decrease = f.direction == "decrease" or bool(f.improves_to)
            ranges[name] = [low, now] if decrease else [now, high] if f.direction == "increase" else [low, high]
            continue
        if f.max_factor:
            ranges[name] = [now / f.max_factor, now * f.max_factor]
        elif f.improves_to:
            reachable = f.improves_to.get(int(now), ())
            ranges[name] = [float(min(reachable, default=now)), now]
        elif f.pays is not None and f.pays.bill in query.index:
            ranges[name] = [now, max(now, f.pays.cap(query[f.pays.bill]))]
        elif f.direction == "increase":
            ranges[name] = [now, f.maximum]
    return ranges


def _dice(model, training: pd.DataFrame, declined: pd.DataFrame, seed: int, per_applicant: int, bounds: str):
    """DiCE counterfactuals for each declined applicant: a frame of candidate rows (or None) per applicant."""
    import dice_ml
    from raiutils.exceptions import UserConfigValidationException

    features = list(model.features)
    data = training[features].copy()
    data["decision"] = model.predict(data)
    dice = dice_ml.Dice(
        dice_ml.Data(dataframe=data, continuous_features=features, outcome_name="decision"),
        dice_ml.Model(model=model, backend="sklearn"),
        method="random",
    )
    out = []
    for i in range(len(declined)):
        query = declined.iloc[[i]][features]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                found = (
                    dice.generate_counterfactuals(
                        query,
                        total_CFs=per_applicant,
                        desired_class="opposite",
                        features_to_vary=actionable_features(features),
                        permitted_range=_ranges(query.iloc[0], features, training, bounds),
                        random_seed=seed,
                        posthoc_sparsity_param=None,  # with it, one applicant took ~100 s
                        verbose=False,
                    )
                    .cf_examples_list[0]
                    .final_cfs_df
                )
            except UserConfigValidationException:  # DiCE's way of saying it found none
                found = None
        out.append(None if found is None or found.empty else found[features].astype(np.float64))
    return out


def _violations(before: pd.DataFrame, after: pd.DataFrame) -> dict[str, int]:
    broken = plausibility_violations(before.reset_index(drop=True), after.reset_index(drop=True))
    return {"any": int(broken.any(axis=1).sum()), **{rule: int(broken[rule].sum()) for rule in RULES}}


def run(
    model, training: pd.DataFrame, declined: pd.DataFrame, seed: int = 0, reference_applicants: int = 100,
    per_applicant: int = 3,
) -> list[Row]:
    features = list(model.features)
    actionable = actionable_features(features)
    units = {n: _distance_unit(training[n].to_numpy(np.float64)) for n in actionable}
    limit = model.threshold_ - COUNTERFACTUAL_MARGIN
    model.to("cpu")
    sample = declined.iloc[:reference_applicants][features].astype(np.float64)
    rows = []
    for bounds, name in (("schema", "dice-ml bounds"), ("directions", "dice-ml dirs")):
        start = time.perf_counter()
        dice_rows = _dice(model, training, sample, seed, per_applicant, bounds)
        dice_seconds = time.perf_counter() - start
        befores, afters, first = [], [], []
        for (_, before), found in zip(sample.iterrows(), dice_rows, strict=True):
            if found is None:
                continue
            flips = found[model.predict_proba(found)[:, 1] <= limit]  # the same margin our search must keep
            if len(flips):
                befores.append(pd.DataFrame([before] * len(flips)))
                afters.append(flips)
                first.append((before, flips.iloc[0]))
        rows.append(
            Row(
                name,
                "cpu",
                len(sample),
                dice_seconds,
                len(first) / len(sample),
                float(np.mean([(a != b).sum() for b, a in first])) if first else float("nan"),
                float(np.mean([sum(abs(a[n] - b[n]) / units[n] for n in actionable) for b, a in first]))
                if first
                else float("nan"),
                counterfactuals=sum(len(a) for a in afters),
                violations=_violations(pd.concat(befores), pd.concat(afters)) if afters else {},
            )
        )
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        start = time.perf_counter()
        results = counterfactuals(model, declined, training, device, seed)
        seconds = time.perf_counter() - start
        found = [cf for cf in results if cf.found]
        after = declined[features].astype(np.float64).copy()
        for i, cf in enumerate(results):
            for c in cf.changes:
                after.iat[i, features.index(c.feature)] = c.after
        mask = np.array([cf.found for cf in results])
        rows.append(
            Row(
                "batched search",
                device,
                len(declined),
                seconds,
                len(found) / len(results),
                float(np.mean([len(cf.changes) for cf in found])),
                float(np.mean([sum(abs(c.after - c.before) / units[c.feature] for c in cf.changes) for cf in found])),
                counterfactuals=len(found),
                violations=_violations(declined[features].astype(np.float64)[mask], after[mask]),
            )
        )
    return rows


def table(rows: list[Row]) -> str:
    header = (
        f"{'backend':<16}{'device':<7}{'applicants':>11}{'seconds':>9}{'applicants/s':>13}"
        f"{'found':>8}{'changes':>9}{'distance (MAD)':>16}{'ratio to dice':>15}{'CFs':>7}{'implausible/1000':>18}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.backend:<16}{r.device:<7}{r.applicants:>11}{r.seconds:>9.2f}{r.rate:>13.1f}"
            f"{r.found:>8.1%}{r.changes:>9.2f}{r.distance:>16.2f}{r.rate / rows[0].rate:>14.1f}x"
            f"{r.counterfactuals:>7}{r.per_thousand():>18.1f}"
        )
    lines += ["", "Plausibility violations per 1,000 counterfactuals, by rule of the schema:"]
    lines.append(f"{'rule':<24}" + "".join(f"{r.backend + ' ' + r.device:>24}" for r in rows))
    for rule in RULES:
        lines.append(f"{rule:<24}" + "".join(f"{r.per_thousand(rule):>24.1f}" for r in rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-applicants", type=int, default=100)
    parser.add_argument("--dice-cfs", type=int, default=3, help="counterfactuals DiCE returns per applicant")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads, for both backends")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, training, declined = fitted(args.data, args.seed)
    rows = run(model, training, declined, args.seed, args.reference_applicants, args.dice_cfs)
    print(
        f"Counterfactuals, torch threads {torch.get_num_threads()}: DiCE explains the first"
        f" {args.reference_applicants} declined applicants ({args.dice_cfs} each), the batched search all"
        f" {len(declined)}; a counterfactual must re-score at least {COUNTERFACTUAL_MARGIN:.0%} below the threshold"
    )
    print(table(rows))
    for rule, text in RULES.items():
        print(f"  {rule}: {text}")
    return rows


if __name__ == "__main__":
    main()
