"""Reports: the run loader, the audit PDF, per-applicant notices, and their safety.

The run directory these tests render is written here from real rows of the
dataset, a logistic model (fast, no torch) and the real metric and surrogate
code, in the layout of docs/outputs.md. Every check reads the PDF back and
compares it with the run's own values, never with hard-coded text.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline import outputs as O
from pipeline import schema as S
from pipeline.benchmarks import benchmark
from pipeline.conclusion import conclude
from pipeline.fairness import audit_shift
from pipeline.metrics import performance
from pipeline.monitoring import monitoring_plan
from pipeline.policy import ThresholdPolicy
from pipeline.run_record import (
    AttributeVerdict,
    BeforeAfter,
    ChangesSection,
    CompletenessSummary,
    CounterfactualSummary,
    DataSection,
    Drift,
    Epoch,
    ExplanationsSection,
    FairnessSection,
    FairnessThresholds,
    Finding,
    FlagsSection,
    Governance,
    Interval,
    Lender,
    ModelSection,
    NoticeSection,
    Performance,
    Policy,
    Range,
    RunRecord,
    ShapSummary,
    SplitSection,
    StabilitySummary,
    SurrogateSection,
    load_record,
    write_record,
)
from pipeline.stress import stress_test
from pipeline.surrogate import Surrogate

HOSTILE = '<img src="file:///etc/passwd"> <link rel=stylesheet href="http://127.0.0.1:9/x.css">'
LOCAL_SOURCE = "/srv/credit/incoming/2026-11/UCI_Credit_Card.csv"  # a local path: never printed, only its name
GOVERNANCE = Governance(model_owner="Head of Card Credit Risk", validator="Model Validation Unit", risk_tier="",
                        intended_use="Approve or decline card applications of natural persons",
                        sign_off=("Model owner", "Independent validator"))


# ---------------------------------------------------------------------------
# A run directory in the documented layout
# ---------------------------------------------------------------------------
def _reason(name: str, value: float, contribution: float) -> dict:
    f = S.BY_NAME[name]
    return {"feature": name, "label": f.label, "value_text": f.describe(value), "contribution": contribution,
            "text": f"{f.label}: {f.describe(value)}"}


def _counterfactual(row: pd.Series, p: float, found: bool) -> dict:
    if not found:
        return {"found": False, "changes": [], "probability": None}
    changes = []
    if row["PAY_0"] > 0:
        f = S.BY_NAME["PAY_0"]
        changes.append({"feature": "PAY_0", "label": f.label, "from": float(row["PAY_0"]), "to": 0.0, "by": "applicant",
                        "text": f"{f.label}: {f.describe(row['PAY_0'])} -> {f.describe(0)}"})
    f = S.BY_NAME["PAY_AMT1"]
    to = float(row["PAY_AMT1"]) + 5000.0
    changes.append({"feature": "PAY_AMT1", "label": f.label, "from": float(row["PAY_AMT1"]), "to": to, "by": "applicant",
                    "text": f"{f.label}: {f.describe(row['PAY_AMT1'])} -> {f.describe(to)}"})
    return {"found": True, "changes": changes, "probability": round(p * 0.6, 4), "margin": 0.02}


class _FixtureModel:
    """The fixture's logistic model behind the production model's interface (raw applicants -> P(default))."""

    def __init__(self, lr, features: list[str], mu: np.ndarray, sd: np.ndarray, threshold: float) -> None:  # noqa: ANN001
        self.lr, self.features, self.mu, self.sd, self.threshold_ = lr, features, mu, sd, threshold

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.lr.predict_proba((frame[self.features].to_numpy(float) - self.mu) / self.sd)


def build_run(out: Path, features: pd.DataFrame, labels: pd.Series, ids: pd.Series, *, complete: bool = True,
              lender_name: str = "Example Bank plc", seed: int = 0) -> Path:
    """Write audit.json and the Parquet tables for these rows; `complete=False` omits the
    explanation, fairness and flag outputs, as a run before those issues landed."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    out.mkdir(parents=True, exist_ok=True)
    feats = list(S.DEFAULT_MODEL_FEATURES)
    x = features[feats].to_numpy(float)
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    y = labels.to_numpy()
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)
    lr = LogisticRegression(max_iter=500).fit(z[tr], y[tr])
    p = lr.predict_proba(z)[:, 1]
    threshold = float(np.quantile(p[tr], 0.8))
    decline = p >= threshold
    frame = pd.DataFrame({"id": ids.to_numpy().astype("int64"), "split": "train", "label": y.astype("int64"),
                          "probability": p, "decision": np.where(decline, "decline", "approve")})
    frame.loc[te, "split"] = "test"
    sur = Surrogate(max_depth=3, min_samples_leaf=5).fit(features.iloc[tr], decline[tr].astype(int))
    frame["surrogate_decision"] = np.where(sur.predict(features) == 1, "decline", "approve")
    for name in S.FEATURE_NAMES:
        frame[name] = features[name].to_numpy()
    record = RunRecord(
        run_id="20261123T062800Z-3e675d9e", created="2026-11-23T06:28:00+00:00", seed=seed, device="cpu",
        code_version="0" * 64, config={"seed": seed},
        lender=Lender(name=lender_name, address="1 Example Street, Taipei", contact="credit@example.com",
                      review_contact="review@example.com, +886 2 0000 0000"),
        notice=NoticeSection(regime="eu", postal_contact="Decisions Review, 1 Example Street, Taipei",
                             email_contact="review@example.com", data_protection_authority="Example DPA, Example City",
                             federal_agency="Example Federal Agency, Washington, DC"),
        data=DataSection(
            source=LOCAL_SOURCE, rows=len(frame), data_hash="3e675d9e" + "ab" * 28, header_variant="named",
            default_rate=float(y.mean()),
            findings=(Finding(column="EDUCATION", value=5.0, count=3,
                              message="EDUCATION code 5 is not in the data dictionary"),),
            ranges={n: Range(min=float(features[n].min()), max=float(features[n].max())) for n in S.FEATURE_NAMES}),
        split=SplitSection(test_fraction=0.2, train_rows=len(tr), test_rows=len(te), seed=seed),
        model=ModelSection(
            model_hash="9f1c2d3e" + "cd" * 28, features=tuple(feats), excluded_inputs=S.EXCLUDED_FROM_MODEL,
            architecture="MLP 21 -> 64 -> 32 -> 1, ReLU, dropout 0.1, sigmoid output", hidden=(64, 32),
            threshold=threshold, policy=Policy(kind="decline_rate", value=0.2),
            policy_text=f"decline when the estimated probability of default is {threshold:.1%} or more",
            best_epoch=3, training={"lr": 0.001, "batch_size": 256, "max_epochs": 5},
            preprocessing="signed log1p for NT$ amounts", calibration="Platt scaling",
            history=tuple(Epoch(epoch=e, train_loss=0.5 - 0.02 * e, val_auc=0.7 + 0.01 * e) for e in range(1, 6))),
        performance={"test": Performance.model_validate(performance(y[te], p[te], threshold)),
                     "train": Performance.model_validate(performance(y[tr], p[tr], threshold))},
        surrogate=SurrogateSection(
            max_depth=3, n_leaves=int(sur.tree_.get_n_leaves()),
            fidelity_test=sur.fidelity(features.iloc[te], decline[te].astype(int)),
            fidelity_train=sur.fidelity(features.iloc[tr], decline[tr].astype(int)), rules=tuple(sur.rules()),
            feature_importance=dict(zip(sur.features, sur.tree_.feature_importances_.tolist(), strict=True))),
        decisions={"approve": int((~decline).sum()), "decline": int(decline.sum())},
        versions={"python": "3.11.7", "torch": "2.13.0"},
        timings={"load": 0.4, "train": 9.8},
    )
    if complete:
        contrib = lr.coef_[0] * z * (p * (1 - p))[:, None]
        for j, name in enumerate(feats):
            frame[f"shap_{name}"] = contrib[:, j]
            frame[f"lime_{name}"] = np.where(decline, contrib[:, j] * 0.9, np.nan)
        frame["shap_base"] = float(p.mean())
        allowed = [j for j, n in enumerate(feats) if not S.BY_NAME[n].protected]
        reasons, cfs = [], []
        for i in range(len(frame)):
            top = sorted(allowed, key=lambda j, i=i: -contrib[i, j])[:4]
            reasons.append(json.dumps([_reason(feats[j], x[i, j], float(contrib[i, j])) for j in top]))
            cfs.append(json.dumps(_counterfactual(features.iloc[i], p[i], found=i % 5 != 0)) if decline[i] else None)
        frame["reasons"], frame["counterfactual"] = reasons, cfs
        frame["stability"] = 0.75
        shap_importance = {n: float(np.abs(contrib[:, j]).mean()) for j, n in enumerate(feats)}
        explanations = ExplanationsSection(
            backend="batched", device="cpu", seed=seed, applicants=len(frame), declined=int(decline.sum()),
            features=tuple(feats), methods={"shap": "logistic contributions", "lime": "scaled contributions"},
            shap=ShapSummary(base=float(p.mean()), background_rows=200, n_coalitions=256, max_additivity_gap=0.0),
            global_importance={
                "shap": shap_importance,
                "lime": {n: float(np.abs(contrib[decline, j]).mean() * 0.9) for j, n in enumerate(feats)},
            },
            agreement={"shap": {"shap": 1.0, "lime": 0.87}, "lime": {"shap": 0.87, "lime": 1.0}},
            group_importance={}, groups={},
            stability=StabilitySummary(top_k=4, flag_below=0.25, mean=0.75, low=0, undefined=0),
            counterfactuals=CounterfactualSummary(declined=int(decline.sum()),
                                                  found=sum(1 for c in cfs if c and json.loads(c)["found"])),
            surrogate_vs_mlp={}, integrated_gradients=CompletenessSummary(mean_completeness_gap=0.0),
            limitations={"shap": "values depend on the background sample of 200 applicants"}, timings={},
        )
        changes = ChangesSection(
            previous_run="20261116T062800Z-3e675d9e", previous_created="2026-11-16T06:28:00+00:00",
            same_model=False, same_data=True,
            data_drift={"LIMIT_BAL": Drift(label="Credit limit", psi=0.213, reading="moderate shift"),
                        "AGE": Drift(label="Age", psi=0.004, reading="stable")},
            drifted_features=("LIMIT_BAL",), performance={},
            fairness_verdicts=BeforeAfter(previous={}, current={}), flag_counts=BeforeAfter(previous={}, current={}),
        )
        rows = []
        for attr in ("SEX", "EDUCATION"):
            for code, group in S.BY_NAME[attr].codes.items():
                m = features[attr].to_numpy() == code
                if m.sum() == 0:
                    continue
                row = {"attribute": attr, "kind": "attribute", "group": group,
                       "status": "ok" if m.sum() >= 30 else "insufficient data", "count": int(m.sum()),
                       "defaults": int(y[m].sum()), "declines": int(decline[m].sum())}
                for rate, value in (("approval_rate", 1 - decline[m].mean()), ("decline_rate", decline[m].mean()),
                                    ("base_rate", y[m].mean()), ("tpr", 0.55 + 0.05 * (code % 3)), ("fpr", 0.1),
                                    ("roc_auc", 0.75),
                                    ("surrogate_fidelity", 0.9), ("adverse_impact_ratio", 0.95)):
                    row[rate], row[f"{rate}_lo"], row[f"{rate}_hi"] = float(value), float(value) - 0.04, float(value) + 0.04
                rows.append(row)
        O.write_parquet(out / "fairness.parquet", pd.DataFrame(rows))

        def disparity(v: float) -> Interval:
            return Interval(value=v, lo=v - 0.02, hi=v + 0.02)

        fairness = FairnessSection(
            settings={}, conventions="approval is the favourable outcome",
            thresholds=FairnessThresholds(four_fifths=0.8, parity_gap_max=0.1, equalized_odds_gap_max=0.1,
                                          ci_level=0.95),
            rules="pass when the whole interval is inside the limit, fail when it is wholly outside, review otherwise",
            min_group_size=30, min_outcome_count=5, grouping=[],
            attributes=(
                AttributeVerdict(attribute="SEX", kind="attribute", groups_judged=("male", "female"),
                                 groups_insufficient=(), favoured_group="female", verdict="pass",
                                 reasons=("PASS: approval-rate gap",),
                                 disparities={"demographic_parity_difference": disparity(0.03),
                                              "lowest_adverse_impact_ratio": disparity(0.96),
                                              "equalized_odds_difference": disparity(0.04)}),
                AttributeVerdict(attribute="EDUCATION", kind="attribute",
                                 groups_judged=("graduate school", "university"), groups_insufficient=("other",),
                                 favoured_group="graduate school", verdict="review",
                                 reasons=("REVIEW: approval-rate gap",),
                                 disparities={"demographic_parity_difference": disparity(0.12),
                                              "lowest_adverse_impact_ratio": disparity(0.78),
                                              "equalized_odds_difference": disparity(0.09),
                                              "tpr_difference": disparity(0.09), "fpr_difference": disparity(0.01)}),
            ),
            verdicts={"SEX": "pass", "EDUCATION": "review"},
            proxies=({"attribute": "SEX", "model_input": False, "status": "ok", "roc_auc": 0.612, "strength": "weak",
                      "top_features": [{"feature": "LIMIT_BAL", "label": "Credit limit", "auc_drop": 0.02}]},),
            unawareness_and_mitigation={"note": "analysis only: the production decisions are not changed", "variants": [
                {"variant": "unaware", "description": "the model without protected inputs", "roc_auc": 0.701,
                 "accuracy": 0.77, "approval_rate": 0.8, "disparities": {"SEX": {"verdict": "pass"}}}]},
            explanation_disparity=None,
        )
        flagged = frame.loc[decline, "id"].head(7).tolist()
        O.write_parquet(out / "flags.parquet", pd.DataFrame({
            "id": flagged, "code": ["borderline"] * 4 + ["unstable_explanation"] * 3,
            "reason": ["probability within 5 points of the threshold"] * 4 + ["SHAP and LIME disagree"] * 3,
            "value": [0.01] * 7}))
        flags = FlagsSection(
            threshold=threshold, applicants=len(frame), applicants_flagged=7, total=7,
            counts={"borderline": 4, "unstable_explanation": 3, "no_counterfactual": 0},
            labels={"borderline": "Borderline probability", "unstable_explanation": "Unstable explanation",
                    "no_counterfactual": "No counterfactual found"},
            skipped={"out_of_range": "no training table"}, config={})
        surrogate = record.surrogate.model_copy(update={"fidelity_approve_all_test": float((~decline[te]).mean())})
        record = record.model_copy(update={"explanations": explanations, "changes": changes, "fairness": fairness,
                                           "flags": flags, "governance": GOVERNANCE, "surrogate": surrogate})
        record = record.model_copy(update={"benchmarks": benchmark(
            features.iloc[tr], y[tr], features.iloc[te], y[te], p[te], threshold, ThresholdPolicy("decline_rate", 0.2),
            feats, seed=seed, n_boot=200)})
        scorer = _FixtureModel(lr, feats, mu, sd, threshold)
        # All 400 rows, not the 80 held out: enough per group for most shifts to be measured.
        shift = audit_shift(features, y, decline.astype(int), p, ["all", "SEX:female+0.2"], device=torch.device("cpu"),
                            seed=seed, n_boot=100)
        record = record.model_copy(update={
            "shift": shift,
            "stress": stress_test(scorer, features.iloc[te], y[te], features.iloc[tr], n_boot=200),
            "conclusion": conclude(record, pd.read_parquet(out / "fairness.parquet")),
            "monitoring": monitoring_plan(record)})
    O.write_parquet(out / O.APPLICANTS, frame)
    write_record(out, record)
    return out


# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------
N_ROWS = 400


def _rows(portfolio, n: int = N_ROWS):  # noqa: ANN001, ANN202
    take = np.linspace(0, len(portfolio) - 1, n).astype(int)
    pick = lambda s: s.iloc[take].reset_index(drop=True)  # noqa: E731
    return pick(portfolio.features), pick(portfolio.labels), pick(portfolio.ids)


@pytest.fixture(scope="module")
def run_dir(portfolio, tmp_path_factory) -> Path:
    return build_run(tmp_path_factory.mktemp("run") / "run", *_rows(portfolio))


@pytest.fixture(scope="module")
def partial_run_dir(portfolio, tmp_path_factory) -> Path:
    return build_run(tmp_path_factory.mktemp("partial") / "run", *_rows(portfolio, 200), complete=False)


@pytest.fixture(scope="module")
def hostile_run_dir(portfolio, tmp_path_factory) -> Path:
    """A run whose lender name, data source and one applicant's reason carry markup that would fetch files."""
    out = build_run(tmp_path_factory.mktemp("hostile") / "run", *_rows(portfolio, 200), lender_name=HOSTILE)
    record = load_record(out)
    write_record(out, record.model_copy(update={"data": record.data.model_copy(update={"source": HOSTILE})}))
    frame = pd.read_parquet(out / O.APPLICANTS)
    first = frame.index[frame["decision"] == "decline"][0]
    reasons = json.loads(frame.at[first, "reasons"])
    reasons[0]["text"] = HOSTILE
    frame.at[first, "reasons"] = json.dumps(reasons)
    O.write_parquet(out / O.APPLICANTS, frame)
    return out


