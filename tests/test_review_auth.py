"""The review app's identities: sign-in, session cookies, CSRF, roles and four eyes over HTTP, SSO behind a proxy.

Driven in process through Starlette's TestClient over the real run of
tests/test_review_app.py (300 real applicants scored by the session's model),
so the client address can be set: SSO trusts a header from one address only.
"""

from __future__ import annotations

import re
import shutil
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from argon2 import PasswordHasher
from test_review_app import built_run  # noqa: F401 - the module's run fixture, shared

from review import AccountStore, create_app, verify_run
from review._accounts import MSG_SIGN_IN, SESSION_TTL
from review._auth import MSG_UNTRUSTED_HEADER, SESSION_COOKIE
from review._store import MSG_SELF_APPROVAL

with warnings.catch_warnings():  # Starlette 1.x would rather use httpx2, which is not installed; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = [
    pytest.mark.slow,  # the run needs the session's model fitted on the real data
    pytest.mark.filterwarnings("ignore::starlette.exceptions.StarletteDeprecationWarning"),
]

BASE = "https://127.0.0.1"  # Secure cookies travel over https only (browsers also accept them from localhost)
PASSWORD = "correct horse battery staple"
REASON = "Income proof received after the decision."
OK = "Checked the proof with the branch: agreed."
PROXY = "10.0.0.1"
FORGED_APPROVAL = """seq => {
  const form = Object.assign(document.createElement("form"), {method: "post", action: `/reviews/${seq}/approve`});
  const fields = {reason: "Approving my own override.", csrf_token: document.querySelector("input[name=csrf_token]").value};
  for (const [name, value] of Object.entries(fields)) {
    form.appendChild(Object.assign(document.createElement("input"), {type: "hidden", name, value}));
  }
  document.body.appendChild(form);
  form.submit();
}"""


@pytest.fixture
def accounts(tmp_path: Path):
    store = AccountStore(f"sqlite:///{tmp_path / 'users.sqlite'}",
                         hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    for name, role in (("ana", "analyst"), ("ali", "analyst"), ("bo", "approver"), ("cy", "approver"),
                       ("aud", "auditor")):
        store.add(name, role, PASSWORD)
    yield store
    store.close()


@pytest.fixture
def run_dir(built_run: Path, tmp_path: Path) -> Path:  # noqa: F811 - the imported fixture
    return Path(shutil.copytree(built_run, tmp_path / "run"))


@pytest.fixture
def app(run_dir, accounts):
    app = create_app(run_dir, accounts=accounts, trusted_proxies=[PROXY])
    yield app
    app.state.store.close()


def client(app, address: str = "192.0.2.10", **kw) -> TestClient:  # noqa: ANN001, ANN003
    return TestClient(app, base_url=BASE, client=(address, 50000), follow_redirects=False, **kw)


def csrf_of(c: TestClient, path: str = "/login") -> str:
    page = c.get(path)
    assert page.status_code == 200, page.status_code
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_in(c: TestClient, name: str, password: str = PASSWORD, next_path: str = "/"):  # noqa: ANN201
    form = {"name": name, "password": password, "csrf_token": csrf_of(c), "next": next_path}
    return c.post("/login", data=form, headers={"Origin": BASE})


def declined(app) -> int:  # noqa: ANN001
    flags, table = app.state.run.flags, app.state.run.applicants
    return int(next(i for i in flags["id"] if table.loc[i, "decision"] == "decline"))


def propose(c: TestClient, applicant: int, outcome: str, seen: int = 0):  # noqa: ANN201
    form = {"outcome": outcome, "reason": REASON, "csrf_token": csrf_of(c, f"/applicants/{applicant}"),
            "seen_seq": str(seen)}
    return c.post(f"/applicants/{applicant}/reviews", data=form, headers={"Origin": BASE})


def decide(c: TestClient, seq: int, applicant: int, verb: str = "approve"):  # noqa: ANN201
    form = {"reason": OK, "csrf_token": csrf_of(c, f"/applicants/{applicant}")}
    return c.post(f"/reviews/{seq}/{verb}", data=form, headers={"Origin": BASE})


# ---- no identity, no access ------------------------------------------------------------
def test_every_page_and_call_needs_a_sign_in(app):
    target = declined(app)
    with client(app) as c:
        for path in ("/", f"/applicants/{target}", "/export/reviews.csv", f"/notices/{target}.pdf", "/report.pdf"):
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2F"), path
        for path in ("/api/queue", "/api/reviews", f"/api/applicants/{target}", "/api/me"):
            assert c.get(path).status_code == 401, path
        body = {"outcome": "confirm", "reason": REASON}
        assert c.post(f"/api/applicants/{target}/reviews", json=body).status_code == 401
        form = {"outcome": "confirm", "reason": REASON, "reviewer": "Ana Analyst", "csrf_token": csrf_of(c)}
        assert c.post(f"/applicants/{target}/reviews", data=form, headers={"Origin": BASE}).status_code == 401
        assert c.post("/reviews/1/approve", data={"reason": OK, "csrf_token": csrf_of(c)},
                      headers={"Origin": BASE}).status_code == 401
        assert c.get("/healthz").status_code == 200 and c.get("/login").status_code == 200
    assert app.state.store.all() == []


# ---- sign-in and sessions ----------------------------------------------------------------
def test_sign_in_sets_a_secure_httponly_strict_cookie_with_expiry(app):
    with client(app) as c:
        r = sign_in(c, "Ana", next_path="/?state=unreviewed")
        assert r.status_code == 303 and r.headers["location"] == "/?state=unreviewed"
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "="))
        flags = {p.strip().split("=")[0].lower(): p.strip() for p in cookie.split(";")}
        assert {"secure", "httponly", "path", "max-age", "samesite"} <= set(flags)
        assert flags["samesite"].lower() == "samesite=strict"
        assert flags["max-age"].lower() == f"max-age={int(SESSION_TTL.total_seconds())}"
        page = c.get("/")
        assert page.status_code == 200 and "ana (analyst)" in page.text
        assert c.get("/api/me").json() == {"name": "ana", "role": "analyst"}


