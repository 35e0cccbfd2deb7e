"""The review app over a real (small) run: API, security checks, rendering, and a real-browser walk-through.

The run directory is written with the same functions the flow uses (scoring,
flags, outputs) from 300 rows of the real data and the session's fitted
model; the app is served by uvicorn on a free loopback port and driven over
real HTTP (httpx) and, in the browser test, by headless Debian Chromium.
"""

from __future__ import annotations

import io
import json
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from markupsafe import escape

from flows.cli import main as cli_main
from pipeline import outputs as O
from pipeline import schema as S
from pipeline import scoring
from pipeline.config import AuditConfig
from pipeline.flags import FlagConfig, compute_flags, flag_summary
from pipeline.run_record import FlagsSection, write_record
from pipeline.splitting import split_portfolio
from pipeline.surrogate import Surrogate
from review import AccountStore, create_app, verify_run
from review._auth import SESSION_COOKIE
from review._body_limit import MAX_BODY_BYTES, MSG_BODY_TOO_LARGE
from review._security import CSRF_COOKIE

pytestmark = pytest.mark.slow  # needs the session's model fitted on the real data

PASSWORD = "test-password-0123456789"
ANA = ("ana.analyst", PASSWORD)  # httpx's HTTP Basic credentials: the API uses the same accounts as the pages
ALI = ("ali", PASSWORD)
BO = ("bo", PASSWORD)
ACCOUNTS = {"ana.analyst": "analyst", "ali": "analyst", "bo": "approver"}
HTTP_TIMEOUT = 120  # seconds: the CI machine may be busy
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REASON = "Bill amounts verified against statements; decision stands."
FAKE_PDF = b"%PDF-1.4\n% test notice\n%%EOF\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accounts_for(run_dir: Path) -> AccountStore:
    """The test accounts, in a users database beside the run (quick argon2 parameters: same algorithm)."""
    from argon2 import PasswordHasher

    store = AccountStore(f"sqlite:///{run_dir.parent / 'users.sqlite'}",
                         hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    for name, role in ACCOUNTS.items():
        if store.get(name) is None:
            store.add(name, role, PASSWORD)
    return store


def set_cookie(response: httpx.Response, name: str) -> str | None:
    """A cookie's value from Set-Cookie (httpx keeps Secure cookies for https; these tests speak http to loopback)."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            return header.split(";", 1)[0].split("=", 1)[1]
    return None


def sign_in(c: httpx.Client, base: str, account: tuple[str, str] = ANA) -> None:
    """Sign in through the form, as a browser does; the client then sends the session and CSRF cookies."""
    login = c.get("/login")
    csrf = set_cookie(login, CSRF_COOKIE)
    c.headers["Cookie"] = f"{CSRF_COOKIE}={csrf}"
    form = {"name": account[0], "password": account[1], "csrf_token": csrf, "next": "/"}
    done = c.post("/login", data=form, headers={"Origin": base})
    assert done.status_code == 303, done.text
    c.headers["Cookie"] = f"{CSRF_COOKIE}={csrf}; {SESSION_COOKIE}={set_cookie(done, SESSION_COOKIE)}"


@contextmanager
def serving(run_dir: Path, **kw):  # noqa: ANN003 - passed to create_app
    app = create_app(run_dir, accounts=accounts_for(run_dir), **kw)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the review app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        app.state.store.close()
        app.state.auth.accounts.close()


@pytest.fixture(scope="module")
def built_run(tmp_path_factory, portfolio, fitted_model) -> Path:
    """300 real applicants scored by the real model, written like a run (flags and one notice included)."""
    rng = np.random.default_rng(0)
    f = portfolio.features
    odd = np.flatnonzero(~f["EDUCATION"].isin(list(S.BY_NAME["EDUCATION"].codes)).to_numpy())[:8]
    pick = np.unique(np.concatenate([rng.choice(len(f), 292, replace=False), odd]))
    small = replace(
        portfolio,
        features=f.iloc[pick].reset_index(drop=True),
        labels=portfolio.labels.iloc[pick].reset_index(drop=True),
        ids=portfolio.ids.iloc[pick].reset_index(drop=True),
    )
    split = split_portfolio(small, 0.2, 0)
    train = small.features.iloc[split.train]
    surrogate = Surrogate(features=fitted_model.features, max_depth=4, seed=0).fit(train, fitted_model.predict(train))
    table = scoring.applicants_table(small, split, fitted_model, surrogate)
    threshold = fitted_model.threshold_
    flags = compute_flags(
        table, threshold, FlagConfig(borderline_margin=0.1), training=small.features.iloc[split.train]
    )
    out = tmp_path_factory.mktemp("review") / "run"
    declined = table.loc[table["decision"] == "decline", "id"].to_numpy()
    (out / "reports" / "notices").mkdir(parents=True)
    (out / "reports" / "notices" / f"notice_{int(declined[0])}.pdf").write_bytes(FAKE_PDF)
    record = scoring.core_record(
        run_id="20261123T000000Z-test0000", created="2026-11-23T00:00:00+00:00", config=AuditConfig(),
        device="cpu", code_version="0" * 64, portfolio=small, split=split, model=fitted_model,
        surrogate=surrogate, table=table,
    ).model_copy(update={"flags": FlagsSection.model_validate(flag_summary(flags))})
    fitted_model.save(out / O.MODEL_DIR)
    O.write_parquet(out / O.APPLICANTS, table)
    O.write_parquet(out / "flags.parquet", flags.table)
    write_record(out, record)
    O.write_manifest(out)
    assert verify_run(out).ok
    return out


@pytest.fixture
def run_dir(built_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built_run, tmp_path / "run"))


@pytest.fixture
def url(run_dir: Path):
    with serving(run_dir) as base:
        yield base


def _flags(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "flags.parquet")


def _table(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / O.APPLICANTS).set_index("id")


def _csrf(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


# ---- queue ---------------------------------------------------------------------
def test_queue_lists_the_flagged_and_filters(url, run_dir):
    flags = _flags(run_dir)
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url, auth=ANA) as c:
        everything = c.get("/api/queue").json()
        assert {r["id"] for r in everything} == set(flags["id"])
        for code in flags["code"].unique():
            got = {r["id"] for r in c.get("/api/queue", params={"code": code}).json()}
            assert got == set(flags.loc[flags["code"] == code, "id"])
        by_p = c.get("/api/queue", params={"sort": "probability", "order": "asc"}).json()
        assert [r["probability"] for r in by_p] == sorted(r["probability"] for r in by_p)
        page = c.get("/", params={"code": "undocumented_code"})
        linked = {int(i) for i in re.findall(r'href="/applicants/(\d+)\?', page.text)}
        assert linked and linked == set(flags.loc[flags["code"] == "undocumented_code", "id"])
        first = flags[flags["code"] == "undocumented_code"].iloc[0]
        assert f'title="{escape(first["reason"])}"' in page.text  # the reason on hover
        assert c.get("/", params={"sort": "evil"}).status_code == 422
        assert c.get("/api/queue", params={"code": "<script>"}).status_code == 422


def test_review_state_filter(url, run_dir):
    target = int(_flags(run_dir)["id"].iloc[0])
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url, auth=ANA) as c:
        body = {"outcome": "needs_information", "reason": "Need the last payslips."}
        assert c.post(f"/api/applicants/{target}/reviews", json=body).status_code == 201
        pending = c.get("/api/queue", params={"state": "needs_information"}).json()
        assert [r["id"] for r in pending] == [target]
        unreviewed = {r["id"] for r in c.get("/api/queue", params={"state": "unreviewed"}).json()}
        assert target not in unreviewed and len(unreviewed) == _flags(run_dir)["id"].nunique() - 1


# ---- security ------------------------------------------------------------------
def test_foreign_host_is_refused(url):
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url, auth=ANA) as c:
        assert c.get("/", headers={"Host": "attacker.test"}).status_code == 400
        assert c.get("/", headers={"Host": "localhost"}).status_code == 200


def test_form_post_needs_origin_csrf_and_a_sign_in(url, run_dir):
    target = int(_flags(run_dir)["id"].iloc[0])
    path = f"/applicants/{target}"
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url) as c:
        sign_in(c, url)
        csrf = _csrf(c, path)
        form = {"outcome": "confirm", "reason": REASON, "reviewer": "Bo Boss", "csrf_token": csrf}
        own = {"Origin": url}
        assert c.post(f"{path}/reviews", data=form).status_code == 403  # no Origin/Referer
        assert c.post(f"{path}/reviews", data=form, headers={"Origin": "http://attacker.test"}).status_code == 403
        assert c.post(f"{path}/reviews", data=form | {"csrf_token": "forged"}, headers=own).status_code == 403
        assert c.get("/api/reviews").json() == []
        ok = c.post(f"{path}/reviews", data=form, headers=own)
        assert ok.status_code == 303 and ok.headers["location"].startswith(f"{path}?")  # the queue's query kept
        assert ok.headers["location"].endswith("&saved=1")
        again = c.post(f"{path}/reviews", data=form | {"seen_seq": "1"}, headers={"Referer": url + path})
        assert again.status_code == 303
        assert [r["reviewer"] for r in c.get("/api/reviews").json()] == ["ana.analyst", "ana.analyst"]  # not typed
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url) as other:  # another browser: no session
        page = other.get("/login")
        csrf = set_cookie(page, CSRF_COOKIE)
        other.headers["Cookie"] = f"{CSRF_COOKIE}={csrf}"
        refused = other.post(f"{path}/reviews", data=form | {"csrf_token": csrf}, headers={"Origin": url})
        assert refused.status_code == 401


def test_form_validation_errors_are_shown_and_nothing_saved(url, run_dir):
    table = _table(run_dir)
    approved = int(next(i for i in _flags(run_dir)["id"] if table.loc[i, "decision"] == "approve"))
    path = f"/applicants/{approved}"
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url) as c:
        sign_in(c, url)
        csrf = _csrf(c, path)
        bad = {"outcome": "override_approve", "reason": "short", "csrf_token": csrf}
        page = c.post(f"{path}/reviews", data=bad, headers={"Origin": url})
        assert page.status_code == 422
        assert "written reason" in page.text and "override to approve" in page.text
        assert c.get("/api/reviews").json() == []


def test_api_write_rules(url, run_dir):
    table = _table(run_dir)
    declined = int(next(i for i in _flags(run_dir)["id"] if table.loc[i, "decision"] == "decline"))
    body = {"outcome": "override_approve", "reason": REASON}
    path = f"/api/applicants/{declined}/reviews"
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url) as c:
        assert c.post(path, json=body).status_code == 401
        assert c.post(path, json=body, auth=("ana.analyst", "not the password")).status_code == 401
        assert c.post(path, json=body, auth=ANA, headers={"Origin": "http://attacker.test"}).status_code == 403
        assert c.post("/api/applicants/999999999/reviews", json=body, auth=ANA).status_code == 404
        bad = c.post(path, json=body | {"outcome": "override_decline"}, auth=ANA)
        assert bad.status_code == 422 and "outcome" in bad.json()["detail"]
        saved = c.post(path, json=body, auth=ANA)
        assert saved.status_code == 201 and saved.json()["final_decision"] == "approve"
        assert saved.json()["decision_in_effect"] is None and saved.json()["pending"] == [saved.json()["seq"]]
        got = c.get(f"/api/applicants/{declined}", auth=ANA).json()
        assert got["reviews"][0]["entry_hash"] == saved.json()["entry_hash"]
        approved = c.post(f"/api/reviews/{saved.json()['seq']}/approve", json={"reason": REASON}, auth=BO)
        assert approved.status_code == 201 and approved.json()["decision_in_effect"] == "approve"


def test_user_text_is_escaped(url, run_dir):
    target = int(_flags(run_dir)["id"].iloc[0])
    body = {"outcome": "confirm", "reason": '<img src=x onerror="alert(1)"> looks fine <script>x</script>'}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url, auth=ANA) as c:
        assert c.post(f"/api/applicants/{target}/reviews", json=body).status_code == 201
        for path in (f"/applicants/{target}", "/?state=reviewed"):
            page = c.get(path)
            assert "<script>x</script>" not in page.text and "<img src=x" not in page.text
            assert "default-src 'none'" in page.headers["content-security-policy"]
            assert page.headers["x-frame-options"] == "DENY"
        assert "&lt;script&gt;x&lt;/script&gt;" in c.get(f"/applicants/{target}").text


def test_two_reviewers_saving_at_once_lose_nothing(url, run_dir):
    ids = [int(i) for i in _flags(run_dir)["id"].unique()[:5]]
    errors: list[object] = []

    def reviewer(account: tuple[str, str]) -> None:
        with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url, auth=account) as c:
            for k in range(10):
                r = c.post(
                    f"/api/applicants/{ids[k % 5]}/reviews",
                    json={"outcome": "needs_information", "reason": f"{REASON} {account[0]} {k}"},
                )
                if r.status_code != 201:
                    errors.append(r.text)

    threads = [threading.Thread(target=reviewer, args=(a,)) for a in (ANA, ALI)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url, auth=BO) as c:
        reviews = c.get("/api/reviews").json()
    assert len(reviews) == 20 and [r["seq"] for r in reviews] == list(range(1, 21))
    assert verify_run(run_dir).ok


def test_csv_export(url, run_dir):
    target = int(_flags(run_dir)["id"].iloc[0])
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url, auth=ANA) as c:
        c.post(
            f"/api/applicants/{target}/reviews",
            json={"outcome": "confirm", "reason": "=cmd|' /C calc'!A0 is not a reason"},
        )
        csv_text = c.get("/export/reviews.csv")
    assert csv_text.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_text.headers["content-disposition"]
    line = csv_text.text.splitlines()[1]
    assert ",'=cmd|" in line and ",ana.analyst,analyst," in line


# ---- applicant page --------------------------------------------------------------
def test_applicant_page_shows_decision_flags_and_degrades(url, run_dir):
    table, flags = _table(run_dir), _flags(run_dir)
    target = int(flags["id"].iloc[0])
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url, auth=ANA) as c:
        page = c.get(f"/applicants/{target}").text
        assert f"Applicant #{target}" in page
        assert f"{table.loc[target, 'probability'] * 100:.1f}%" in page
        for reason in flags.loc[flags["id"] == target, "reason"]:
            assert str(escape(reason)) in page
        assert "Not computed in this run" in page  # SHAP, LIME, reasons are not in this run
        assert S.BY_NAME["LIMIT_BAL"].describe(table.loc[target, "LIMIT_BAL"]) in page
        assert c.get("/applicants/999999999").status_code == 404
        assert c.get("/applicants/abc").status_code == 422


def test_surrogate_path_is_rebuilt_from_the_run(run_dir, fitted_model):
    """The tree refitted from the run's training rows reproduces the recorded decisions, so its path is shown."""
    table = pd.read_parquet(run_dir / O.APPLICANTS)
    train = table[table["split"] == "train"]
    reference = Surrogate(features=fitted_model.features, max_depth=4, seed=0).fit(
        train, (train["decision"] == "decline").to_numpy(int)
    )
    target = int(table["id"].iloc[0])
    steps = reference.decision_path(table.iloc[[0]])
    assert steps
    with serving(run_dir) as base, httpx.Client(timeout=HTTP_TIMEOUT, base_url=base, auth=ANA) as c:
        page = c.get(f"/applicants/{target}").text
    for step in steps:
        assert str(escape(step["condition"])) in page
    assert "path through the tree was not recorded" not in page

    # a run whose recorded surrogate decisions the refit cannot reproduce shows no (possibly wrong) path
    flipped = table.copy()
    flipped.loc[1, "surrogate_decision"] = "approve" if flipped.loc[1, "surrogate_decision"] == "decline" else "decline"
    O.write_parquet(run_dir / O.APPLICANTS, flipped)
    with serving(run_dir) as base, httpx.Client(timeout=HTTP_TIMEOUT, base_url=base, auth=ANA) as c:
        assert "path through the tree was not recorded" in c.get(f"/applicants/{target}").text


def test_notice_link_and_download(url, run_dir):
    notice = next((run_dir / "reports" / "notices").glob("notice_*.pdf"))
    applicant = int(notice.stem.split("_")[1])
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url, auth=ANA) as c:
        assert f'href="/notices/{applicant}.pdf"' in c.get(f"/applicants/{applicant}").text
        pdf = c.get(f"/notices/{applicant}.pdf")
        assert pdf.status_code == 200 and pdf.content == FAKE_PDF
        other = int(next(i for i in _table(run_dir).index if i != applicant))
        assert f"/notices/{other}.pdf" not in c.get(f"/applicants/{other}").text
        assert c.get(f"/notices/{other}.pdf").status_code == 404


