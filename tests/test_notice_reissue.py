"""The review loop closes (issue 16, item 4): a decision that takes effect re-issues the applicant's notice.

Tried as the applicant, the analyst and the auditor would, on a sealed run of real rows (the run of
tests/test_reports.py: 400 applicants of the real file, their notices rendered by the reports
package, sealed with the session's key):

- an analyst overrides a decline in the review app; the applicant's served notice is a new version
  that says so (read back from the PDF), the earlier one is kept byte for byte, the trail entry
  records both hashes, and `verify` against the public key passes;
- tampering with either version, with an addendum, removing an addendum, or adding a file without
  one, makes `verify` fail with a line that names it;
- `credit-audit notice` writes into a sealed run only through a signed addendum (verify stays
  green), or outside it with --out, and never rewrites a sealed file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from readability import GRADE_MAX, grade, prose
from test_reports import _rows, build_run, pdf_pages, pdf_text

from flows.cli import main as cli_main
from pipeline import addenda
from pipeline.layout import ADDENDA_DIR
from pipeline.run_record import NoticeSection, load_record, write_record
from review import AccountStore, create_app, seal_run, verify_run
from review._accounts import Account, Role

pytestmark = pytest.mark.slow  # the real file, the PDF engine

PASSWORD = "correct horse battery staple"
ANALYST, APPROVER = "ann.example", "bo.approver"  # the second person four eyes ask for an override
REASON = "Salary slips show a steady income; the late month was a bank error."
AGREED = "Checked the salary slips with the branch: agreed."
NO_PERSON = ("No person looked at it first", "without a person")
US_NOTICE = NoticeSection(
    regime="us", postal_contact="Credit Review, PO Box 7, Springfield, IL 62701", email_contact="review@bank.example",
    federal_agency="Consumer Financial Protection Bureau, 1700 G Street NW, Washington, DC 20552",
)
N_NOTICES = 3  # declined applicants whose notice the run wrote (the rest: as after --notice-limit)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def unsealed(portfolio, tmp_path_factory) -> Path:
    """Real rows written as a run, with the first declined applicants' notices rendered (not sealed yet)."""
    import reports

    out = build_run(tmp_path_factory.mktemp("reissue") / "run", *_rows(portfolio))
    run = reports.load_run(out)
    reports.render_notices(run, run.declined_ids()[:N_NOTICES], out / "reports" / "notices", workers=1)
    return out


def _sealed_copy(unsealed: Path, tmp_path: Path, notice: NoticeSection | None = None) -> Path:
    out = Path(shutil.copytree(unsealed, tmp_path / "run"))
    if notice is not None:
        write_record(out, load_record(out).model_copy(update={"notice": notice}))
    seal_run(out)  # the session's key, like the flow's last step
    return out


@pytest.fixture
def run_dir(unsealed: Path, tmp_path: Path) -> Path:
    return _sealed_copy(unsealed, tmp_path)


@pytest.fixture
def key(signing_keystore):  # noqa: ANN001, ANN201 - the session's public key, as an auditor holds it
    from pipeline.signing import load_public

    return load_public(signing_keystore)


