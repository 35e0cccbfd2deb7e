"""Compare the outputs of two audit runs of the same data: are they the same audit?

    python scripts/compare_runs.py RUN_A RUN_B [--shap-atol 1e-6]

Used to check that a refactoring changed nothing a reader sees: the same
decisions and probabilities, SHAP and LIME values within float tolerance, the
same reasons and counterfactuals, the same fairness verdicts and table, the
same flags, and notices with the same text. It reads each run's audit.json as
plain JSON (the two runs may be of different record format versions) and
prints one line per check; exit code 1 when any check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from pypdf import PdfReader

EXPLANATION_PREFIXES = ("shap_", "shapgroup_", "lime_")


def _record(run: Path) -> dict:
    return json.loads((run / "audit.json").read_text())


def _text(pdf: Path) -> str:
    return " ".join(" ".join(p.extract_text() for p in PdfReader(pdf).pages).split())


def compare(a: Path, b: Path, shap_atol: float) -> list[tuple[str, bool, str]]:
    ra, rb = _record(a), _record(b)
    ta, tb = pd.read_parquet(a / "applicants.parquet"), pd.read_parquet(b / "applicants.parquet")
    checks: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append((name, bool(ok), detail))

    check("same applicants", ta["id"].equals(tb["id"]), f"{len(ta):,} rows")
    check("same decisions", ta["decision"].equals(tb["decision"]),
          f"{(ta['decision'] != tb['decision']).sum()} differ; {int((ta['decision'] == 'decline').sum()):,} declined")
    gap = float(np.abs(ta["probability"] - tb["probability"]).max())
    check("same probabilities", gap == 0.0, f"max gap {gap:.2e}")
    explained = [c for c in ta.columns if c.startswith(EXPLANATION_PREFIXES)]
    check("same explanation columns", explained == [c for c in tb.columns if c.startswith(EXPLANATION_PREFIXES)],
          f"{len(explained)} columns")
    worst = max(float(np.nanmax(np.abs(ta[c].to_numpy(float) - tb[c].to_numpy(float)), initial=0.0))
                for c in explained)
    check("explanations within tolerance", worst <= shap_atol, f"max gap {worst:.2e} (atol {shap_atol:g})")
    for col in ("reasons", "counterfactual", "surrogate_decision"):
        if col in ta.columns:
            same = ta[col].fillna("").equals(tb[col].fillna(""))
            check(f"same {col}", same, f"{(ta[col].fillna('') != tb[col].fillna('')).sum()} differ")
    check("same fairness verdicts", ra["fairness"]["verdicts"] == rb["fairness"]["verdicts"],
          json.dumps(ra["fairness"]["verdicts"]))
    fa, fb = pd.read_parquet(a / "fairness.parquet"), pd.read_parquet(b / "fairness.parquet")
    num = fa.select_dtypes("number").columns
    fgap = float(np.nanmax(np.abs(fa[num].to_numpy(float) - fb[num].to_numpy(float)), initial=0.0))
    check("same fairness table", list(fa.columns) == list(fb.columns) and fgap <= shap_atol, f"max gap {fgap:.2e}")
    la, lb = pd.read_parquet(a / "flags.parquet"), pd.read_parquet(b / "flags.parquet")
    check("same flags", la[["id", "code"]].equals(lb[["id", "code"]]), f"{len(la):,} flags")
    check("same flag counts", ra["flags"]["counts"] == rb["flags"]["counts"], json.dumps(ra["flags"]["counts"]))
    check("same surrogate", ra["surrogate"]["rules"] == rb["surrogate"]["rules"],
          f"fidelity {ra['surrogate']['fidelity_test']:.4f}")
    check("same test performance", ra["performance"]["test"] == rb["performance"]["test"],
          f"AUC {ra['performance']['test']['roc_auc']:.4f}")
    na = {p.name: p for p in (a / "reports" / "notices").glob("*.pdf")}
    nb = {p.name: p for p in (b / "reports" / "notices").glob("*.pdf")}
    common = sorted(set(na) & set(nb))
    differ = [n for n in common if _text(na[n]).replace(ra["run_id"], "RUN") != _text(nb[n]).replace(rb["run_id"], "RUN")]
    check("notices with the same text", common and not differ, f"{len(common)} compared, {len(differ)} differ "
          f"(run ids masked){': ' + ', '.join(differ[:5]) if differ else ''}")
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--shap-atol", type=float, default=1e-6)
    args = parser.parse_args(argv)
    checks = compare(args.run_a, args.run_b, args.shap_atol)
    for name, ok, detail in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