def test_notice_html_from_the_reports_package(url, run_dir):
    reports = pytest.importorskip("reports")
    if not hasattr(reports, "notice_html"):
        pytest.skip("the reports package has no notice_html yet")
    table = _table(run_dir)
    declined = int(table.index[table["decision"] == "decline"][0])
    approved = int(table.index[table["decision"] == "approve"][0])
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url, auth=ANA) as c:
        assert f'href="/notices/{declined}.html"' in c.get(f"/applicants/{declined}").text
        page = c.get(f"/notices/{declined}.html")
        assert page.status_code == 200 and f"/{declined}" in page.text  # the notice reference <run>/<id>
        assert "sandbox" in page.headers["content-security-policy"]
        assert c.get(f"/notices/{approved}.html").status_code == 404


def test_explanation_columns_are_rendered(run_dir):
    """With SHAP, LIME, reasons, counterfactual, stability and a surrogate path in the table, the page shows them."""
    table = pd.read_parquet(run_dir / O.APPLICANTS)
    i = int(np.flatnonzero(table["decision"].to_numpy() == "decline")[0])
    features = list(S.DEFAULT_MODEL_FEATURES)
    shap = np.zeros((len(table), len(features)))
    shap[i, features.index("PAY_0")] = 0.21
    shap[i, features.index("LIMIT_BAL")] = -0.04
    extra = {f"shap_{n}": shap[:, k] for k, n in enumerate(features)}
    extra |= {f"lime_{n}": np.where(np.arange(len(table)) == i, 0.1 if n == "PAY_0" else 0.0, np.nan) for n in features}
    reasons = [None] * len(table)
    reasons[i] = json.dumps([{"feature": "PAY_0", "text": "Repayment status last month: 2 months late"}])
    cf = [None] * len(table)
    cf[i] = json.dumps(
        {
            "found": True,
            "probability": 0.31,
            "changes": [{"feature": "PAY_AMT1", "text": "Pay NT$ 5,000 more last month"}],
        }
    )
    path = [None] * len(table)
    path[i] = json.dumps(
        [
            {
                "feature": "PAY_0",
                "condition": "Repayment status last month is '2 months late' or worse",
                "value_text": "2 months late",
            }
        ]
    )
    table = table.assign(
        **extra, shap_base=0.22, reasons=reasons, counterfactual=cf, surrogate_path=path, stability=0.75
    )
    O.write_parquet(run_dir / O.APPLICANTS, table)
    with serving(run_dir) as base, httpx.Client(timeout=HTTP_TIMEOUT, base_url=base, auth=ANA) as c:
        page = c.get(f"/applicants/{int(table['id'].iloc[i])}").text
    assert "Repayment status last month: 2 months late" in page
    assert "Pay NT$ 5,000 more last month" in page and "31.0%" in page
    assert "+21.0 pts" in page and "-4.0 pts" in page and "+0.100" in page
    assert "2 months late" in page and "75%" in page
    assert "Not computed in this run" not in page