def test_sign_in_failures_are_generic_then_locked_out(app, accounts):
    with client(app) as c:
        for name, password in (("ana", "wrong password!"), ("nobody", PASSWORD)):
            r = sign_in(c, name, password)
            assert r.status_code == 401 and MSG_SIGN_IN in r.text and SESSION_COOKIE not in r.headers.get("set-cookie", "")
        for _ in range(4):  # five failures for ana in all
            assert sign_in(c, "ana", "wrong password!").status_code == 401
        locked = sign_in(c, "ana")  # the right password, after five failures
        assert locked.status_code == 429 and "too many failed sign-ins" in locked.text
        assert c.get("/").status_code == 303
    with client(app, address="192.0.2.99") as other:  # the account is locked wherever the attempt comes from
        assert sign_in(other, "ana").status_code == 429
        assert sign_in(other, "ali").status_code == 303


def test_sign_in_needs_csrf_and_origin(app):
    with client(app) as c:
        csrf = csrf_of(c)
        form = {"name": "ana", "password": PASSWORD, "next": "/"}
        assert c.post("/login", data=form | {"csrf_token": csrf}).status_code == 403  # no Origin
        assert c.post("/login", data=form | {"csrf_token": csrf}, headers={"Origin": "https://evil.test"}).status_code == 403
        assert c.post("/login", data=form | {"csrf_token": "forged"}, headers={"Origin": BASE}).status_code == 403
        assert c.get("/").status_code == 303


@pytest.mark.parametrize("target", ["//evil.test/", "https://evil.test/", "/\\evil.test", "javascript:alert(1)",
                                    "/\t/evil.test", "/\n/evil.test"])
def test_no_open_redirect_after_sign_in(app, target):
    with client(app) as c:
        r = sign_in(c, "ana", next_path=target)
        assert r.status_code == 303 and r.headers["location"] == "/"


def test_sign_out_ends_the_session_on_the_server(app):
    with client(app) as c:
        token = sign_in(c, "ana").cookies[SESSION_COOKIE]
        csrf = csrf_of(c, "/")
        out = c.post("/logout", data={"csrf_token": csrf}, headers={"Origin": BASE})
        assert out.status_code == 303 and out.headers["location"] == "/login"
    with client(app, cookies={SESSION_COOKIE: token}) as replay:  # the old cookie, replayed
        assert replay.get("/").status_code == 303
        assert replay.get("/api/me").status_code == 401