@pytest.fixture(scope="module")
def run(run_dir):  # noqa: ANN001, ANN201
    import reports

    return reports.load_run(run_dir)


def pdf_pages(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() or "" for page in PdfReader(path).pages]


def pdf_text(path: Path) -> str:
    """Text of the whole PDF with runs of whitespace collapsed (line breaks fall anywhere)."""
    return " ".join(" ".join(pdf_pages(path)).split())


def flat(text: str) -> str:
    return " ".join(str(text).split())


def fonts_embedded(path: Path) -> list[tuple[str, bool]]:
    """(font name, has an embedded font file) for every font used on any page."""
    from pypdf import PdfReader

    found = {}
    for page in PdfReader(path).pages:
        fonts = (page.get("/Resources") or {}).get("/Font") or {}
        for ref in fonts.values():
            font = ref.get_object()
            descendants = font.get("/DescendantFonts")
            desc_font = descendants[0].get_object() if descendants else font
            descriptor = (desc_font.get("/FontDescriptor") or {})
            descriptor = descriptor.get_object() if hasattr(descriptor, "get_object") else descriptor
            found[str(font.get("/BaseFont"))] = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    return list(found.items())


def image_xobjects(path: Path) -> int:
    from pypdf import PdfReader

    count = 0
    for page in PdfReader(path).pages:
        for ref in ((page.get("/Resources") or {}).get("/XObject") or {}).values():
            count += ref.get_object().get("/Subtype") == "/Image"
    return count


def declined_with_counterfactual(run) -> int:  # noqa: ANN001
    for i in run.declined_ids():
        cf = run.applicant(i).counterfactual
        if cf and cf.get("found"):
            return i
    raise AssertionError("the fixture run has no declined applicant with a counterfactual")


# ---------------------------------------------------------------------------
# Loading a run
# ---------------------------------------------------------------------------
def test_load_run_is_read_only(run, run_dir):  # noqa: ANN001
    import reports

    assert run.run_id == load_record(run_dir).run_id
    with pytest.raises(ValueError, match="frozen"):
        run.record.run_id = "changed"  # type: ignore[misc]
    with pytest.raises(ValueError, match="frozen"):
        run.record.model.threshold = 0.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        run.record.model.features.append("X")  # a tuple
    frame = run.applicants
    frame.loc[:, "probability"] = -1.0
    assert (run.applicants["probability"] >= 0).all()
    assert reports.load_run(run_dir).applicants["probability"].equals(pd.read_parquet(run_dir / O.APPLICANTS)["probability"])


def test_load_run_errors_say_what_is_wrong(tmp_path, run):  # noqa: ANN001
    import reports
    from reports._run import MSG_BAD_ID, MSG_NOT_A_RUN, MSG_UNKNOWN_APPLICANT

    with pytest.raises(FileNotFoundError) as err:
        reports.load_run(tmp_path)
    assert str(err.value) == MSG_NOT_A_RUN.format(path=tmp_path, missing=O.AUDIT_JSON)
    with pytest.raises(KeyError) as err:
        run.applicant(10**9)
    assert err.value.args[0] == MSG_UNKNOWN_APPLICANT.format(id=10**9, run_id=run.run_id)
    with pytest.raises(ValueError, match=MSG_BAD_ID.split("{")[0]):
        run.applicant("../../etc/passwd")


def test_applicant_record_matches_the_table(run, run_dir):  # noqa: ANN001
    frame = pd.read_parquet(run_dir / O.APPLICANTS)
    row = frame.iloc[7]
    a = run.applicant(int(row["id"]))
    assert a.probability == row["probability"] and a.decision == row["decision"]
    assert dict(a.features) == {n: float(row[n]) for n in S.FEATURE_NAMES}
    assert a.shap == pytest.approx({n: row[f"shap_{n}"] for n in S.DEFAULT_MODEL_FEATURES})
    assert [dict(r) for r in a.reasons] == json.loads(row["reasons"])


# ---------------------------------------------------------------------------
# Notices
# ---------------------------------------------------------------------------
def test_notice_file_names_are_sanitised():
    from reports import notice_filename

    assert notice_filename(123) == "notice_123.pdf"
    for raw in ("../../etc/passwd", "a b", "x" * 500, "12/3", "-5"):
        name = notice_filename(raw)
        assert name.startswith("notice_h") and name.endswith(".pdf")
        assert "/" not in name and raw not in name and len(name) < 40


