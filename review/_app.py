"""The review web app: sign-in, queue, applicant page, review and approval forms, CSV export and a JSON API.

`create_app(run_dir, accounts)` builds the FastAPI app over one run; `serve`
(in _server.py) runs it. Every page and every API call needs an identity
(_auth.py: session cookie from /login, HTTP Basic, or the SSO header from a
trusted proxy); the role decides what may be written (analysts propose,
approvers also approve, auditors read) and the store enforces four eyes.
Pages are Jinja2 templates from review/templates/ (package data) with
autoescape on; view dicts come from _views.py. Request bodies are capped
(_body_limit.py) outside every other layer, and the signing key is resolved
when the app is built: an app that could not sign a review refuses to start
rather than to save.
"""

from __future__ import annotations

import secrets
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

import jinja2
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from pipeline.signing import Signer

from ._accounts import SESSION_TTL, Account, AccountError, AccountStore, LockedOut, users_db_url
from ._auth import MSG_LOGIN, SESSION_COOKIE, Auth, LoginRequired, approver, current_user, parse_proxies, proposer
from ._body_limit import MAX_BODY_BYTES, BodyLimit
from ._export import reviews_csv
from ._queue import QueueQuery
from ._queue_routes import Query, QueueDesk, add_queue_routes
from ._reissue import NoticeReissuer, ReissueError, current_review, reviewed_decision, served_notice
from ._run import ReviewRun, load_review_run
from ._security import CSP, CSRF_COOKIE, MSG_HOST, NOTICE_CSP, Guard
from ._store import Review, ReviewConflict, ReviewRefused, ReviewStore, ReviewValidationError
from ._views import applicant_view

TEMPLATES = Path(resources.files(__package__).joinpath("templates"))  # package data, a folder once installed
MSG_NOT_REISSUED = "the review was not saved: its notice could not be re-issued ({why})"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return env


class ReviewIn(BaseModel):
    """A review posted to the JSON API (lengths capped here; the store applies the real rules)."""

    outcome: str = Field(max_length=40)
    reason: str = Field(max_length=4000)
    seen_seq: int | None = Field(default=None, ge=0)


class DecisionIn(BaseModel):
    """An approval or a rejection posted to the JSON API."""

    reason: str = Field(max_length=4000)