class App:
    """The review app over a run, driven in-process (FastAPI's TestClient) on the loopback host it accepts.

    An analyst proposes through the JSON API; a proposal that waits for a second person (an
    override) is approved by an approver, which is when the decision takes effect.
    """

    def __init__(self, run_dir: Path, tmp_path: Path) -> None:
        with warnings.catch_warnings():  # starlette asks for httpx2 on import; httpx is what the project pins
            warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
            from fastapi.testclient import TestClient

        self.accounts = AccountStore(f"sqlite:///{tmp_path / 'users.sqlite'}",
                                     hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        self.accounts.add(ANALYST, "analyst", PASSWORD)
        self.accounts.add(APPROVER, "approver", PASSWORD)
        self.app = create_app(run_dir, accounts=self.accounts)
        self.client = TestClient(self.app, base_url="http://127.0.0.1:8765")
        self.client.auth = (ANALYST, PASSWORD)  # pages and notices are read signed in (HTTP Basic)

    def review(self, applicant: int, outcome: str, reason: str = REASON):  # noqa: ANN201 - httpx.Response
        """The response of the entry that put the decision in effect (the proposal's, or its approval's)."""
        proposed = self.client.post(f"/api/applicants/{applicant}/reviews", auth=(ANALYST, PASSWORD),
                                    json={"outcome": outcome, "reason": reason})
        if proposed.status_code != 201 or proposed.json()["seq"] not in proposed.json().get("pending", []):
            return proposed
        return self.client.post(f"/api/reviews/{proposed.json()['seq']}/approve", auth=(APPROVER, PASSWORD),
                                json={"reason": AGREED})

    def close(self) -> None:
        self.app.state.store.close()
        self.accounts.close()


@pytest.fixture
def app(run_dir: Path, tmp_path: Path):
    a = App(run_dir, tmp_path)
    yield a
    a.close()


def _declined_with_notice(run_dir: Path) -> int:
    return int(sorted(run_dir.glob("reports/notices/notice_*.pdf"))[0].stem.split("_")[1])


def _approved(run_dir: Path) -> int:
    import reports

    table = reports.load_run(run_dir).applicants
    return int(table.loc[table["decision"] == "approve", "id"].iloc[0])


def _text(run_dir: Path, rel: str) -> str:
    return pdf_text(run_dir / rel)


def _verify_fails(run_dir: Path, key, *needles: str) -> list[str]:  # noqa: ANN001
    report = verify_run(run_dir, public_key=key)
    assert not report.ok
    for needle in needles:
        assert any(needle in p for p in report.problems), (needle, report.problems)
    return list(report.problems)


# ---------------------------------------------------------------------------
# The applicant: the served notice says what a person decided, when, and how to contest
# ---------------------------------------------------------------------------
def test_an_override_to_approve_reissues_the_notice_and_verify_passes(run_dir, app, key):
    import reports

    applicant = _declined_with_notice(run_dir)
    first = run_dir / "reports" / "notices" / reports.notice_filename(applicant)
    before, first_sha = first.read_bytes(), sha(first)
    assert "No person looked at it first" in pdf_text(first)  # the model's notice, as sent

    saved = app.review(applicant, "override_approve")
    assert saved.status_code == 201, saved.text
    notice = saved.json()["notice"]
    assert notice["version"] == 2 and notice["path"] == f"reports/notices/notice_{applicant}_v2.pdf"
    assert notice["previous_path"] == first.relative_to(run_dir).as_posix()
    assert notice["previous_sha256"] == first_sha and first.read_bytes() == before  # the earlier version is kept
    assert notice["sha256"] == sha(run_dir / notice["path"])

    served = app.client.get(f"/notices/{applicant}.pdf")
    assert served.status_code == 200 and served.content == (run_dir / notice["path"]).read_bytes()

    text = _text(run_dir, notice["path"])
    created = reports._notice_view.long_date(saved.json()["created"])
    assert "We looked at your application again: we now approve it" in text
    assert f"On {created}, a credit analyst at our bank looked at your application" in text
    assert "A person made this decision after a review" in text
    assert "This letter replaces our letter of 23 November 2026" in text  # the run's date (build_run)
    assert "you can contest it" in text and "review@example.com" in text
    assert not any(s in text for s in NO_PERSON)
    assert ANALYST not in text and APPROVER not in text and REASON not in text  # a role, never the staff name or the internal note
    pages = pdf_pages(run_dir / notice["path"])
    assert len(pages) == 2
    # the approved applicant's own text on both pages, never the denial's
    assert "What counted against you in the model" in text and "Not applicable: we approved your application" in text
    assert "Ask for a person, and give your view" in pages[1]
    assert "Give your view, and contest the decision" not in pages[1]
    assert "The main reasons for our decision" not in text

    # the trail entry binds both files (database and export alike), and verify passes against the key
    line = json.loads((run_dir / "review" / "trail.jsonl").read_text().splitlines()[-1])
    assert line["record"]["notice"] == notice
    report = verify_run(run_dir, public_key=key)
    assert report.ok, report.problems

    html = app.client.get(f"/notices/{applicant}.html")
    assert html.status_code == 200 and "we now approve it" in html.text


def test_confirm_then_override_keeps_every_version_us_regime(unsealed, tmp_path, key):
    run_dir = _sealed_copy(unsealed, tmp_path, notice=US_NOTICE)
    a = App(run_dir, tmp_path)
    try:
        applicant = _declined_with_notice(run_dir)
        v1 = run_dir / "reports" / "notices" / f"notice_{applicant}.pdf"
        confirmed = a.review(applicant, "confirm").json()["notice"]
        v2 = run_dir / confirmed["path"]
        v2_bytes = v2.read_bytes()
        text = pdf_text(v2)
        assert "we still decline it" in text and "The analyst agreed with the model" in text
        assert "The main reasons for our decision" in text and "Equal Credit Opportunity Act" in text
        assert "GDPR" not in text and not any(s in text for s in NO_PERSON)

        assert a.review(applicant, "needs_information").json().get("notice") is None  # takes no effect
        overridden = a.review(applicant, "override_approve").json()["notice"]
        assert overridden["version"] == 3 and overridden["previous_path"] == confirmed["path"]
        assert overridden["previous_sha256"] == sha(v2) and v2.read_bytes() == v2_bytes
        assert overridden["addendum"] == f"{ADDENDA_DIR}/0002.json"
        assert sorted(p.name for p in v1.parent.glob(f"notice_{applicant}*.pdf")) == [
            f"notice_{applicant}.pdf", f"notice_{applicant}_v2.pdf", f"notice_{applicant}_v3.pdf"]
        assert a.client.get(f"/notices/{applicant}.pdf").content == (run_dir / overridden["path"]).read_bytes()
        v3 = pdf_text(run_dir / overridden["path"])
        replaced = pytest.importorskip("reports")._notice_view.long_date(a.app.state.store.history(applicant)[0].created)
        assert f"This letter replaces our letter of {replaced}" in v3 and "we now approve it" in v3
        assert verify_run(run_dir, public_key=key).ok
    finally:
        a.close()


def test_an_override_to_decline_an_approval_gets_the_denial_text(run_dir, app, key):
    applicant = _approved(run_dir)
    notice = app.review(applicant, "override_decline").json()["notice"]
    assert notice["previous_path"] is None and notice["previous_sha256"] is None  # the run wrote no notice for them
    pages = pdf_pages(run_dir / notice["path"])
    text = " ".join(" ".join(pages).split())
    assert "we have declined it" in text and "The model had said yes" in text
    assert "The model alone would have said yes" in text and "replaces our letter" not in text
    assert "Give your view, and contest the decision" in " ".join(pages[1].split())
    assert verify_run(run_dir, public_key=key).ok
    page = app.client.get(f"/applicants/{applicant}").text  # the analyst's page links the re-issued notice
    assert f'href="/notices/{applicant}.pdf"' in page and f'href="/notices/{applicant}.html"' in page
    assert app.client.get(f"/notices/{applicant}.pdf").content == (run_dir / notice["path"]).read_bytes()


def test_reviewed_notices_read_at_grade_8_or_below(run_dir):
    import reports
    from reports import ReviewedDecision

    run = reports.load_run(run_dir)
    declined, approved = run.declined_ids()[0], _approved(run_dir)
    cases = [(declined, "decline", "decline"), (declined, "decline", "approve"), (approved, "approve", "decline"),
             (approved, "approve", "approve")]
    grades = [grade(prose(reports.notice_html(run, i, review=ReviewedDecision(
        model_decision=m, final_decision=f, reviewed="2026-12-03T09:00:00+00:00",
        replaces="2026-11-23T06:28:00+00:00", version=2)))) for i, m, f in cases]
    assert max(grades) <= GRADE_MAX, grades


# ---------------------------------------------------------------------------
# The auditor: verify stays green after documented actions and catches tampering
# ---------------------------------------------------------------------------
@pytest.fixture
def overridden(run_dir, app, key) -> dict:
    applicant = _declined_with_notice(run_dir)
    notice = app.review(applicant, "override_approve").json()["notice"]
    assert verify_run(run_dir, public_key=key).ok
    return notice


def _append_byte(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\n")


def test_editing_the_earlier_version_is_caught(run_dir, overridden, key):
    _append_byte(run_dir / overridden["previous_path"])
    _verify_fails(run_dir, key, f"{overridden['previous_path']}: content differs from the manifest")


def test_editing_the_new_version_is_caught(run_dir, overridden, key):
    _append_byte(run_dir / overridden["path"])
    _verify_fails(run_dir, key, f"{overridden['path']}: content differs from {overridden['addendum']}")


def test_editing_the_addendum_is_caught(run_dir, overridden, key):
    path = run_dir / overridden["addendum"]
    doc = json.loads(path.read_text())
    doc["why"] = "nothing to see here"
    path.write_text(json.dumps(doc))
    _verify_fails(run_dir, key, f"{overridden['addendum']}: the signature does not verify")


def test_an_addendum_rewritten_for_other_bytes_is_caught(run_dir, overridden, key):
    """Swap the new notice's bytes and fix the addendum's hash: its signature no longer holds, nor the trail's."""
    new = run_dir / overridden["path"]
    new.write_bytes((run_dir / overridden["previous_path"]).read_bytes())
    path = run_dir / overridden["addendum"]
    doc = json.loads(path.read_text())
    doc["files"][overridden["path"]]["sha256"] = sha(new)
    path.write_text(json.dumps(doc))
    _verify_fails(run_dir, key, "the signature does not verify", f"its re-issued notice {overridden['path']}")


def test_removing_the_addendum_is_caught(run_dir, overridden, key):
    (run_dir / overridden["addendum"]).unlink()
    _verify_fails(run_dir, key, f"{overridden['path']}: not listed in the manifest",
                  f"its re-issued notice {overridden['path']} is not sealed")


def test_removing_the_addendum_and_the_notice_is_caught_by_the_trail(run_dir, overridden, key):
    (run_dir / overridden["addendum"]).unlink()
    (run_dir / overridden["path"]).unlink()
    _verify_fails(run_dir, key, f"its re-issued notice {overridden['path']} is not sealed")


def test_removing_an_earlier_addendum_is_caught(run_dir, app, overridden, key):
    second = app.review(_approved(run_dir), "override_decline").json()["notice"]
    assert verify_run(run_dir, public_key=key).ok
    (run_dir / overridden["addendum"]).unlink()
    _verify_fails(run_dir, key, f"{overridden['addendum']}: missing, yet addendum 2 follows it")
    assert second["addendum"].endswith("0002.json")


def test_a_file_added_without_an_addendum_is_caught(run_dir, overridden, key):
    planted = run_dir / "reports" / "notices" / "notice_1_v9.pdf"
    planted.write_bytes((run_dir / overridden["path"]).read_bytes())
    _verify_fails(run_dir, key, "reports/notices/notice_1_v9.pdf: not listed in the manifest")


def test_an_addendum_cannot_replace_a_sealed_file(run_dir, overridden, key, signing_keystore):
    """Even signed with the key, an addendum that lists an already sealed file is refused by verify."""
    from pipeline.signing import load_signer

    old = run_dir / overridden["previous_path"]
    _append_byte(old)
    addenda.add_files(run_dir, load_record(run_dir).run_id, [old], why="replace", signer=load_signer(signing_keystore))
    _verify_fails(run_dir, key, f"lists {overridden['previous_path']}, which is already sealed")


def test_a_failed_reissue_saves_nothing(run_dir, app):
    """No sealed manifest, no addendum: the review is refused (503) and no file is left in the run."""
    (run_dir / "manifest.json").unlink()
    applicant = _declined_with_notice(run_dir)
    answer = app.review(applicant, "override_approve")
    assert answer.status_code == 503 and "not sealed" in answer.text
    assert [r.action for r in app.app.state.store.all()] == ["propose"]  # the approval, which re-issues, is not saved
    assert not list(run_dir.glob("reports/notices/*_v*.pdf")) and not (run_dir / ADDENDA_DIR).exists()


# ---------------------------------------------------------------------------
# `credit-audit notice` never leaves the run failing verify
# ---------------------------------------------------------------------------
def test_notice_command_into_the_run_is_sealed_by_an_addendum(run_dir, key, capsys):
    approved = _approved(run_dir)
    assert cli_main(["notice", "--run", str(run_dir), "--id", str(approved), "--html"]) == 0
    out = capsys.readouterr().out
    pdf = run_dir / "reports" / "notices" / f"notice_{approved}.pdf"
    assert pdf.is_file() and pdf.with_suffix(".html").is_file() and f"{ADDENDA_DIR}/0001.json" in out
    assert "We have approved your application" in pdf_text(pdf)
    assert verify_run(run_dir, public_key=key).ok, verify_run(run_dir, public_key=key).problems

    sealed = _declined_with_notice(run_dir)
    before = sha(run_dir / "reports" / "notices" / f"notice_{sealed}.pdf")
    assert cli_main(["notice", "--run", str(run_dir), "--id", str(sealed)]) == 0
    assert "already sealed in the run" in capsys.readouterr().out
    assert sha(run_dir / "reports" / "notices" / f"notice_{sealed}.pdf") == before
    assert cli_main(["verify", "--run", str(run_dir), "--public-key", str(key_file(run_dir))]) == 0


def key_file(run_dir: Path) -> Path:
    import os

    from pipeline.signing import KEYSTORE_ENV, PUBLIC_FILE

    return Path(os.environ[KEYSTORE_ENV]) / PUBLIC_FILE


def test_notice_command_all_declined_fills_in_and_seals(run_dir, key, capsys):
    import reports

    declined = reports.load_run(run_dir).declined_ids()
    assert cli_main(["notice", "--run", str(run_dir), "--all-declined", "--workers", "1"]) == 0
    assert f"{len(declined) - N_NOTICES} notices written" in capsys.readouterr().out
    assert all((run_dir / "reports" / "notices" / f"notice_{i}.pdf").is_file() for i in declined)
    assert verify_run(run_dir, public_key=key).ok


def test_notice_command_outside_the_run_leaves_it_untouched(run_dir, key, tmp_path):
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    out = tmp_path / "elsewhere"
    assert cli_main(["notice", "--run", str(run_dir), "--id", str(_approved(run_dir)), "--out", str(out)]) == 0
    assert len(list(out.glob("notice_*.pdf"))) == 1
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before
    assert verify_run(run_dir, public_key=key).ok


def test_notice_command_serves_the_reviewed_version(run_dir, overridden, tmp_path, capsys):
    applicant = int(Path(overridden["path"]).stem.split("_")[1])
    assert cli_main(["notice", "--run", str(run_dir), "--id", str(applicant)]) == 0
    assert overridden["path"] in capsys.readouterr().out
    out = tmp_path / "copy"
    assert cli_main(["notice", "--run", str(run_dir), "--id", str(applicant), "--out", str(out)]) == 0
    assert "we now approve it" in pdf_text(out / Path(overridden["path"]).name)


def test_notice_command_refuses_to_add_unsigned_or_to_an_unsealed_run(run_dir, monkeypatch, capsys):
    approved = _approved(run_dir)
    monkeypatch.setenv("CREDIT_AUDIT_UNSIGNED", "1")
    assert cli_main(["notice", "--run", str(run_dir), "--id", str(approved)]) == 2
    assert "is sealed with key" in capsys.readouterr().err
    monkeypatch.delenv("CREDIT_AUDIT_UNSIGNED")
    (run_dir / "manifest.json").unlink()
    assert cli_main(["notice", "--run", str(run_dir), "--id", str(approved)]) == 2
    err = capsys.readouterr().err
    assert "is not sealed yet" in err and "Traceback" not in err
    assert not (run_dir / "reports" / "notices" / f"notice_{approved}.pdf").exists()


def test_a_notice_path_edited_in_the_database_is_never_served(run_dir, app, overridden, key):
    """The served path is built from the id and version: a row pointing elsewhere serves nothing else, and fails verify."""
    import sqlite3

    applicant = int(Path(overridden["path"]).stem.split("_")[1])
    forged = {**overridden, "path": "audit.json"}
    with sqlite3.connect(run_dir / "review" / "reviews.sqlite") as db:
        db.execute("UPDATE reviews SET notice = ? WHERE applicant_id = ?", (json.dumps(forged), applicant))
    served = app.client.get(f"/notices/{applicant}.pdf")
    assert served.status_code == 200 and served.content == (run_dir / overridden["path"]).read_bytes()
    _verify_fails(run_dir, key, "records its notice at audit.json, not where its version belongs")


def test_resealing_the_run_keeps_its_addenda(run_dir, overridden, key):
    """Re-judging a run's gates re-seals its manifest: the addenda (rooted in the run id) still verify."""
    seal_run(run_dir)  # every file, the re-issued notice included
    listed = json.loads((run_dir / "manifest.json").read_text())["files"]
    assert overridden["path"] in listed
    report = verify_run(run_dir, public_key=key)
    assert report.ok, report.problems


def test_an_addendum_moved_from_another_run_is_caught(run_dir, overridden, key):
    path = run_dir / overridden["addendum"]
    doc = json.loads(path.read_text())
    assert doc["prev_sha256"] == addenda.genesis(load_record(run_dir).run_id)
    doc["prev_sha256"] = addenda.genesis("another-run")
    path.write_text(json.dumps(doc))
    _verify_fails(run_dir, key, "does not follow the start of run")


def test_a_save_that_fails_after_the_reissue_leaves_a_sealed_unserved_version(run_dir, app, key, monkeypatch):
    """A crash between the addendum and the commit: verify passes and notes the version; it is never served."""
    applicant = _declined_with_notice(run_dir)
    store = app.app.state.store

    proposed = app.client.post(f"/api/applicants/{applicant}/reviews", auth=(ANALYST, PASSWORD),
                               json={"outcome": "override_approve", "reason": REASON}).json()["seq"]
    reissue = store._with_notice

    def crash_after_the_reissue(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        reissue(*args, **kwargs)
        raise RuntimeError("power cut")

    monkeypatch.setattr(store, "_with_notice", crash_after_the_reissue)
    with pytest.raises(RuntimeError, match="power cut"):
        store.approve(proposed, AGREED, Account(APPROVER, Role.APPROVER))
    orphan = f"reports/notices/notice_{applicant}_v2.pdf"
    assert (run_dir / orphan).is_file() and [r.seq for r in store.all()] == [proposed]  # the approval rolled back
    report = verify_run(run_dir, public_key=key)
    assert report.ok, report.problems
    assert any(orphan in n and "no review names it" in n for n in report.notes)
    served = app.client.get(f"/notices/{applicant}.pdf")
    assert served.content == (run_dir / "reports" / "notices" / f"notice_{applicant}.pdf").read_bytes()
    monkeypatch.undo()
    notice = app.review(applicant, "override_approve").json()["notice"]
    assert notice["version"] == 3 and notice["previous_path"].endswith(f"notice_{applicant}.pdf")  # v2 kept, skipped
    assert verify_run(run_dir, public_key=key).ok