def test_review_command_refuses_to_start_without_a_key(run_dir, tmp_path, capsys):
    assert cli_main(["review", "--run", str(run_dir), "--keystore", str(tmp_path / "no-keys")]) == 2
    err = capsys.readouterr().err
    assert "no signing key in" in err and "credit-audit keys init" in err and "--unsigned" in err
    assert not (tmp_path / "no-keys").exists()  # refused before anything (a users database) is made there


def test_review_command_refuses_non_loopback(run_dir, capsys):
    assert cli_main(["review", "--run", str(run_dir), "--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err


# ---- real browser ------------------------------------------------------------------
@pytest.mark.browser
def test_browser_walkthrough_and_tampered_log(run_dir, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"Debian Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    flags = _flags(run_dir)
    code = "undocumented_code"
    expected = set(flags.loc[flags["code"] == code, "id"])
    with serving(run_dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(base + "/")
            page.wait_for_url(re.compile(r".*/login\?next=.*"))  # no page without a sign-in
            page.fill("#name", ANA[0])
            page.fill("#password", ANA[1])
            page.click("#sign-in")
            page.wait_for_selector("#signed-in-as")  # the Secure session cookie works on http://127.0.0.1
            page.select_option("#f-code", code)
            page.click("#apply")
            page.wait_for_url(re.compile(r".*code=undocumented_code.*"))
            shown = {int(t.strip("#")) for t in page.locator("#queue tbody a").all_inner_texts()}
            assert shown == expected
            page.screenshot(path=str(tmp_path / "queue.png"))
            target = min(shown)
            page.click(f"text=#{target}")
            page.wait_for_url(re.compile(rf".*/applicants/{target}\?.*"))
            assert page.locator("#no-history").is_visible()
            page.locator("input[name=outcome][value=needs_information]").check()
            page.fill("#reason", "Education code is undocumented; asking the branch to confirm it.")
            page.click("#save")
            page.wait_for_selector("#saved")
            page.reload()
            history = page.locator("#history").inner_text()
            assert "ana.analyst (analyst)" in history and "Education code is undocumented" in history
            assert "Needs more information" in history
            page.screenshot(path=str(tmp_path / "applicant.png"), full_page=True)
        finally:
            browser.close()

    assert verify_run(run_dir).ok
    trail = run_dir / "review" / "trail.jsonl"
    trail.write_text(trail.read_text().replace("ana.analyst", "someone.else"))
    report = verify_run(run_dir)
    assert not report.ok and any("altered" in p for p in report.problems)
    assert cli_main(["verify", "--run", str(run_dir)]) == 1


def test_review_command_signs_in_with_the_users_database(run_dir, tmp_path, monkeypatch):
    """`credit-audit review` reads the accounts of `credit-audit users`; SSO headers are not spoofable through it."""
    users = f"sqlite:///{tmp_path / 'users.sqlite'}"
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli_main(["users", "add", "ana.analyst", "--role", "analyst", "--password-stdin", "--users-db", users]) == 0
    port = _free_port()
    cmd = [sys.executable, "-m", "flows.cli", "review", "--run", str(run_dir), "--port", str(port),
           "--users-db", users, "--trusted-proxy", "10.9.9.9"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=Path(__file__).resolve().parents[1]
    )
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("Review app for run") and f"http://127.0.0.1:{port}/" in lines[0]
        assert "Accounts (1 enabled)" in lines[1] and "users.sqlite" in lines[1]
        assert "X-Remote-User is trusted from 10.9.9.9 only" in lines[2]
        target = int(_flags(run_dir)["id"].iloc[0])
        body = {"outcome": "confirm", "reason": REASON}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT) as c:
            deadline = time.monotonic() + 60
            while True:
                try:
                    c.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the review command did not start listening"
                    time.sleep(0.2)
            path = f"/api/applicants/{target}/reviews"
            assert c.post(path, json=body, auth=("ana.analyst", "x" * 20)).status_code == 401
            # uvicorn would believe X-Forwarded-For from loopback and report the proxy as the client: not here
            spoof = {"X-Forwarded-For": "10.9.9.9", "X-Remote-User": "ana.analyst"}
            assert c.post(path, json=body, headers=spoof).status_code == 403
            assert c.post(path, json=body, auth=ANA).status_code == 201
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
    assert verify_run(run_dir).ok


# ---- request body cap ----------------------------------------------------------------
BIG = 200_000_000  # what the adversarial pass sent; it raised the server by ~500 MB


def _post_raw(port: int, path: str, headers: dict[str, str], chunks: int = 0, chunk: int = 16_384) -> tuple[int, int]:
    """POST over a raw socket (so nothing is buffered client-side): (status, body bytes sent before the answer).

    With `chunks`, the body is sent chunked, one chunk at a time, stopping as soon as the server answers.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode())
        sent, data = 0, b"x" * chunk
        for _ in range(chunks):
            if select.select([sock], [], [], 0)[0]:
                break  # answered
            try:
                sock.sendall(f"{chunk:x}\r\n".encode() + data + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += chunk
        response = b""
        try:
            while b"\r\n" not in response:
                got = sock.recv(65536)
                if not got:
                    break
                response += got
        except ConnectionResetError:
            pass
    return int(response.split(b" ", 2)[1]), sent


def test_oversized_bodies_are_refused_before_reading_or_authentication(url, run_dir):
    target = int(_flags(run_dir)["id"].iloc[0])
    port = int(url.rsplit(":", 1)[1])
    path = f"/api/applicants/{target}/reviews"
    json_type = {"Content-Type": "application/json"}
    # A declared length over the cap: 413 at once, with no body sent and no account given (not 401).
    started = time.monotonic()
    assert _post_raw(port, path, json_type | {"Content-Length": str(BIG)}) == (413, 0)
    assert time.monotonic() - started < 10
    # A chunked body: counted as it streams, refused soon after the cap (what was sent before the answer
    # arrived sits mostly in the kernel's socket buffers, up to tcp_rmem + tcp_wmem, not in the server).
    status, sent = _post_raw(port, path, json_type | {"Transfer-Encoding": "chunked"}, chunks=BIG // 16_384)
    assert status == 413 and sent < BIG // 4
    form = f"/applicants/{target}/reviews"
    assert _post_raw(port, form, {"Content-Type": "application/x-www-form-urlencoded",
                                  "Content-Length": str(MAX_BODY_BYTES + 1)})[0] == 413
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url, auth=ANA) as c:
        too_big = c.post(path, json={"outcome": "confirm", "reason": "x" * MAX_BODY_BYTES})
        assert too_big.status_code == 413 and too_big.text == MSG_BODY_TOO_LARGE.format(limit=MAX_BODY_BYTES)
        body = {"outcome": "confirm", "reason": "é" * 2000}  # the longest reason accepted
        assert c.post(path, json=body).status_code == 201
        assert len(c.get("/api/reviews").json()) == 1


def _memory_kib(pid: int) -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads process memory from /proc")
def test_oversized_bodies_do_not_raise_the_servers_memory(run_dir):
    """`credit-audit review` offered 200 MB twice (declared, then chunked) stays within a few MB of its peak so far."""
    port = _free_port()
    cmd = [sys.executable, "-m", "flows.cli", "review", "--run", str(run_dir), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT) as c:
            deadline = time.monotonic() + 120
            while True:
                try:
                    c.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and proc.poll() is None, "the review command did not start"
                    time.sleep(0.2)
        before = _memory_kib(proc.pid)
        path = f"/api/applicants/{int(_flags(run_dir)['id'].iloc[0])}/reviews"
        assert _post_raw(port, path, {"Content-Length": str(BIG)})[0] == 413
        assert _post_raw(port, path, {"Transfer-Encoding": "chunked"}, chunks=BIG // 65_536, chunk=65_536)[0] == 413
        after = _memory_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
    grown = (after["VmHWM"] - before["VmHWM"]) / 1024
    print(f"\nreview server memory: peak {before['VmHWM'] / 1024:.0f} MiB before, {after['VmHWM'] / 1024:.0f} MiB "
          f"after two 200 MB bodies (+{grown:.1f} MiB); resident {after['VmRSS'] / 1024:.0f} MiB")
    assert grown < 32