def test_declined_notice_carries_every_checklist_item(run, tmp_path):  # noqa: ANN001
    import reports

    applicant_id = declined_with_counterfactual(run)
    a = run.applicant(applicant_id)
    path = reports.render_notice(run, applicant_id, tmp_path)
    assert path == tmp_path / f"notice_{applicant_id}.pdf"
    pages = pdf_pages(path)
    assert 1 <= len(pages) <= 2
    text = pdf_text(path)
    record = run.record
    # the decision, its date, and who decided
    assert "We have declined your application" in text
    assert "23 November 2026" in text
    for key in ("name", "address", "contact"):
        assert flat(getattr(record.lender, key)) in text
    for key in ("postal_contact", "email_contact", "data_protection_authority"):
        assert flat(getattr(record.notice, key)) in text
    assert "A computer model made this decision" in text
    # principal reasons: at most four, exactly as written by the explanation step (none dropped)
    expected = [r["text"] for r in a.reasons][:4]
    assert expected and all(flat(r) in text for r in expected)
    # contributions chart: labels of this applicant's largest SHAP values with their signed points
    top = max(a.shap, key=lambda n: abs(a.shap[n]))
    assert S.BY_NAME[top].label in text and f"{a.shap[top] * 100:+.1f}" in text
    # what would have changed the decision, in the past tense, with the stated margin
    for change in a.counterfactual["changes"]:
        f = S.BY_NAME[change["feature"]]
        assert flat(f.describe(change["to"])) in text and flat(f.describe(change["from"])) in text
    assert "would most likely have said yes" in text and "You cannot change the past" in text
    assert "at least 2 points below our cut-off" in text
    # the data used: every raw value of this applicant, described with the schema
    for f in S.FEATURES:
        named = f"{f.month}: {f.describe(a.features[f.name])}" if f.month else f.describe(a.features[f.name])
        assert flat(named) in text, f.name
    for title in S.GROUP_TITLES.values():
        assert title in text
    # logic and rights
    for phrase in ("How we made the decision", "neural network", "Article 22(3)", "Article 16", "contest",
                   "Ask for a person", "AI Act Article 86", "complain to the data protection authority", "Your rights"):
        assert phrase in text, phrase
    # the reference: run, model and data versions, and this applicant
    assert f"{run.run_id}/{applicant_id}" in text
    assert record.model.model_hash[:12] in text and record.data.data_hash[:12] in text
    assert all(embedded for _, embedded in fonts_embedded(path))
    assert image_xobjects(path) == 0


def test_notice_shows_nothing_of_any_other_applicant(run, tmp_path):  # noqa: ANN001
    import reports

    mine = declined_with_counterfactual(run)
    text = pdf_text(reports.render_notice(run, mine, tmp_path))
    own = {flat(S.BY_NAME[n].describe(v)) for n, v in run.applicant(mine).features.items()}
    others = [i for i in run.applicants["id"].tolist() if i != mine][::37]
    assert len(others) >= 5
    for other in others:
        assert f"{run.run_id}/{other}" not in text
        b = run.applicant(other)
        for name in ("LIMIT_BAL", "BILL_AMT1", "BILL_AMT2", "PAY_AMT1", "PAY_AMT2"):
            value = flat(S.BY_NAME[name].describe(b.features[name]))
            if value not in own and value != "NT$ 0":
                assert value not in text, (other, name, value)


def test_notice_for_an_unknown_or_malformed_id_writes_nothing(run, tmp_path):  # noqa: ANN001
    import reports
    from reports._run import MSG_UNKNOWN_APPLICANT

    with pytest.raises(KeyError) as err:
        reports.render_notice(run, 10**9, tmp_path)
    assert err.value.args[0] == MSG_UNKNOWN_APPLICANT.format(id=10**9, run_id=run.run_id)
    with pytest.raises(ValueError, match="whole number"):
        reports.render_notice(run, "../../etc/passwd", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_approved_notice_renders_on_demand(run, tmp_path):  # noqa: ANN001
    import reports

    approved = int(run.applicants.loc[lambda f: f["decision"] == "approve", "id"].iloc[0])
    text = pdf_text(reports.render_notice(run, approved, tmp_path))
    assert "We have approved your application" in text and "Not applicable" in text
    assert f"{run.run_id}/{approved}" in text


def test_missing_sections_are_stated_not_hidden(partial_run_dir, tmp_path):  # noqa: ANN001
    import reports

    partial = reports.load_run(partial_run_dir)
    text = pdf_text(reports.render_notice(partial, partial.declined_ids()[0], tmp_path))
    for what in ("Principal reasons", "Contribution chart", "What would have changed the decision"):
        assert f"{what}: not computed in this run" in text


def test_notice_html_is_the_same_content(run):  # noqa: ANN001
    import reports

    applicant_id = declined_with_counterfactual(run)
    html = reports.notice_html(run, applicant_id)
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    for reason in run.applicant(applicant_id).reasons[:4]:
        assert reason["label"] in html
    assert f"{run.run_id}/{applicant_id}" in html and "Your rights" in html


def test_cli_renders_one_notice(run_dir, run, tmp_path, capsys):  # noqa: ANN001
    from flows.cli import main

    applicant_id = run.declined_ids()[1]
    assert main(["notice", "--run", str(run_dir), "--id", str(applicant_id), "--out", str(tmp_path)]) == 0
    assert (tmp_path / f"notice_{applicant_id}.pdf").is_file()
    assert main(["notice", "--run", str(run_dir), "--id", "../../etc/passwd", "--out", str(tmp_path)]) == 2
    assert "whole number" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"notice_{applicant_id}.pdf"]


@pytest.mark.slow
def test_bulk_notices_in_worker_processes(run, tmp_path):  # noqa: ANN001
    import reports

    ids = run.declined_ids()[:6]
    paths = reports.render_notices(run, ids, tmp_path, workers=2)
    assert [p.name for p in paths] == [f"notice_{i}.pdf" for i in ids]
    for i, p in zip(ids, paths, strict=True):
        assert len(pdf_pages(p)) <= 2 and f"{run.run_id}/{i}" in pdf_text(p)


# ---------------------------------------------------------------------------
# Safety: markup in data renders as text and fetches nothing
# ---------------------------------------------------------------------------
def test_fetcher_serves_only_bundled_templates():
    from reports._env import TEMPLATES_DIR, BundledAssetsFetcher

    fetcher = BundledAssetsFetcher()
    for url in ("file:///etc/passwd", "http://127.0.0.1:9/x.css", "https://example.com/a.png",
                (TEMPLATES_DIR / ".." / "pyproject.toml").as_uri(), "data:text/plain,hello", "ftp://x/y"):
        with pytest.raises(ValueError, match="refused"):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 6
    response = fetcher.fetch((TEMPLATES_DIR / "notice.css").as_uri())
    assert b"@page" in response.read()
    response.close()


def test_raw_markup_cannot_fetch_files():
    from reports._pdf import PdfEngine

    engine = PdfEngine()
    pdf = engine.layout('<p>x</p><img src="file:///etc/passwd"><link rel=stylesheet href="http://127.0.0.1:9/a.css">')
    assert "file:///etc/passwd" in engine.fetcher.refused
    assert not engine.fetcher.served
    assert b"root:" not in pdf.write_pdf()


def test_hostile_values_render_as_text(hostile_run_dir, tmp_path):  # noqa: ANN001
    import reports
    from reports._pdf import engine

    run = reports.load_run(hostile_run_dir)
    before = (list(engine().fetcher.served), list(engine().fetcher.refused))
    notice = reports.render_notice(run, run.declined_ids()[0], tmp_path)
    report = reports.render_audit_report(run, tmp_path / "audit.pdf")
    assert (list(engine().fetcher.served), list(engine().fetcher.refused)) == before
    for path in (notice, report):
        assert flat(HOSTILE) in pdf_text(path)
        assert image_xobjects(path) == 0
    html = reports.notice_html(run, run.declined_ids()[0])
    assert '<img src="file:///etc/passwd">' not in html and "&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in html


