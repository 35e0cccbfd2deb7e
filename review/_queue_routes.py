"""The queue's routes: queue page and search, claims, save-and-next, the team page and the keyboard script.

`QueueDesk` holds what they share (the run, its QueueIndex, the claims, the
store) and the two hooks the applicant routes of _app.py call: `context`
(next/previous case, the claim, the links back) and `after_save` (release
the claim, then land on the next case of the same filtered order, claimed
for the reviewer). Every route takes the queue's state from the URL
(`queue_query`), so every link and redirect carries it on.

Who the reviewer is comes from one function, `QueueDesk.who`: the account
the sign-in middleware authenticated (session, HTTP Basic or the SSO
header; review/_auth.py), never a typed name. Reading needs a signed-in
account; claiming needs one that may propose reviews.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from ._accounts import Account
from ._auth import current_user, proposer
from ._claims import Claims, ClaimTaken
from ._queue import QueryError, QueueIndex, QueueQuery, parse_id, parse_query, queue_view
from ._run import ReviewRun
from ._security import Guard
from ._store import ReviewStore
from ._team import team_view

SCRIPT = "review.js"
MSG_NOT_FOUND = "No applicant #{id} in this run."
MSG_NO_MORE = "No other case matches these filters: the queue is done."


def queue_query(
    scope: str = "flagged",
    code: str = "all",
    state: str = "all",
    decision: str = "all",
    sort: str = "urgency",
    order: str = "desc",
    page: str = "1",
) -> QueueQuery:
    """The queue's state from the URL; 422 naming the parameter when a value is not offered."""
    try:
        return parse_query(scope, code, state, decision, sort, order, page)
    except QueryError as exc:
        raise HTTPException(422, str(exc)) from None


Query = Annotated[QueueQuery, Depends(queue_query)]


@dataclass
class QueueDesk:
    run: ReviewRun
    store: ReviewStore
    guard: Guard
    templates: Path
    index: QueueIndex = field(init=False)
    claims: Claims = field(init=False)

    def __post_init__(self) -> None:
        self.index = QueueIndex.build(self.run)
        with self.store.trail.locked():  # app processes starting at once would both CREATE TABLE
            self.claims = Claims(self.store.engine)

    def who(self, request: Request) -> str | None:
        """The reviewer acting: the authenticated account's name (None before sign-in)."""
        account = getattr(request.state, "account", None)
        return None if account is None else str(account.name)

    def fresh(self) -> dict:
        """Bring review states up to the store and return the live claims (the per-request reads)."""
        self.index.refresh(self.store)
        return self.claims.live()

    def context(self, request: Request, applicant_id: int, q: QueueQuery) -> dict:
        """What the applicant page adds for the queue: claim, next/previous case, the links carrying the query."""
        claims = self.fresh()
        me = self.who(request)
        near = self.index.neighbours(q, applicant_id, claims, me)
        claim = claims.get(applicant_id)
        return {
            "qs": q.qs(),
            "params": q.params(),
            "back_qs": q.qs(page=near.page),
            "prev_id": near.previous,
            "next_id": near.next,
            "me": me or "",
            "claim": None
            if claim is None
            else {"holder": claim.holder, "until": claim.until, "mine": claim.holder == me},
        }

    def check_claim(self, applicant_id: int, reviewer: str) -> str | None:
        """The message to show when someone else holds this case (a save must not go through), else None."""
        try:
            self.claims.check(applicant_id, reviewer)
        except ClaimTaken as exc:
            return str(exc)
        return None

    def after_save(self, applicant_id: int, reviewer: str, q: QueueQuery, then: str, seq: int) -> str:
        """Release the saved case; with 'next', claim and open the next case of the same order (the URL)."""
        self.claims.release(applicant_id, reviewer)
        if then != "next":
            return f"/applicants/{applicant_id}?{urlencode({**q.params(), 'saved': seq})}"
        claims = self.fresh()
        for _ in range(3):  # another analyst may claim the next case between our look and our claim
            near = self.index.neighbours(q, applicant_id, claims, reviewer)
            if near.next is None:
                return f"/?{urlencode({**q.params(page=near.page), 'done': applicant_id, 'saved': seq})}"
            try:
                self.claims.claim(near.next, reviewer)
            except ClaimTaken:
                claims = self.claims.live()
                continue
            extra = {"saved": seq, "done": applicant_id}
            return f"/applicants/{near.next}?{urlencode({**q.params(page=near.page), **extra})}"
        return f"/?{urlencode({**q.params(), 'saved': seq})}"


def add_queue_routes(app: FastAPI, desk: QueueDesk, page: Callable[..., HTMLResponse]) -> None:
    """Register the queue, search, claim/release, team, API queue and script routes on the app."""
    run, index, guard = desk.run, desk.index, desk.guard

    reader = [Depends(current_user)]  # every page and call: a signed-in account

    @app.get("/", response_class=HTMLResponse, dependencies=reader)
    def queue(request: Request, q: Query, find: str = "", done: int | None = None, saved: int | None = None):
        claims = desk.fresh()

        def show(status: int = 200, notice: str | None = None) -> HTMLResponse:
            view = queue_view(run, index, q, claims)
            return page(request, "queue.html.j2", status=status, view=view, notice=notice, find=find, saved=saved)

        if not find.strip():
            return show(notice=MSG_NO_MORE if done is not None else None)
        try:
            wanted = parse_id(find)
        except QueryError as exc:
            return show(422, str(exc))
        if index.position(wanted) is None:
            return show(404, MSG_NOT_FOUND.format(id=wanted))
        return RedirectResponse(f"/applicants/{wanted}?{q.qs()}", status_code=303)


    def known(applicant_id: int) -> None:
        if index.position(applicant_id) is None:
            raise HTTPException(404, f"applicant {applicant_id} is not in run {run.run_id}")

    # two fixed paths (a path parameter here would also catch the app's /applicants/{id}/reviews)
    @app.post("/applicants/{applicant_id}/claim")
    @app.post("/applicants/{applicant_id}/release")
    def claim_or_release(
        request: Request,
        applicant_id: int,
        q: Query,
        user: Annotated[Account, Depends(proposer)],
        csrf_token: Annotated[str, Form(max_length=100)] = "",
    ):
        guard.check_form(request, csrf_token)
        known(applicant_id)
        if request.url.path.endswith("/release"):
            desk.claims.release(applicant_id, user.name)
        else:
            try:
                desk.claims.claim(applicant_id, user.name)
            except ClaimTaken as exc:
                raise HTTPException(409, str(exc)) from None
        return RedirectResponse(f"/applicants/{applicant_id}?{q.qs()}", status_code=303)

    @app.get("/team", response_class=HTMLResponse, dependencies=reader)
    def team(request: Request):
        claims = desk.fresh()
        now = datetime.now(UTC)
        created = datetime.fromisoformat(run.record.created)
        view = team_view(run.run_id, index, desk.store.all(), claims, created, now)
        return page(request, "team.html.j2", view=view)

    @app.get("/api/queue", dependencies=reader)
    def api_queue(q: Query):
        claims = desk.fresh()
        return index.api_rows(index.match(q, claims))

    @app.get(f"/static/{SCRIPT}")
    def script():
        return FileResponse(desk.templates / SCRIPT, media_type="text/javascript")