def test_an_expired_session_is_refused(app, accounts):
    old = accounts.open_session(accounts.get("ana"), now=datetime.now(UTC) - SESSION_TTL)
    with client(app, cookies={SESSION_COOKIE: old}) as c:
        assert c.get("/api/me").status_code == 401
    fresh = accounts.open_session(accounts.get("ana"))
    with client(app, cookies={SESSION_COOKIE: fresh}) as c:
        assert c.get("/api/me").status_code == 200
        accounts.disable("ana")
        assert c.get("/api/me").status_code == 401  # disabled: its sessions end at once


def test_csrf_and_origin_are_still_enforced_when_signed_in(app):
    target = declined(app)
    with client(app) as c:
        sign_in(c, "ana")
        csrf = csrf_of(c, f"/applicants/{target}")
        form = {"outcome": "confirm", "reason": REASON, "csrf_token": csrf}
        path = f"/applicants/{target}/reviews"
        assert c.post(path, data=form).status_code == 403
        assert c.post(path, data=form, headers={"Origin": "https://evil.test"}).status_code == 403
        assert c.post(path, data=form | {"csrf_token": "forged"}, headers={"Origin": BASE}).status_code == 403
        assert app.state.store.all() == []
        assert c.post(path, data=form, headers={"Origin": BASE}).status_code == 303


# ---- roles and four eyes over HTTP ------------------------------------------------------------
def test_override_needs_a_second_approver_and_self_approval_is_refused(app, run_dir):
    target = declined(app)
    with client(app) as ana, client(app) as bo, client(app) as cy:
        sign_in(ana, "ana"), sign_in(bo, "bo"), sign_in(cy, "cy")
        r = propose(ana, target, "override_approve")
        assert r.status_code == 303
        page = ana.get(r.headers["location"]).text
        assert "awaiting approval by a second person" in page and 'id="pending-1"' in page
        assert 'action="/reviews/1/approve"' not in page  # an analyst is offered no approval
        assert decide(ana, 1, target).status_code == 403  # and cannot approve by posting anyway

        mine = propose(bo, target, "override_approve", seen=1)  # an approver's own override
        assert mine.status_code == 303
        refused = decide(bo, 2, target)
        assert refused.status_code == 403
        assert MSG_SELF_APPROVAL.format(seq=2, name="bo") in refused.text.replace("&#39;", "'")

        assert decide(bo, 1, target).status_code == 303  # bo approves ana's
        assert decide(cy, 2, target, "reject").status_code == 303  # cy turns bo's down
        state = app.state.store.state(target)
        assert state.final_decision == "approve" and state.approval.reviewer == "bo" and not state.pending
        page = cy.get(f"/applicants/{target}").text
        assert "ana, approved by bo" in page and "rejected by cy" in page
    entries = app.state.store.trail.entries()
    assert [(e.record["reviewer"], e.record["role"], e.record["action"]) for e in entries] == [
        ("ana", "analyst", "propose"), ("bo", "approver", "propose"), ("bo", "approver", "approve"),
        ("cy", "approver", "reject"),
    ]
    assert verify_run(run_dir).ok


def test_a_typed_reviewer_field_is_ignored(app):
    target = declined(app)
    with client(app) as c:
        sign_in(c, "ana")
        form = {"outcome": "confirm", "reason": REASON, "reviewer": "Bo Boss", "csrf_token": csrf_of(c, "/")}
        assert c.post(f"/applicants/{target}/reviews", data=form, headers={"Origin": BASE}).status_code == 303
    assert [r.reviewer for r in app.state.store.all()] == ["ana"]


def test_auditor_reads_but_cannot_write(app):
    target = declined(app)
    with client(app) as c:
        sign_in(c, "aud")
        page = c.get(f"/applicants/{target}")
        assert page.status_code == 200 and 'id="read-only"' in page.text and 'id="review-form"' not in page.text
        assert propose(c, target, "confirm").status_code == 403
        assert c.get("/export/reviews.csv").status_code == 200
    with client(app) as api:
        r = api.post(f"/api/applicants/{target}/reviews", json={"outcome": "confirm", "reason": REASON},
                     auth=("aud", PASSWORD))
        assert r.status_code == 403
    assert app.state.store.all() == []