def test_notices_parse_as_xml_and_invalid_xml_falls_back_to_html5(run, tmp_path):  # noqa: ANN001
    """The notice templates are well-formed (the fast parser takes them); a value XML forbids still renders."""
    import reports
    from reports import _notice as N
    from reports._pdf import _DocumentHTML, engine

    N._GENERAL_PAGES.clear()  # page 2 is parsed again, too
    before = _DocumentHTML.html_fallbacks
    reports.render_notice(run, run.declined_ids()[0], tmp_path)
    assert _DocumentHTML.html_fallbacks == before
    document = engine().layout("<html><body><p>Lender\x0bStreet &amp; Co</p></body></html>", N.NOTICE_CSS,
                               user_agent=N.NOTICE_UA_CSS)
    assert _DocumentHTML.html_fallbacks == before + 1
    (tmp_path / "fallback.pdf").write_bytes(document.write_pdf())
    assert "Street & Co" in pdf_pages(tmp_path / "fallback.pdf")[0].replace("\x00", "")


def test_page_one_that_overflows_renders_the_whole_notice_in_one_document(run_dir, tmp_path):  # noqa: ANN001
    """Very long lender details push page 1 over a page: the notice is then laid out whole, nothing lost."""
    import shutil

    import reports
    from reports._pdf import _DocumentHTML

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    record = load_record(copy)
    address = " ".join(f"Building {k}, Floor {k}, Example Road {k}," for k in range(400))
    write_record(copy, record.model_copy(update={"lender": record.lender.model_copy(update={"address": address})}))
    run = reports.load_run(copy)
    applicant_id = run.declined_ids()[0]
    before = _DocumentHTML.html_fallbacks
    path = reports.render_notice(run, applicant_id, tmp_path / "out")
    assert _DocumentHTML.html_fallbacks == before  # notice.html.j2 is well-formed too
    pages = pdf_pages(path)
    text = flat(" ".join(pages))
    assert len(pages) >= 3 and "Example Road 399," in text
    for needle in ("We have declined your application", "Your rights", f"{run.run_id}/{applicant_id}"):
        assert needle in text


# ---------------------------------------------------------------------------
# Global audit report
# ---------------------------------------------------------------------------
def test_notices_reuse_styles_and_font_subsets_and_render_exactly_as_without(run, partial_run_dir, hostile_run_dir,
                                                                              monkeypatch):  # noqa: ANN001
    """What notices share (computed styles, font subsets) changes nothing: page 1 is byte-identical without it."""
    import contextlib

    import reports
    from reports import _notice as N
    from reports._font_subsets import FontSubsets
    from reports._pdf import engine
    from reports._shared_styles import SharedStyles

    def page_one(r, i) -> bytes:  # noqa: ANN001
        return engine().write_notice(N.layout_letter(N.letter_html(r, i)), uncompressed_pdf=True)

    runs = [run, reports.load_run(partial_run_dir), reports.load_run(hostile_run_dir)]
    approved = run.applicants.loc[lambda f: f["decision"] == "approve", "id"].tolist()
    wanted = [(r, i) for r in runs for i in r.declined_ids()[:6]] + [(run, i) for i in approved[:4]]
    with monkeypatch.context() as off:  # the reference: WeasyPrint's own work, nothing kept between documents
        for store in (SharedStyles, FontSubsets):
            off.setattr(store, "active", lambda self: contextlib.nullcontext())
        pages = {(r.path, i): page_one(r, i) for r, i in wanted}
    # the default stores, then stores small enough to start again on the way
    for styles, subsets in ((SharedStyles(), FontSubsets()), (SharedStyles(limit=100), FontSubsets(limit=3))):
        monkeypatch.setattr(engine(), "styles", styles)  # the session's engine gets its own stores back afterwards
        monkeypatch.setattr(engine(), "subsets", subsets)
        for r, i in wanted * 2:
            assert page_one(r, i) == pages[r.path, i], (styles.limit, r.path, i)
            assert len(styles) <= styles.limit and len(subsets) <= subsets.limit
        assert styles.hits > 2 * styles.misses  # most element styles were reused
        assert subsets.hits > 0
    hits = styles.hits, subsets.hits
    engine().pdf("<p>audit report</p>")  # other documents do not use the stores
    assert (styles.hits, subsets.hits) == hits


# ---------------------------------------------------------------------------
# WeasyPrint patches: applied only when checked, on WeasyPrint's path, output unchanged
# ---------------------------------------------------------------------------
PATCH_LOG = "reports._weasyprint_patches"


@pytest.fixture
def patches():  # noqa: ANN201
    """The patches module; every patch is installed again after the test, as the session's engine expects.

    Tests change WeasyPrint inside `monkeypatch.context()`, so that it is
    restored before this fixture installs the patches again.
    """
    from reports import _weasyprint_patches as P
    from reports._pdf import engine

    engine()  # built (and the patches installed) before the test changes anything
    yield P
    P.uninstall()
    assert P.install() == tuple(p.name for p in P.PATCHES)


def _owner(patch) -> type:  # noqa: ANN001
    import importlib

    return getattr(importlib.import_module(patch.module), patch.owner)


def _calls_during(patches, render):  # noqa: ANN001, ANN202
    """What `render()` returns, and how often WeasyPrint called each patch meanwhile."""
    before = patches.calls()
    result = render()
    return result, {name: count - before[name] for name, count in patches.calls().items()}


def _page_one(r, i) -> bytes:  # noqa: ANN001
    from reports import _notice as N
    from reports._pdf import engine

    return engine().write_notice(N.layout_letter(N.letter_html(r, i)), uncompressed_pdf=True)


def _page_two(r) -> bytes:  # noqa: ANN001
    from reports import _notice as N
    from reports._notice_view import general_view
    from reports._pdf import engine, render_template

    html = render_template("notice_part.html.j2", part="general", n={}, g=general_view(r), css="", title="rights")
    return engine().write_notice(engine().layout(html, N.NOTICE_CSS, N.GENERAL_PAGE_CSS, user_agent=N.NOTICE_UA_CSS),
                                 uncompressed_pdf=True)


def _notice_pages(r, ids) -> list[bytes]:  # noqa: ANN001
    return [_page_one(r, i) for i in ids] + [_page_two(r)]


def test_weasyprint_patches_are_called_and_notices_are_byte_identical_without_them(run, patches):  # noqa: ANN001
    """A patch that silently stopped applying shows up here: each must be called while notices render."""
    approved = run.applicants.loc[lambda f: f["decision"] == "approve", "id"].tolist()
    ids = run.declined_ids()[:4] + approved[:2]
    assert patches.install() == (patches.SHARED_STYLES, patches.FONT_SUBSETS, patches.NOTICE_SOURCE)
    patched, called = _calls_during(patches, lambda: _notice_pages(run, ids))
    assert all(count > 0 for count in called.values()), called
    patches.uninstall()
    assert patches.active_patches() == ()
    plain, called = _calls_during(patches, lambda: _notice_pages(run, ids))
    assert set(called.values()) == {0}  # WeasyPrint's own path throughout
    assert plain == patched