def _local_path(target: str | None) -> str:
    """Where to go after sign-in: a path of this app only (never `//host` or a full URL: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target):  # browsers drop tabs and newlines: "/\t/evil"
        return "/"
    return target


def _review_json(r: Review) -> dict:
    return {**r.record(), "seq": r.seq, "entry_hash": r.entry_hash, "final_decision": r.final_decision}


def _state_json(store: ReviewStore, applicant_id: int) -> dict:
    state = store.state(applicant_id)
    return {
        "decision_in_effect": state.final_decision if state.in_effect else None,
        "in_effect": state.in_effect.seq if state.in_effect else None,
        "approved_by": state.approval.reviewer if state.approval else None,
        "pending": sorted(state.pending),
        "status": {str(k): v for k, v in sorted(state.status.items())},
    }


def create_app(
    run_dir: str | Path,
    accounts: AccountStore | None = None,
    db_url: str | None = None,
    run: ReviewRun | None = None,
    signer: Signer | None = None,
    unsigned: bool = False,
    keystore: str | Path | None = None,
    max_body: int = MAX_BODY_BYTES,
    users_db: str | None = None,
    trusted_proxies: list[str] | tuple[str, ...] = (),
    public_url: str | None = None,
) -> FastAPI:
    """The app over one run directory: `accounts` (else the users database) say who may sign in.

    `signer` (else the keystore's key) signs every review. `trusted_proxies` turns the SSO
    mode on (the X-Remote-User header is believed from those addresses only); `public_url`
    is the address the proxy serves the app under (its Host and Origin are then accepted).
    """
    proxies = parse_proxies(trusted_proxies)
    run = run or load_review_run(run_dir)
    store = ReviewStore(run.path, db_url=db_url, run_id=run.run_id, signer=signer, unsigned=unsigned, keystore=keystore,
                        on_effect=NoticeReissuer(run.report_run()))  # a decision that takes effect re-issues the notice
    try:
        store.prepare_writes()  # NoSigningKey / TrailKeyError now, not at the first save
        accounts = accounts or AccountStore(users_db_url(users_db, db_url, keystore))
    except BaseException:
        store.close()
        raise
    guard = Guard(public_url)
    auth = Auth(accounts, proxies)
    env = _env()
    app = FastAPI(title=f"credit-audit review: {run.run_id}", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.run, app.state.store, app.state.auth = run, store, auth

    @app.middleware("http")
    async def protect(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette middleware
        if not guard.host_ok(request):
            return PlainTextResponse(MSG_HOST.format(host=request.headers.get("host")), status_code=400)
        try:
            request.state.account = auth.identify(request)
        except HTTPException as exc:
            return PlainTextResponse(str(exc.detail), status_code=exc.status_code)
        cookie = request.cookies.get(CSRF_COOKIE)
        request.state.csrf = cookie or secrets.token_urlsafe(24)
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Cache-Control", "no-store")
        if not cookie:
            response.set_cookie(CSRF_COOKIE, request.state.csrf, httponly=True, samesite="strict", secure=True,
                                path="/")
        return response

    @app.exception_handler(ReissueError)
    async def reissue_failed(_request: Request, exc: ReissueError):  # noqa: ANN202 - Starlette handler
        """Any write whose decision took effect but whose notice could not be re-issued: nothing was saved."""
        return JSONResponse({"detail": MSG_NOT_REISSUED.format(why=exc)}, status_code=503)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired):  # noqa: ANN202 - Starlette handler
        if request.method == "GET" and not request.url.path.startswith("/api/"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return JSONResponse({"detail": MSG_LOGIN}, status_code=401)

    def page(request: Request, name: str, status: int = 200, **ctx: object) -> HTMLResponse:
        user = getattr(request.state, "account", None)
        html = env.get_template(name).render(user=user, csrf=request.state.csrf, **ctx)
        return HTMLResponse(html, status_code=status)

    checked_form = guard.check_form

    def checked_api(request: Request) -> None:
        problem = guard.origin_problem(request, required=False)
        if problem:
            raise HTTPException(403, problem)

    # ---- sign-in -------------------------------------------------------------------
    def login_page(request: Request, next_path: str, status: int = 200, error: str | None = None) -> HTMLResponse:
        return page(request, "login.html.j2", status=status, view={"run_id": run.run_id}, next=next_path, error=error)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/"):  # noqa: A002 - the query parameter's name
        if request.state.account is not None:
            return RedirectResponse(_local_path(next), status_code=303)
        return login_page(request, _local_path(next))

    @app.post("/login")
    def login(
        request: Request,
        name: Annotated[str, Form(max_length=200)] = "",
        password: Annotated[str, Form(max_length=2000)] = "",
        csrf_token: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002 - the form field's name
    ):
        checked_form(request, csrf_token)
        target = _local_path(next)
        try:
            account = accounts.authenticate(name, password, auth.client_address(request))
        except LockedOut as exc:
            return login_page(request, target, status=429, error=str(exc))
        except AccountError as exc:
            return login_page(request, target, status=401, error=str(exc))
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, accounts.open_session(account), max_age=int(SESSION_TTL.total_seconds()),
                            httponly=True, secure=True, samesite="strict", path="/")
        return response

    @app.post("/logout")
    def logout(request: Request, csrf_token: Annotated[str, Form(max_length=100)] = ""):
        checked_form(request, csrf_token)
        accounts.close_session(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    # ---- pages ---------------------------------------------------------------------
    desk = QueueDesk(run, store, guard, TEMPLATES)
    app.state.desk = desk
    add_queue_routes(app, desk, page)

    def known(applicant_id: int) -> None:
        if applicant_id not in run.applicants.index:
            raise HTTPException(404, f"applicant {applicant_id} is not in run {run.run_id}")

    def applicant_page(
        request: Request,
        applicant_id: int,
        status: int = 200,
        errors: dict | None = None,
        entered: dict | None = None,
        saved: int | None = None,
        concurrent: list | None = None,
        q: QueueQuery | None = None,
        done: int | None = None,
    ):
        history = store.history(applicant_id)
        view = applicant_view(run, applicant_id, history)
        return page(
            request,
            "applicant.html.j2",
            status=status,
            view=view,
            state=store.state(applicant_id),
            seen_seq=history[-1].seq if history else 0,
            errors=errors or {},
            entered=entered or {},
            saved=saved,
            concurrent=concurrent or [],
            queue=desk.context(request, applicant_id, q or QueueQuery()),
            done=done,
        )

    @app.get("/applicants/{applicant_id}", response_class=HTMLResponse)
    def applicant(
        request: Request,
        applicant_id: int,
        q: Query,
        user: Annotated[Account, Depends(current_user)],
        saved: int | None = None,
        done: int | None = None,
    ):
        known(applicant_id)
        return applicant_page(request, applicant_id, saved=saved, q=q, done=done)

    def refused_page(request: Request, applicant_id: int, exc: Exception, entered: dict,
                     q: QueueQuery | None = None) -> HTMLResponse:
        if isinstance(exc, ReviewValidationError):
            return applicant_page(request, applicant_id, status=422, errors=exc.errors, entered=entered, q=q)
        status, field = (403, "permission") if isinstance(exc, ReviewRefused) else (409, "conflict")
        return applicant_page(request, applicant_id, status=status, errors={field: str(exc)}, entered=entered, q=q)

    @app.post("/applicants/{applicant_id}/reviews")
    def submit(
        request: Request,
        applicant_id: int,
        q: Query,
        user: Annotated[Account, Depends(current_user)],
        outcome: Annotated[str, Form(max_length=40)] = "",
        reason: Annotated[str, Form(max_length=4000)] = "",
        csrf_token: Annotated[str, Form(max_length=100)] = "",
        seen_seq: Annotated[int, Form(ge=0)] = 0,
        then: Annotated[str, Form(max_length=10)] = "stay",
    ):
        checked_form(request, csrf_token)
        known(applicant_id)
        entered = {"outcome": outcome, "reason": reason}
        held = desk.check_claim(applicant_id, user.name)
        if held:
            return applicant_page(request, applicant_id, status=409, errors={"claim": held}, entered=entered, q=q)
        decision = str(run.row(applicant_id)["decision"])
        try:
            saved = store.save(applicant_id, decision, outcome, reason, user, seen_seq=seen_seq)
        except (ReviewValidationError, ReviewRefused, ReviewConflict) as exc:
            return refused_page(request, applicant_id, exc, entered, q)
        return RedirectResponse(desk.after_save(applicant_id, user.name, q, then, saved.seq), status_code=303)

    def decision_form(request: Request, seq: int, user: Account, reason: str, csrf_token: str, approve: bool):
        checked_form(request, csrf_token)
        target = store.review(seq)  # one row, not the whole trail
        if target is None:
            raise HTTPException(404, f"there is no review #{seq} in run {run.run_id}")
        try:
            saved = (store.approve if approve else store.reject)(seq, reason, user)
        except (ReviewValidationError, ReviewRefused, ReviewConflict) as exc:
            return refused_page(request, target.applicant_id, exc, {"decision_reason": reason})
        return RedirectResponse(f"/applicants/{target.applicant_id}?saved={saved.seq}", status_code=303)

    @app.post("/reviews/{seq}/{verb}")
    def decision_form_post(
        request: Request,
        seq: int,
        verb: Literal["approve", "reject"],
        user: Annotated[Account, Depends(current_user)],
        reason: Annotated[str, Form(max_length=4000)] = "",
        csrf_token: Annotated[str, Form(max_length=100)] = "",
    ):
        return decision_form(request, seq, user, reason, csrf_token, approve=verb == "approve")

    @app.get("/notices/{applicant_id}.pdf")
    def notice_pdf(applicant_id: int, user: Annotated[Account, Depends(current_user)]):
        known(applicant_id)
        path = served_notice(run.path, store.history(applicant_id)) or run.notice_pdf(applicant_id)  # the latest version
        if path is None:
            raise HTTPException(404, f"no notice was written for applicant {applicant_id} in this run")
        return FileResponse(path, media_type="application/pdf", filename=path.name)

    @app.get("/notices/{applicant_id}.html", response_class=HTMLResponse)
    def notice_html(applicant_id: int, user: Annotated[Account, Depends(current_user)]):
        known(applicant_id)
        current = current_review(store.history(applicant_id))  # re-issued after review: that version
        try:
            shown = current is not None or run.row(applicant_id)["decision"] == "decline"
            html = run.notice_html(applicant_id, reviewed_decision(current) if current else None) if shown else None
        except (KeyError, ValueError, FileNotFoundError) as exc:
            raise HTTPException(503, f"the notice could not be rendered for this run: {exc}") from exc
        if html is None:
            raise HTTPException(404, f"no HTML notice is available for applicant {applicant_id}")
        return HTMLResponse(html, headers={"Content-Security-Policy": NOTICE_CSP})

    @app.get("/report.pdf")
    def report_pdf(user: Annotated[Account, Depends(current_user)]):
        path = run.report_pdf()
        if path is None:
            raise HTTPException(404, "this run has no global report yet")
        return FileResponse(path, media_type="application/pdf", filename=path.name)

    @app.get("/export/reviews.csv")
    def export_csv(user: Annotated[Account, Depends(current_user)]):
        probabilities = run.applicants["probability"].to_dict()
        body = reviews_csv(store.all(), probabilities)
        name = f"reviews_{run.run_id}.csv"
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.get("/static/review.css")
    def css():
        return FileResponse(TEMPLATES / "review.css", media_type="text/css")

    @app.get("/healthz")
    def healthz():
        return {"ok": True, "run_id": run.run_id}

    # ---- JSON API (the same accounts: HTTP Basic, the session, or SSO) -------------------
    @app.get("/api/me")
    def api_me(user: Annotated[Account, Depends(current_user)]):
        return {"name": user.name, "role": str(user.role)}

    @app.get("/api/applicants/{applicant_id}")
    def api_applicant(applicant_id: int, user: Annotated[Account, Depends(current_user)]):
        known(applicant_id)
        row = run.row(applicant_id)
        return {
            "id": applicant_id,
            "probability": float(row["probability"]),
            "decision": str(row["decision"]),
            "flags": [{"code": f.code, "reason": f.reason} for f in run.flags_of(applicant_id).itertuples()],
            "reviews": [_review_json(r) for r in store.history(applicant_id)],
            **_state_json(store, applicant_id),
        }

    @app.get("/api/reviews")
    def api_reviews(user: Annotated[Account, Depends(current_user)]):
        return [_review_json(r) for r in store.all()]

    def api_refusal(exc: Exception) -> JSONResponse:
        if isinstance(exc, ReviewValidationError):
            return JSONResponse({"detail": exc.errors}, status_code=422)
        return JSONResponse({"detail": str(exc)}, status_code=403 if isinstance(exc, ReviewRefused) else 409)

    @app.post("/api/applicants/{applicant_id}/reviews", status_code=201)
    def api_submit(request: Request, applicant_id: int, body: ReviewIn, user: Annotated[Account, Depends(proposer)]):
        checked_api(request)
        known(applicant_id)
        held = desk.check_claim(applicant_id, user.name)
        if held:
            return JSONResponse({"detail": {"claim": held}}, status_code=409)
        decision = str(run.row(applicant_id)["decision"])
        try:
            saved = store.save(applicant_id, decision, body.outcome, body.reason, user, seen_seq=body.seen_seq)
        except (ReviewValidationError, ReviewRefused, ReviewConflict) as exc:
            return api_refusal(exc)
        desk.claims.release(applicant_id, user.name)
        return _review_json(saved) | _state_json(store, applicant_id)

    @app.post("/api/reviews/{seq}/approve", status_code=201)
    def api_approve(request: Request, seq: int, body: DecisionIn, user: Annotated[Account, Depends(approver)]):
        checked_api(request)
        try:
            saved = store.approve(seq, body.reason, user)
        except (ReviewValidationError, ReviewRefused, ReviewConflict) as exc:
            return api_refusal(exc)
        return _review_json(saved) | _state_json(store, saved.applicant_id)

    @app.post("/api/reviews/{seq}/reject", status_code=201)
    def api_reject(request: Request, seq: int, body: DecisionIn, user: Annotated[Account, Depends(approver)]):
        checked_api(request)
        try:
            saved = store.reject(seq, body.reason, user)
        except (ReviewValidationError, ReviewRefused, ReviewConflict) as exc:
            return api_refusal(exc)
        return _review_json(saved) | _state_json(store, saved.applicant_id)

    app.add_middleware(BodyLimit, max_bytes=max_body)  # added last: the outermost layer, before Host or identity
    return app