def test_a_stale_page_shows_the_newer_reviews_instead_of_saving(app):
    target = declined(app)
    with client(app) as ana, client(app) as ali:
        sign_in(ana, "ana"), sign_in(ali, "ali")
        csrf = csrf_of(ana, f"/applicants/{target}")  # ana opens the page (seen_seq 0) ...
        assert propose(ali, target, "override_approve").status_code == 303  # ... ali saves meanwhile
        form = {"outcome": "confirm", "reason": REASON, "csrf_token": csrf, "seen_seq": "0"}
        r = ana.post(f"/applicants/{target}/reviews", data=form, headers={"Origin": BASE})
        assert r.status_code == 409 and "saved since you opened the page (#1)" in r.text and "pending-1" in r.text
    assert len(app.state.store.all()) == 1


def test_api_uses_the_same_accounts(app, run_dir):
    target = declined(app)
    body = {"outcome": "override_approve", "reason": REASON}
    with client(app) as c:
        assert c.post(f"/api/applicants/{target}/reviews", json=body, auth=("ana", "wrong password!")).status_code == 401
        saved = c.post(f"/api/applicants/{target}/reviews", json=body, auth=("ana", PASSWORD))
        assert saved.status_code == 201
        assert saved.json()["pending"] == [saved.json()["seq"]] and saved.json()["decision_in_effect"] is None
        seq = saved.json()["seq"]
        waiting = c.get("/api/queue", params={"state": "pending_approval"}, auth=("aud", PASSWORD)).json()
        assert [r["id"] for r in waiting] == [target]
        assert c.post(f"/api/reviews/{seq}/approve", json={"reason": OK}, auth=("ali", PASSWORD)).status_code == 403
        ok = c.post(f"/api/reviews/{seq}/approve", json={"reason": OK}, auth=("bo", PASSWORD))
        assert ok.status_code == 201 and ok.json()["decision_in_effect"] == "approve"
        again = c.post(f"/api/reviews/{seq}/approve", json={"reason": OK}, auth=("cy", PASSWORD))
        assert again.status_code == 409
        got = c.get(f"/api/applicants/{target}", auth=("aud", PASSWORD)).json()
        assert got["approved_by"] == "bo" and got["in_effect"] == seq
        assert c.get("/api/queue", params={"state": "pending_approval"}, auth=("aud", PASSWORD)).json() == []
        in_effect = c.get("/api/queue", params={"state": "override_approve"}, auth=("aud", PASSWORD)).json()
        assert [r["id"] for r in in_effect] == [target]
    assert verify_run(run_dir).ok


# ---- single sign-on behind a reverse proxy ------------------------------------------------------
def test_sso_header_is_believed_from_the_trusted_proxy_only(app, accounts):
    target = declined(app)
    with client(app, address=PROXY, headers={"X-Remote-User": "Bo"}) as via_proxy:
        page = via_proxy.get("/")
        assert page.status_code == 200 and "bo (approver)" in page.text
        assert propose(via_proxy, target, "confirm").status_code == 303
    assert [(r.reviewer, r.role) for r in app.state.store.all()] == [("bo", "approver")]

    with client(app, address="192.0.2.66", headers={"X-Remote-User": "bo"}) as direct:
        refused = direct.get("/")
        assert refused.status_code == 403
        assert refused.text == MSG_UNTRUSTED_HEADER.format(header="X-Remote-User", address="192.0.2.66")
        assert direct.get("/api/me", auth=("ana", PASSWORD)).status_code == 403  # not even with a password beside it
    with client(app, address="192.0.2.66", headers={"X-Forwarded-For": PROXY, "X-Remote-User": "bo"}) as spoof:
        assert spoof.get("/api/me").status_code == 403  # X-Forwarded-For does not make a proxy
    with client(app, address=PROXY, headers={"X-Remote-User": "nobody"}) as unknown:
        assert unknown.get("/").status_code == 403
    accounts.disable("bo")
    with client(app, address=PROXY, headers={"X-Remote-User": "bo"}) as disabled:
        assert disabled.get("/").status_code == 403
    with client(app, address="192.0.2.66") as plain:  # no header: the ordinary sign-in
        assert plain.get("/").status_code == 303
        assert sign_in(plain, "ana").status_code == 303
    assert len(app.state.store.all()) == 1


def test_without_trusted_proxy_the_header_is_refused_from_everyone(run_dir, accounts):
    app = create_app(run_dir, accounts=accounts)
    try:
        for address in ("127.0.0.1", PROXY):
            with client(app, address=address, headers={"X-Remote-User": "bo"}) as c:
                assert c.get("/api/me").status_code == 403
    finally:
        app.state.store.close()