def test_weasyprint_patches_leave_the_audit_report_byte_identical(partial_run_dir, patches):  # noqa: ANN001
    """The audit report passes through both wrappers (no store is active then) and comes out as without them."""
    import reports
    from reports._audit import AUDIT_CSS, audit_html
    from reports._pdf import engine

    html = audit_html(reports.load_run(partial_run_dir), standalone=False)

    def render() -> bytes:
        return engine().layout(html, AUDIT_CSS).write_pdf(uncompressed_pdf=True)

    patched, called = _calls_during(patches, render)
    assert called[patches.SHARED_STYLES] > 0 and called[patches.FONT_SUBSETS] > 0, called
    assert called[patches.NOTICE_SOURCE] == 0  # the report is parsed and styled by WeasyPrint alone
    patches.uninstall()
    plain, called = _calls_during(patches, render)
    assert set(called.values()) == {0} and plain == patched


def test_another_weasyprint_version_gets_no_patch_and_notices_still_render(run, patches, monkeypatch, caplog):  # noqa: ANN001
    import weasyprint

    ids = run.declined_ids()[:2]
    reference = _notice_pages(run, ids)
    with monkeypatch.context() as m:
        m.setattr(weasyprint, "__version__", "71.0")
        with caplog.at_level("WARNING", logger=PATCH_LOG):
            assert patches.install() == ()
            assert patches.install() == ()  # called again: no second warning
        warnings = [r.getMessage() for r in caplog.records if r.name == PATCH_LOG]
        assert warnings == [patches.MSG_REFUSED.format(patch=p.name, target=p.target, problem=patches.MSG_WRONG_VERSION,
                                                       found="71.0", expected=patches.WRITTEN_FOR) for p in patches.PATCHES]
        assert "'shared_styles' refused: weasyprint.css.StyleFor.set_computed_styles" in warnings[0]
        assert "WeasyPrint 71.0 found" in warnings[0]
        plain, called = _calls_during(patches, lambda: _notice_pages(run, ids))
    assert set(called.values()) == {0} and plain == reference


def test_a_patched_method_with_other_parameters_is_left_alone_and_notices_still_render(run, patches, monkeypatch,
                                                                                     caplog):  # noqa: ANN001
    from weasyprint.css import StyleFor

    own = StyleFor.set_computed_styles.__wrapped__

    def changed(self, element, parent, root=None, pseudo_type=None, base_url=None, target_collector=None,  # noqa: ANN001, ANN202
                layer=None):  # noqa: ANN001, ARG001
        """WeasyPrint's method as a later version might have it: one more parameter."""
        own(self, element, parent, root, pseudo_type, base_url, target_collector)

    ids = run.declined_ids()[:2]
    reference = _notice_pages(run, ids)
    with monkeypatch.context() as m:
        m.setattr(StyleFor, "set_computed_styles", changed)
        with caplog.at_level("WARNING", logger=PATCH_LOG):
            assert patches.install() == (patches.FONT_SUBSETS, patches.NOTICE_SOURCE)
        [warning] = [r.getMessage() for r in caplog.records if r.name == PATCH_LOG]
        assert "'shared_styles' refused: weasyprint.css.StyleFor.set_computed_styles takes (" in warning
        assert "target_collector, layer), expected (" in warning and f"WeasyPrint {patches.WRITTEN_FOR} found" in warning
        assert StyleFor.set_computed_styles is changed  # left as found
        plain, called = _calls_during(patches, lambda: _notice_pages(run, ids))
    assert called[patches.SHARED_STYLES] == 0 and called[patches.FONT_SUBSETS] > 0
    assert plain == reference


@pytest.mark.parametrize(("module", "owner", "attribute", "value", "refused", "problem"), [
    ("weasyprint.pdf.fonts", "Font", "subset", None, "font_subsets", "is missing"),
    ("weasyprint.pdf.fonts", "Font", None, None, "font_subsets", "is missing"),  # the class itself is gone
    ("weasyprint", "HTML", "_ua_stylesheets", property(lambda self: []), "notice_source",
     "is not a plain function (found property)"),
    ("weasyprint.css", "StyleFor", "get_computed_styles", None, "shared_styles",
     "lacks get_computed_styles(), which the patch calls"),
])
def test_a_missing_or_changed_name_refuses_its_patch_only(patches, monkeypatch, caplog, module, owner, attribute,  # noqa: ANN001, PLR0913
                                                          value, refused, problem):  # noqa: ANN001
    import importlib

    where = importlib.import_module(module)
    with monkeypatch.context() as m, caplog.at_level("WARNING", logger=PATCH_LOG):
        if attribute is None:
            m.delattr(where, owner)
        elif value is None:
            m.delattr(getattr(where, owner), attribute)
        else:
            m.setattr(getattr(where, owner), attribute, value)
        active = patches.install()
    assert active == tuple(p.name for p in patches.PATCHES if p.name != refused)
    [warning] = [r.getMessage() for r in caplog.records if r.name == PATCH_LOG]
    patch = next(p for p in patches.PATCHES if p.name == refused)
    assert warning == patches.MSG_REFUSED.format(patch=refused, target=patch.target, problem=problem,
                                                 found=patches.WRITTEN_FOR, expected=patches.WRITTEN_FOR)
    assert patches.install() == tuple(p.name for p in patches.PATCHES)  # WeasyPrint restored: applied again


def test_install_is_idempotent_and_uninstall_puts_weasyprints_methods_back(patches):  # noqa: ANN001
    import inspect

    wrapped = [p for p in patches.PATCHES if p.replacement is not None]
    own = {p.name: inspect.unwrap(_owner(p).__dict__[p.attribute]) for p in wrapped}
    patches.install()
    patches.install()
    for p in wrapped:
        assert _owner(p).__dict__[p.attribute].__wrapped__ is own[p.name]  # one wrapper, never two
    patches.uninstall()
    for p in wrapped:
        assert _owner(p).__dict__[p.attribute] is own[p.name]


