"""The review web app: queue, applicant page, review form, CSV export and a small JSON API.

`create_app(run_dir, token)` builds the FastAPI app over one run; `serve`
(in _server.py) runs it on loopback. Pages are Jinja2 templates from
review/templates/ (package data) with autoescape on; view dicts come from _views.py.
Request bodies are capped (_body_limit.py) outside every other layer, and
the signing key is resolved when the app is built: an app that could not
sign a review refuses to start rather than to save.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated

import jinja2
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from pipeline.signing import Signer

from ._body_limit import MAX_BODY_BYTES, BodyLimit
from ._export import reviews_csv
from ._queue import QueueQuery
from ._queue_routes import Query, QueueDesk, add_queue_routes, set_name_cookie
from ._run import ReviewRun, load_review_run
from ._security import AUTH_COOKIE, CSP, CSRF_COOKIE, MSG_CSRF, MSG_HOST, MSG_TOKEN, NOTICE_CSP, TOKEN_HEADER, Guard
from ._store import Review, ReviewStore, ReviewValidationError
from ._views import applicant_view

TEMPLATES = Path(resources.files(__package__).joinpath("templates"))  # package data, a folder once installed


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return env


class ReviewIn(BaseModel):
    """A review posted to the JSON API (lengths capped here; the store applies the real rules)."""

    outcome: str = Field(max_length=40)
    reason: str = Field(max_length=4000)
    reviewer: str = Field(max_length=200)


def _review_json(r: Review) -> dict:
    return {**r.record(), "seq": r.seq, "entry_hash": r.entry_hash, "final_decision": r.final_decision}


def create_app(
    run_dir: str | Path,
    token: str,
    db_url: str | None = None,
    run: ReviewRun | None = None,
    signer: Signer | None = None,
    unsigned: bool = False,
    keystore: str | Path | None = None,
    max_body: int = MAX_BODY_BYTES,
    identity: Callable[[Request], str | None] | None = None,
) -> FastAPI:
    """The app over one run directory; `token` authorises writes, `signer` (else the keystore's key) signs them.

    `identity` names the reviewer of a request (claims, save-and-next); without it, the typed name.
    """
    run = run or load_review_run(run_dir)
    store = ReviewStore(run.path, db_url=db_url, run_id=run.run_id, signer=signer, unsigned=unsigned, keystore=keystore)
    try:
        store.prepare_writes()  # NoSigningKey / TrailKeyError now, not at the first save
    except BaseException:
        store.close()
        raise
    guard = Guard(token)
    env = _env()
    app = FastAPI(title=f"credit-audit review: {run.run_id}", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.run, app.state.store = run, store

    @app.middleware("http")
    async def protect(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette middleware
        if not guard.host_ok(request):
            return PlainTextResponse(MSG_HOST.format(host=request.headers.get("host")), status_code=400)
        cookie = request.cookies.get(CSRF_COOKIE)
        request.state.csrf = cookie or secrets.token_urlsafe(24)
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Cache-Control", "no-store")
        if not cookie:
            response.set_cookie(CSRF_COOKIE, request.state.csrf, httponly=True, samesite="strict", path="/")
        return response

    def page(name: str, status: int = 200, **ctx: object) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status)

    desk = QueueDesk(run, store, guard, TEMPLATES, identity=identity)
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
        view = applicant_view(run, applicant_id, store.history(applicant_id))
        if not entered and desk.who(request):
            entered = {"reviewer": desk.who(request)}
        return page(
            "applicant.html.j2",
            status=status,
            view=view,
            csrf=request.state.csrf,
            errors=errors or {},
            entered=entered or {},
            saved=saved,
            signed_in=guard.signed_in(request),
            concurrent=concurrent or [],
            queue=desk.context(request, applicant_id, q or QueueQuery()),
            done=done,
        )

    @app.get("/applicants/{applicant_id}", response_class=HTMLResponse)
    def applicant(request: Request, applicant_id: int, q: Query, saved: int | None = None, done: int | None = None):
        known(applicant_id)
        return applicant_page(request, applicant_id, saved=saved, q=q, done=done)

    @app.post("/applicants/{applicant_id}/reviews")
    def submit(
        request: Request,
        applicant_id: int,
        q: Query,
        outcome: Annotated[str, Form(max_length=40)] = "",
        reason: Annotated[str, Form(max_length=4000)] = "",
        reviewer: Annotated[str, Form(max_length=200)] = "",
        csrf_token: Annotated[str, Form(max_length=100)] = "",
        token: Annotated[str, Form(max_length=200)] = "",
        seen_seq: Annotated[int, Form(ge=0)] = 0,
        then: Annotated[str, Form(max_length=10)] = "stay",
    ):
        problem = guard.origin_problem(request, required=True)
        if problem:
            raise HTTPException(403, problem)
        if not guard.csrf_ok(request, csrf_token):
            raise HTTPException(403, MSG_CSRF)
        known(applicant_id)
        entered = {"outcome": outcome, "reason": reason, "reviewer": reviewer}
        authorised = guard.signed_in(request) or guard.token_ok(token)
        if not authorised:
            return applicant_page(request, applicant_id, status=401, errors={"token": MSG_TOKEN}, entered=entered, q=q)
        held = desk.check_claim(applicant_id, desk.who(request, reviewer) or reviewer)
        if held:
            return applicant_page(request, applicant_id, status=409, errors={"claim": held}, entered=entered, q=q)
        decision = str(run.row(applicant_id)["decision"])
        try:
            saved = store.save(applicant_id, decision, outcome, reason, reviewer)
        except ReviewValidationError as exc:
            return applicant_page(request, applicant_id, status=422, errors=exc.errors, entered=entered, q=q)
        response = RedirectResponse(desk.after_save(applicant_id, saved.reviewer, q, then, saved.seq), status_code=303)
        set_name_cookie(response, saved.reviewer)
        if not guard.signed_in(request):
            response.set_cookie(AUTH_COOKIE, guard.session, httponly=True, samesite="strict", path="/")
        return response

    @app.get("/notices/{applicant_id}.pdf")
    def notice_pdf(applicant_id: int):
        known(applicant_id)
        path = run.notice_pdf(applicant_id)
        if path is None:
            raise HTTPException(404, f"no notice was written for applicant {applicant_id} in this run")
        return FileResponse(path, media_type="application/pdf", filename=path.name)

    @app.get("/notices/{applicant_id}.html", response_class=HTMLResponse)
    def notice_html(applicant_id: int):
        known(applicant_id)
        try:
            html = run.notice_html(applicant_id) if run.row(applicant_id)["decision"] == "decline" else None
        except (KeyError, ValueError, FileNotFoundError) as exc:
            raise HTTPException(503, f"the notice could not be rendered for this run: {exc}") from exc
        if html is None:
            raise HTTPException(404, f"no HTML notice is available for applicant {applicant_id}")
        return HTMLResponse(html, headers={"Content-Security-Policy": NOTICE_CSP})

    @app.get("/report.pdf")
    def report_pdf():
        path = run.report_pdf()
        if path is None:
            raise HTTPException(404, "this run has no global report yet")
        return FileResponse(path, media_type="application/pdf", filename=path.name)

    @app.get("/export/reviews.csv")
    def export_csv():
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

    # ---- JSON API ------------------------------------------------------------
    @app.get("/api/applicants/{applicant_id}")
    def api_applicant(applicant_id: int):
        known(applicant_id)
        row = run.row(applicant_id)
        return {
            "id": applicant_id,
            "probability": float(row["probability"]),
            "decision": str(row["decision"]),
            "flags": [{"code": f.code, "reason": f.reason} for f in run.flags_of(applicant_id).itertuples()],
            "reviews": [_review_json(r) for r in store.history(applicant_id)],
        }

    @app.get("/api/reviews")
    def api_reviews():
        return [_review_json(r) for r in store.all()]

    @app.post("/api/applicants/{applicant_id}/reviews", status_code=201)
    def api_submit(request: Request, applicant_id: int, body: ReviewIn):
        problem = guard.origin_problem(request, required=False)
        if problem:
            raise HTTPException(403, problem)
        if not guard.token_ok(request.headers.get(TOKEN_HEADER)):
            raise HTTPException(401, MSG_TOKEN)
        known(applicant_id)
        held = desk.check_claim(applicant_id, body.reviewer)
        if held:
            return JSONResponse({"detail": {"claim": held}}, status_code=409)
        decision = str(run.row(applicant_id)["decision"])
        try:
            saved = store.save(applicant_id, decision, body.outcome, body.reason, body.reviewer)
        except ReviewValidationError as exc:
            return JSONResponse({"detail": exc.errors}, status_code=422)
        desk.claims.release(applicant_id, saved.reviewer)
        return _review_json(saved)

    app.add_middleware(BodyLimit, max_bytes=max_body)  # added last: the outermost layer, before Host or token checks
    return app