def test_public_url_of_the_proxy_is_accepted_as_host_and_origin(run_dir, accounts):
    public = "https://review.bank.example"
    app = create_app(run_dir, accounts=accounts, trusted_proxies=[PROXY], public_url=public)
    try:
        with TestClient(app, base_url=public, client=(PROXY, 1), follow_redirects=False,
                        headers={"X-Remote-User": "ana"}) as c:
            target = declined(app)
            csrf = csrf_of(c, f"/applicants/{target}")
            form = {"outcome": "confirm", "reason": REASON, "csrf_token": csrf}
            assert c.post(f"/applicants/{target}/reviews", data=form, headers={"Origin": public}).status_code == 303
            assert c.get("/", headers={"Host": "attacker.test"}).status_code == 400
    finally:
        app.state.store.close()


# ---- in a real browser -----------------------------------------------------------------------------
@pytest.mark.browser
def test_browser_override_waits_for_a_second_approver(run_dir, tmp_path):
    """Chromium over http://127.0.0.1: sign in, propose an override, refuse the self-approval, approve as another."""
    from playwright.sync_api import sync_playwright
    from test_review_app import ACCOUNTS, CHROMIUM, CHROMIUM_ARGS, serving
    from test_review_app import PASSWORD as APP_PASSWORD

    from review._decisions import ST_PENDING

    if not CHROMIUM.exists():
        pytest.skip(f"Debian Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    assert ACCOUNTS["bo"] == "approver"
    with serving(run_dir) as base, sync_playwright() as pw:
        app_accounts = AccountStore(f"sqlite:///{run_dir.parent / 'users.sqlite'}")
        app_accounts.add("cy", "approver", APP_PASSWORD)
        app_accounts.close()
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})

            def sign_in_as(name: str, password: str) -> None:
                page.goto(base + "/")
                page.wait_for_url(re.compile(r".*/login\?next=.*"))
                page.fill("#name", name)
                page.fill("#password", password)
                page.click("#sign-in")
                page.wait_for_selector("#signed-in-as")

            def sign_out() -> None:
                page.click("#sign-out")
                page.wait_for_url(re.compile(r".*/login$"))

            table = pd.read_parquet(run_dir / "applicants.parquet").set_index("id")
            flags = pd.read_parquet(run_dir / "flags.parquet")
            target = int(next(i for i in flags["id"] if table.loc[i, "decision"] == "decline"))

            sign_in_as("bo", APP_PASSWORD)  # an approver proposes an override of their own
            page.goto(f"{base}/applicants/{target}")
            page.locator("input[name=outcome][value=override_approve]").check()
            page.fill("#reason", "Income proof received after the decision; the late payment was a bank error.")
            page.click("#save")
            page.wait_for_selector("#saved")
            assert ST_PENDING in page.locator("#saved").inner_text()
            assert page.locator("#pending-1").is_visible() and page.locator("#approve-1").count() == 0
            assert "another approver must decide it" in page.locator("#pending-1").inner_text()
            page.screenshot(path=str(tmp_path / "pending.png"), full_page=True)
            # the self-approval the page does not offer, forged as a form post from this browser: refused
            page.evaluate(FORGED_APPROVAL, 1)
            page.wait_for_selector("#errors")
            assert MSG_SELF_APPROVAL.format(seq=1, name="bo") in page.locator("#errors").inner_text()
            page.goto(f"{base}/applicants/{target}")
            assert page.locator("#pending-1").is_visible()  # still awaiting a second person
            sign_out()

            sign_in_as("cy", APP_PASSWORD)
            page.goto(f"{base}/applicants/{target}")
            page.fill("#approve-1 textarea[name=reason]", "Bank error confirmed by operations.")
            page.click("#approve-1 button:has-text('Approve #1')")
            page.wait_for_selector("#saved")
            assert "decision now: approve" in page.locator(".verdict").inner_text()
            assert "bo, approved by cy" in page.locator(".verdict").inner_text()
            page.screenshot(path=str(tmp_path / "approved.png"), full_page=True)
            sign_out()
            assert page.context.cookies() and all(c["secure"] and c["httpOnly"] for c in page.context.cookies())
        finally:
            browser.close()
    assert verify_run(run_dir).ok