def test_importing_the_reports_changes_nothing_in_weasyprint():
    """Patches are installed when rendering starts (`PdfEngine`), never as a side effect of an import."""
    probe = ("import reports._notice, reports._weasyprint_patches as P; from weasyprint import LOGGER; "
             "from weasyprint.css import StyleFor; from weasyprint.pdf.fonts import Font; "
             "print(P.active_patches(), hasattr(StyleFor.set_computed_styles, '__wrapped__'), "
             "hasattr(Font.subset, '__wrapped__'), len(LOGGER.filters))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "() False False 0"


def test_only_svg_presentation_warnings_are_silenced(caplog):
    """matplotlib's inline SVG styles are not CSS; any other unknown property still warns."""
    from reports._pdf import PdfEngine

    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><path d="M0 0L40 20" style="fill: none; stroke: #1f5f99; stroke-width: 0.5"/></svg>'
    with caplog.at_level("WARNING", logger="weasyprint"):
        PdfEngine().layout(f'<p style="colr: red">x</p>{svg}').write_pdf()
    ignored = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Ignored")]
    assert len(ignored) == 1 and "colr" in ignored[0]


@pytest.fixture(scope="module")
def audit_pdf(run, partial_run_dir, tmp_path_factory) -> Path:
    import reports

    previous = reports.load_run(partial_run_dir)
    return reports.render_audit_report(run, tmp_path_factory.mktemp("audit") / "audit_report.pdf", previous=previous)


@pytest.mark.slow
def test_audit_report_summary_page(audit_pdf, run, partial_run_dir):  # noqa: ANN001
    import reports

    first = flat(pdf_pages(audit_pdf)[0])
    perf = run.record.performance["test"]
    assert "Executive summary" in first and run.run_id in first
    assert f"{perf.roc_auc:.3f}" in first and f"{perf.accuracy * 100:.1f}%" in first
    assert run.record.data.data_hash[:12] in first and run.record.model.model_hash[:12] in first
    for attribute, verdict in run.record.fairness.verdicts.items():
        assert f"{S.BY_NAME[attribute].label} {verdict}" in first
    assert f"{run.record.flags.applicants_flagged} applicants carry" in first
    assert "Changes since the previous run" in first and reports.load_run(partial_run_dir).run_id in first
    assert "Credit limit 0.213 (moderate shift)" in first


@pytest.mark.slow
def test_audit_report_pages_contents_and_charts(audit_pdf, run):  # noqa: ANN001
    pages = [flat(p) for p in pdf_pages(audit_pdf)]
    n = len(pages)
    assert n >= 8
    for i, page in enumerate(pages, 1):
        assert run.run_id in page and f"Page {i} of {n}" in page
    contents = pages[1]
    for number, title in enumerate(("Data", "Model and training", "Performance on held-out data", "How the model decides",
                                    "Fairness", "Reasons given to declined applicants", "Flagged applicants",
                                    "Reproducibility", "Methods and their limitations"), 1):
        heading = f"{number}. {title}"
        page_no = next(i for i, p in enumerate(pages, 1) if heading in p and i > 2)
        assert f"{title}" in contents and f"{page_no}" in contents
    text = " ".join(pages)
    for chart_text in ("ROC curve", "Calibration (10 bins)", "Importance, relative to", "weights kept",
                       "approval rate by group", "Flags raised"):
        assert chart_text in text, chart_text
    for rule in run.record.surrogate.rules:
        assert flat(rule.text) in text
    proxy, variant = run.record.fairness.proxies[0], run.record.fairness.unawareness_and_mitigation["variants"][0]
    assert f"{proxy['roc_auc']:.3f}" in text and proxy["strength"] in text
    assert variant["description"] in text and f"{variant['roc_auc']:.3f}" in text
    assert "shap and lime 0.87" in text
    assert run.record.explanations.limitations["shap"] in text
    for attribute in run.record.fairness.verdicts:
        table = run.fairness[run.fairness["attribute"] == attribute]
        for _, row in table.iterrows():
            assert f"{row['approval_rate'] * 100:.1f}%" in text
            assert f"[{row['approval_rate_lo'] * 100:.1f}%, {row['approval_rate_hi'] * 100:.1f}%]" in text
    assert image_xobjects(audit_pdf) == 0
    assert all(embedded for _, embedded in fonts_embedded(audit_pdf))


@pytest.mark.slow
def test_audit_report_of_a_partial_run_says_what_is_missing(partial_run_dir, tmp_path):  # noqa: ANN001
    import reports

    text = pdf_text(reports.render_audit_report(reports.load_run(partial_run_dir), tmp_path / "a.pdf"))
    for what in ("Fairness", "Flags", "Global importance", "Principal reasons"):
        assert f"{what}: not computed in this run" in text
    assert "No previous run was given" in text


def test_pdftotext_reads_the_notice_too(run, tmp_path):  # noqa: ANN001
    """A second, independent reader (poppler) finds the same decision and reference."""
    import shutil

    import reports

    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils not installed")
    applicant_id = run.declined_ids()[2]
    path = reports.render_notice(run, applicant_id, tmp_path)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "We have declined your application" in out and f"{run.run_id}/{applicant_id}" in flat(out)
    assert not math.isnan(run.applicant(applicant_id).probability)


def test_notice_workers_import_neither_torch_nor_matplotlib():
    """A notice worker starts in ~1 s and ~300 MiB only if the package imports stay light."""
    probe = "import sys, reports._notice; print(sorted({'torch', 'matplotlib'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------
# The audit report as a validator reads it: a decision on page 1, figures that agree, a tagged PDF
# ---------------------------------------------------------------------------
NUMBER = r"[+-]?\d+(?:\.\d+)?%?"
PRINTED_INTERVAL = re.compile(rf"(?<![\w.])({NUMBER}) \[({NUMBER}), ({NUMBER})\]")


def _number(text: str) -> float:
    return float(text.rstrip("%")) / (100 if text.endswith("%") else 1)


def printed_intervals(text: str) -> list[tuple[str, float, float, float]]:
    """Every "value [low, high]" printed in `text`, as (the printed string, value, low, high)."""
    return [(m.group(0), *(_number(g) for g in m.groups())) for m in PRINTED_INTERVAL.finditer(text)]


def unbroken(text: str) -> str:
    """Text with line breaks after a hyphen undone ("sign- off" -> "sign-off")."""
    return re.sub(r"-\s+", "-", flat(text))


@pytest.mark.slow
def test_audit_report_page_one_is_a_decision(audit_pdf, run):  # noqa: ANN001
    from reports._audit_view import _condition

    first = unbroken(pdf_pages(audit_pdf)[0])
    record = run.record
    assert f"Conclusion: {record.conclusion.outcome}" in first
    for c in record.conclusion.conditions:  # each finding: what, which groups, the figure, its limit, the action
        view = _condition(c)
        assert unbroken(f"{c.subject}: {view['groups']}" if c.groups else c.subject) in first
        assert unbroken(f"{c.figure} {view['value']}".strip()) in first and c.limit_text in first
        assert unbroken(c.action) in first
    assert any(c.groups and " vs " in _condition(c)["groups"] for c in record.conclusion.conditions)
    g = record.governance
    for value in (g.model_owner, g.validator, g.intended_use, *g.sign_off, "risk tier not set"):
        assert value in first
    assert "majority-class baseline 0.500" in first and "approving everyone" in first
    assert "an approve-everyone tree" in first and "observed default rate" in first
    assert "UCI_Credit_Card.csv" in first
    assert "/srv/credit" not in pdf_text(audit_pdf)  # the local path is nowhere in the report


@pytest.mark.slow
def test_audit_report_figures_that_appear_twice_are_equal(audit_pdf, run):  # noqa: ANN001
    """Read back from the PDF: every headline figure on page 1 equals its detailed section."""
    pages = [flat(p) for p in pdf_pages(audit_pdf)]
    first, rest = pages[0], " ".join(pages[1:])
    auc, lo, hi = re.search(r"(\d\.\d{3}) ROC AUC \[(\d\.\d{3}), (\d\.\d{3})\] on", first).groups()
    assert f"ROC AUC {auc} " in rest  # the performance table
    assert f"Production model the audited model {auc} [{lo}, {hi}]" in rest  # the benchmarks table
    accuracy, everyone = re.search(r"(\d+\.\d%) accuracy \(held out\) approving everyone (\d+\.\d%)", first).groups()
    assert f"Accuracy {accuracy} " in rest
    assert re.search(r"Majority class \(approve everyone\) .*? 0\.500 \[0\.500, 0\.500\] \S+ \[\S+, \S+\] lower "
                     + re.escape(everyone), rest)
    declines = re.search(r"(\d+\.\d%) decline rate \(held out\)", first).group(1)
    assert f"Decline rate {declines} " in rest
    fidelity, tree = re.search(r"(\d+\.\d%) surrogate tree fidelity an approve-everyone tree (\d+\.\d%)", first).groups()
    assert f"for {fidelity} of held-out applicants" in rest and f"against {tree} for a tree that approves everyone" in rest
    name, best_auc, best_difference = re.search(r"Best challenger on the same split: ([a-z -]+), ROC AUC (\S+ \[\S+, "
                                                r"\S+\]); difference from the production model (\S+ \[\S+, \S+\])",
                                                first).groups()
    assert re.search(re.escape(name) + r" .*? " + re.escape(f"{best_auc} {best_difference}"), rest.lower())
    cited = re.findall(r"(lowest adverse impact ratio|approval-rate gap|equalized odds difference) "
                       r"(\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\])", first)
    assert cited
    section = {"lowest adverse impact ratio": "Lowest adverse impact ratio (four-fifths rule)",
               "approval-rate gap": "Approval-rate gap (demographic parity difference)",
               "equalized odds difference": "Equalized odds difference"}
    for figure, interval in cited:
        assert f"{section[figure]} {interval}" in rest, (figure, interval)
    for name, verdict in re.findall(r"(\w[\w ]*?) (pass|review|fail)(?= ·| Flagged)", first.split("Fairness verdicts")[1]):
        assert f"{name}: {verdict}" in rest


@pytest.mark.slow
def test_every_interval_in_the_audit_report_contains_its_estimate(audit_pdf):  # noqa: ANN001
    found = printed_intervals(pdf_text(audit_pdf))
    assert len(found) > 50
    outside = [text for text, value, lo, hi in found if not lo <= value <= hi]
    assert outside == []


@pytest.mark.slow
def test_audit_report_is_tagged_with_title_language_and_alt_text(audit_pdf, run):  # noqa: ANN001
    """PDF/UA-1: a structure tree a screen reader can follow, with the title, language and each chart's alt text."""
    import pikepdf

    with pikepdf.open(audit_pdf) as pdf:
        root = pdf.Root
        assert str(root.Lang) == "en" and bool(root.MarkInfo.Marked)
        assert run.run_id in str(pdf.docinfo.Title) and bool(root.ViewerPreferences.DisplayDocTitle)
        seen: dict[str, list] = {}

        def walk(node) -> None:  # noqa: ANN001
            if isinstance(node, pikepdf.Dictionary) and "/S" in node:
                seen.setdefault(str(node.S), []).append(node)
                kids = node.get("/K")
                for kid in kids if isinstance(kids, pikepdf.Array) else [kids]:
                    walk(kid)

        walk(root.StructTreeRoot.K[0])
        assert str(root.StructTreeRoot.K[0].S) == "/Document"
        for tag in ("/H1", "/H2", "/P", "/Table", "/THead", "/TH", "/TD", "/L", "/LI", "/Figure"):
            assert seen.get(tag), tag
        figures = [str(f.get("/Alt", "")) for f in seen["/Figure"]]
        assert len(figures) >= 8 and all(figures), figures
        assert any(f.startswith("ROC curve") for f in figures)
        assert any("Verdict criteria" in f or "limit" in f for f in figures)
        assert len(seen["/H1"]) >= 12  # the title and every chapter


def test_conclusion_follows_its_rules(run):  # noqa: ANN001
    from pipeline.constants import BLOCKING, FIT, FIT_WITH_CONDITIONS, NOT_FIT

    record = run.record
    assert record.conclusion.outcome == FIT_WITH_CONDITIONS
    assert conclude(record, run.fairness) == record.conclusion  # what the run recorded is what the rules give
    sex, education = record.fairness.attributes
    failing = education.model_copy(update={"disparities": {
        **education.disparities, "equalized_odds_difference": Interval(value=0.2, lo=0.15, hi=0.25)}})
    bad = record.model_copy(update={"fairness": record.fairness.model_copy(update={"attributes": (sex, failing)})})
    conclusion = conclude(bad, run.fairness)
    first = conclusion.conditions[0]
    assert conclusion.outcome == NOT_FIT and first.severity == BLOCKING and first.subject == "Education"
    rows = run.fairness[(run.fairness["attribute"] == "EDUCATION") & (run.fairness["status"] == "ok")]
    assert first.groups == (rows.loc[rows["tpr"].idxmin(), "group"], rows.loc[rows["tpr"].idxmax(), "group"])
    assert first.value.value == 0.2 and first.limit == 0.1
    test = record.performance["test"].model_copy(update={"ece": 0.01})
    clean = record.model_copy(update={
        "fairness": None, "benchmarks": None, "performance": {**record.performance, "test": test},
        "governance": GOVERNANCE.model_copy(update={"risk_tier": "Tier 1"})})
    assert conclude(clean).outcome == FIT and conclude(clean).conditions == ()
    no_ranking = record.benchmarks.production.model_copy(update={"roc_auc": Interval(value=0.52, lo=0.48, hi=0.56)})
    blind = clean.model_copy(update={"benchmarks": record.benchmarks.model_copy(update={"production": no_ranking,
                                                                                        "challengers": ()})})
    assert conclude(blind).outcome == NOT_FIT and conclude(blind).conditions[0].rule == "no_ranking"


@pytest.mark.slow
def test_audit_report_of_a_run_before_the_conclusion_says_so(partial_run_dir, tmp_path):  # noqa: ANN001
    import reports

    text = pdf_text(reports.render_audit_report(reports.load_run(partial_run_dir), tmp_path / "a.pdf"))
    for what in ("Conclusion", "Benchmarks and challengers", "Sensitivity and stress", "Monitoring plan"):
        assert f"{what}: not computed in this run" in text
    assert "not recorded in this run" in text  # governance


@pytest.mark.slow
def test_audit_report_shows_each_stress_case_against_the_observed_inputs(audit_pdf, run):  # noqa: ANN001
    from reports._env import pct, points

    text = pdf_text(audit_pdf)
    held_out = run.record.held_out()
    assert f"As observed {held_out.roc_auc:.3f} \u2013 {pct(held_out.decline_rate)}" in text  # no AUC change
    cases = {c.key: c for c in run.record.stress.cases}
    assert set(cases) == {"amounts_up", "amounts_down", "limit_down", "one_month_later", "oldest_months_unknown"}
    for c in cases.values():
        auc, change, changed = c.roc_auc_ci, c.decline_rate_change_ci, c.decisions_changed_ci
        assert flat(f"{c.description} {c.roc_auc:.3f} [{auc.lo:.3f}, {auc.hi:.3f}]") in text
        assert flat(f"{pct(c.decline_rate)} {points(c.decline_rate_change)} [{change.lo * 100:+.1f}, "
                    f"{change.hi * 100:+.1f}] {pct(c.decisions_changed)} [{pct(changed.lo)}, {pct(changed.hi)}]") in text
        for interval in (auc, c.roc_auc_change, change, changed):  # paired bootstrap: each contains its estimate
            assert interval.lo <= interval.value <= interval.hi
    later = cases["one_month_later"]  # a worse repayment status raises the estimated risk
    assert later.mean_probability_change > 0 and later.decline_rate_change >= 0


@pytest.mark.slow
def test_audit_report_shows_fairness_under_demographic_shift(audit_pdf, run):  # noqa: ANN001
    from reports._audit_view import _interval, _label

    text = pdf_text(audit_pdf)
    assert "Fairness under demographic shift" in text
    section = run.record.shift
    measured = [c for c in section.cases if c.status == "ok"]
    assert measured
    for case in measured:
        assert flat(f"{_label(case.attribute)}: {case.group} {case.delta * 100:+g} points") in text
        for a in case.attributes:
            if a.unchanged_by_construction:
                continue
            for f in a.figures:
                assert flat(f"{f.label} {_interval(f.before)} {_interval(f.after)}") in flat(text).replace("- ", "-")
    for case in section.cases:
        if case.status == "skipped":
            assert flat(f"not measured: {case.reason}") in text
