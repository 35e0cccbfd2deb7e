# ruff: noqa: F811 - pytest fixtures imported from tests/test_review_app.py are named as test arguments
"""The review queue at bank scale: urgency order, pages on all 30,000 real applicants, claims, save-and-next, team.

The queue index is tested on a run written from the whole real file (every
applicant scored by the session's model, flags computed by the flow's own
rules); the routes over HTTP and in headless Debian Chromium on the 300-row
run of tests/test_review_app.py (its fixtures are reused, not copied).
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine

from pipeline import outputs as O
from pipeline import scoring
from pipeline.config import AuditConfig
from pipeline.flags import FlagConfig, compute_flags, flag_summary
from pipeline.run_record import FlagsSection, write_record
from pipeline.splitting import split_portfolio
from pipeline.surrogate import Surrogate
from review import ReviewStore, load_review_run, verify_run
from review._accounts import Account, Role
from review._claims import CLAIM_MINUTES, Claim, Claims, ClaimTaken, clean_holder
from review._queue import (
    PAGE_SIZE,
    QueryError,
    QueueIndex,
    QueueQuery,
    borderline_margin,
    parse_id,
    parse_query,
    queue_view,
)
from tests.test_review_app import (  # noqa: F401 - fixtures and helpers shared with the app's tests
    ALI,
    ANA,
    BO,
    CHROMIUM,
    CHROMIUM_ARGS,
    HTTP_TIMEOUT,
    REASON,
    _csrf,
    _flags,
    _table,
    accounts_for,
    built_run,
    run_dir,
    serving,
    sign_in,
    url,
)

pytestmark = pytest.mark.slow  # needs the session's model fitted on the real data
QUERY_KEYS = {"scope", "code", "state", "decision", "sort", "order", "page"}


# ---- a run of the whole real file ----------------------------------------------------------------
@pytest.fixture(scope="module")
def full_run(tmp_path_factory, portfolio, fitted_model) -> Path:
    """All 30,000 real applicants scored by the real model, flagged by the flow's rules, written like a run."""
    split = split_portfolio(portfolio, 0.2, 0)
    train = portfolio.features.iloc[split.train]
    surrogate = Surrogate(features=fitted_model.features, max_depth=4, seed=0).fit(train, fitted_model.predict(train))
    table = scoring.applicants_table(portfolio, split, fitted_model, surrogate)
    flags = compute_flags(table, fitted_model.threshold_, FlagConfig(), training=train)
    out = tmp_path_factory.mktemp("queue") / "run"
    out.mkdir()
    record = scoring.core_record(
        run_id="20261203T000000Z-queue000", created="2026-12-01T06:00:00+00:00", config=AuditConfig(),
        device="cpu", code_version="0" * 64, portfolio=portfolio, split=split, model=fitted_model,
        surrogate=surrogate, table=table,
    ).model_copy(update={"flags": FlagsSection.model_validate(flag_summary(flags))})
    O.write_parquet(out / O.APPLICANTS, table)
    O.write_parquet(out / "flags.parquet", flags.table)
    write_record(out, record)
    O.write_manifest(out)
    return out


@pytest.fixture(scope="module")
def full(full_run):
    run = load_review_run(full_run)
    return run, QueueIndex.build(run)


def test_urgency_order_on_the_real_file(full):
    """Declined and near the threshold first, then declined, approved near it, the rest; closest first in a tier."""
    run, index = full
    assert len(index.ids) == 30_000
    found = index.match(QueueQuery(scope="all"), {})
    pos = found.positions
    assert sorted(index.ids[pos].tolist()) == sorted(run.applicants.index.tolist())  # each applicant once
    tiers, gaps = index.tier[pos], index.margin[pos]
    assert (np.diff(tiers) >= 0).all() and set(np.unique(tiers)) == {0, 1, 2, 3}
    for t in range(4):
        assert (np.diff(gaps[tiers == t]) >= 0).all()
    p = run.applicants["probability"].to_numpy()
    declined = run.applicants["decision"].to_numpy() == "decline"
    near = np.abs(p - run.threshold) <= borderline_margin(run)
    assert (tiers[: int((declined & near).sum())] == 0).all()
    # "near the threshold" is the borderline flag's own rule: the same applicants
    borderline = set(run.flags.loc[run.flags["code"] == "borderline", "id"])
    assert borderline == set(run.applicants.index[near])
    assert set(index.ids[pos[np.isin(tiers, [0, 2])]]) == borderline
    # the flagged queue's first page: every declined borderline case before any other
    first = index.page_positions(index.match(QueueQuery(), {}), 1)
    assert (index.tier[first] == 0).all() and index.decline[first].all()


def test_margin_comes_from_the_run(full):
    run, _ = full
    assert borderline_margin(run) == FlagConfig().borderline_margin
    wider = run.record.flags.model_copy(update={"config": {**run.record.flags.config, "borderline_margin": 0.2}})
    other = type(run)(path=run.path, record=run.record.model_copy(update={"flags": wider}), applicants=run.applicants,
                      flags=run.flags, flags_computed_here=False)
    assert borderline_margin(other) == 0.2
    assert (QueueIndex.build(other).tier <= 1).sum() == (QueueIndex.build(run).tier <= 1).sum()  # declines stay
    assert (np.isin(QueueIndex.build(other).tier, [0, 2])).sum() > (np.isin(QueueIndex.build(run).tier, [0, 2])).sum()


def test_pages_cover_the_queue_and_cost_the_same_at_any_depth(full):
    """30,000 rows: pages partition the match; a page deep in the queue costs what the first one does."""
    run, index = full
    q = QueueQuery(scope="all", sort="probability")
    found = index.match(q, {})
    pages = index.pages(found)
    assert pages == -(-30_000 // PAGE_SIZE)
    seen = np.concatenate([index.page_positions(found, k) for k in range(1, pages + 1)])
    assert np.array_equal(seen, found.positions)
    assert (np.diff(index.probability[seen]) <= 0).all()

    def per_page(page: int) -> float:
        samples = []
        for _ in range(15):
            t = time.perf_counter()
            queue_view(run, index, QueueQuery(scope="all", sort="probability", page=page), {})
            samples.append(time.perf_counter() - t)
        return statistics.median(samples)

    first, deep = per_page(1), per_page(pages)
    assert first < 0.05 and deep < 0.05  # measured ~1-2 ms; the limit leaves room for a busy CI machine
    assert deep < 5 * first + 0.005  # not proportional to the depth (page 600 of 600)
    view = queue_view(run, index, QueueQuery(scope="all", page=10**5), {})
    assert view["page"] == pages and len(view["rows"]) == 30_000 - (pages - 1) * PAGE_SIZE  # a page past the end


def test_review_states_are_read_incrementally(full_run, full):
    """A saved review changes the state filters at the next request; only entries after the last seen are read."""
    run, _ = full
    index = QueueIndex.build(run)
    store = ReviewStore(full_run, db_url=f"sqlite:///{full_run.parent / 'reviews.sqlite'}", run_id=run.run_id)
    try:
        unreviewed = QueueQuery(state="unreviewed")
        before = index.match(unreviewed, {})
        first = int(index.ids[before.positions[0]])
        store.save(first, str(run.row(first)["decision"]), "needs_information", REASON,
                   Account("ana.analyst", Role.ANALYST))
        index.refresh(store)
        assert index.seen_seq == 1
        after = index.match(unreviewed, {})
        assert len(after.positions) == len(before.positions) - 1 and first not in index.ids[after.positions]
        waiting = index.match(QueueQuery(state="needs_information"), {})
        assert index.ids[waiting.positions].tolist() == [first]
        store.save(first, str(run.row(first)["decision"]), "confirm", REASON, Account("bo", Role.APPROVER))
        read: list[int] = []
        original = store.entries_after

        def spy(seq: int):  # noqa: ANN202
            read.append(seq)
            return original(seq)

        store.entries_after = spy
        index.refresh(store)
        assert read == [1] and index.state_of(int(index.position(first))) == "confirm"
        assert index.reviewer[int(index.position(first))] == "bo"
        assert len(index.match(QueueQuery(state="needs_information"), {}).positions) == 0
    finally:
        store.close()


def _claim(i: int, holder: str) -> Claim:
    now = datetime.now(UTC)
    return Claim(i, holder, now, now + timedelta(minutes=CLAIM_MINUTES))


def test_next_case_keeps_the_order_skips_others_claims_and_wraps(full):
    run, _ = full
    index = QueueIndex.build(run)  # its review states are changed below
    q = QueueQuery(decision="decline")
    order = index.ids[index.match(q, {}).positions].tolist()
    a, b, c = order[0], order[1], order[2]
    near = index.neighbours(q, a, {})
    assert (near.previous, near.next, near.page) == (None, b, 1)
    assert index.neighbours(q, a, {b: _claim(b, "Bo Boss")}, "Ana Analyst").next == c  # Bo holds b
    assert index.neighbours(q, a, {b: _claim(b, "Ana Analyst")}, "Ana Analyst").next == b  # her own claim
    assert index.neighbours(q, order[-1], {}).next == a  # wraps round to the start
    assert index.neighbours(q, order[PAGE_SIZE + 3], {}).page == 2
    # the case just reviewed leaves an "unreviewed" filter, and its successor is still next
    only_open = QueueQuery(decision="decline", state="unreviewed")
    assert index.ids[index.match(only_open, {}).positions][0] == a
    index.apply([(a, "confirm", "ana")], seen_seq=1)
    assert a not in index.ids[index.match(only_open, {}).positions]  # the cached match was not reused
    assert index.neighbours(only_open, a, {}).next == b


def test_query_and_id_parsing_refuse_what_the_queue_does_not_offer():
    assert parse_query() == QueueQuery()
    assert parse_query(page="7").page == 7
    for bad in ({"sort": "evil"}, {"scope": "everyone"}, {"state": "<script>"}, {"order": "up"}):
        with pytest.raises(QueryError, match=list(bad)[0]):
            parse_query(**bad)
    for page in ("0", "-1", "1e3", "\uff11", "", "100001", "9" * 400):
        with pytest.raises(QueryError, match="page must be a whole number"):
            parse_query(page=page)
    assert parse_id(" #14 ") == 14 and parse_id("007") == 7
    for bad in ("abc", "1.0", "-5", "\uff11\uff14", "9223372036854775808", "1" * 20, "", "<script>"):
        with pytest.raises(QueryError, match="applicant id"):
            parse_id(bad)
    q = QueueQuery(code="borderline", page=3)
    assert parse_qs(q.qs()) == {k: [v] for k, v in q.params().items()} and set(q.params()) == QUERY_KEYS


# ---- claims -----------------------------------------------------------------------------------------
@pytest.fixture
def claims(tmp_path) -> Claims:
    return Claims(create_engine(f"sqlite:///{tmp_path / 'claims.sqlite'}"))


def test_a_claim_is_held_renewed_released_and_expires(claims):
    t0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    first = claims.claim(14, "Ana Analyst", now=t0)
    assert first.expires == t0 + timedelta(minutes=CLAIM_MINUTES)
    with pytest.raises(ClaimTaken, match=r"Ana Analyst \(claimed until 09:30 UTC\)") as taken:
        claims.claim(14, "Bo Boss", now=t0 + timedelta(minutes=5))
    assert taken.value.claim.holder == "Ana Analyst"
    renewed = claims.claim(14, "Ana Analyst", now=t0 + timedelta(minutes=20))
    assert renewed.expires == t0 + timedelta(minutes=20 + CLAIM_MINUTES)
    assert claims.holder_of(14, now=t0 + timedelta(minutes=45)).holder == "Ana Analyst"  # renewal counted
    assert not claims.release(14, "Bo Boss") and claims.holder_of(14, now=t0).holder == "Ana Analyst"
    late = t0 + timedelta(minutes=20 + CLAIM_MINUTES, seconds=1)
    assert claims.holder_of(14, now=late) is None and claims.live(now=late) == {}
    assert claims.claim(14, "Bo Boss", now=late).holder == "Bo Boss"  # an expired claim is taken over
    claims.check(14, "Bo Boss", now=late)
    with pytest.raises(ClaimTaken):
        claims.check(14, "Ana Analyst", now=late)
    assert claims.release(14, "Bo Boss") and claims.holder_of(14) is None


def test_two_analysts_claiming_at_once_one_wins(tmp_path):
    """Two processes' engines on one database, eight cases, both claiming every case at the same moment."""
    db = f"sqlite:///{tmp_path / 'claims.sqlite'}"
    Claims(create_engine(db))
    won: dict[str, list[int]] = {"Ana Analyst": [], "Bo Boss": []}
    lost: dict[str, list[int]] = {"Ana Analyst": [], "Bo Boss": []}
    barrier = threading.Barrier(2)

    def analyst(name: str) -> None:
        mine = Claims(create_engine(db, connect_args={"timeout": 30}))
        for case in range(8):
            barrier.wait()
            try:
                mine.claim(case, name)
                won[name].append(case)
            except ClaimTaken as exc:
                assert exc.claim.holder != name
                lost[name].append(case)

    threads = [threading.Thread(target=analyst, args=(n,)) for n in won]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won["Ana Analyst"] + won["Bo Boss"]) == list(range(8))
    assert sorted(lost["Ana Analyst"] + lost["Bo Boss"]) == list(range(8))
    held = Claims(create_engine(db)).live()
    assert {i: c.holder for i, c in held.items()} == {i: n for n, ids in won.items() for i in ids}


def test_holder_names_follow_the_account_rules():
    assert clean_holder("  Ana.Analyst ") == "ana.analyst"
    for bad in ("", "A", "x" * 81, "Ana\u202eAnalyst", "Ana\nAnalyst", "Ana Analyst", None):
        with pytest.raises(ValueError, match="account name"):
            clean_holder(bad)


# ---- routes over HTTP ----------------------------------------------------------------------------
def _query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_every_link_carries_the_queue_state(url, run_dir):
    q = {"scope": "all", "state": "unreviewed", "sort": "probability", "order": "asc", "page": "2"}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url) as c:
        sign_in(c, url, ANA)
        page = c.get("/", params=q)
        assert page.status_code == 200
        links = re.findall(r'href="(/(?:applicants/\d+)?\?[^"]*)"', page.text)
        assert links
        for link in links:
            got = _query_of(link.replace("&amp;", "&"))
            assert {k: got[k] for k in q if k != "page"} == {k: v for k, v in q.items() if k != "page"}
        first = re.search(r'href="(/applicants/(\d+)\?[^"]*)"', page.text)
        case = c.get(first.group(1).replace("&amp;", "&"))
        for anchor in ("back", "next-case", "prev-case"):
            found = re.search(rf'href="([^"]*)" id="{anchor}"', case.text)
            assert found, anchor
            assert _query_of(found.group(1).replace("&amp;", "&"))["sort"] == "probability"
        back = _query_of(re.search(r'href="([^"]*)" id="back"', case.text).group(1).replace("&amp;", "&"))
        assert {k: back[k] for k in q} == q  # the page holding the case: the page we came from
        action = re.search(r'action="([^"]*)" id="review-form"', case.text).group(1).replace("&amp;", "&")
        assert {k: _query_of(action)[k] for k in q} == q
        assert c.get("/", params=q | {"page": "0"}).status_code == 422
        assert c.get("/applicants/1", params={"sort": "evil"}).status_code == 422


def test_search_jumps_to_the_case(url, run_dir):
    table = _table(run_dir)
    unflagged = int(next(i for i in table.index if i not in set(_flags(run_dir)["id"])))
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url) as c:
        sign_in(c, url, ANA)
        jump = c.get("/", params={"find": f" #{unflagged} ", "decision": "decline"})
        assert jump.status_code == 303
        assert jump.headers["location"].startswith(f"/applicants/{unflagged}?")
        assert _query_of(jump.headers["location"])["decision"] == "decline"
        missing = c.get("/", params={"find": "999999999"})
        assert missing.status_code == 404 and "No applicant #999999999 in this run." in missing.text
        bad = c.get("/", params={"find": "<script>alert(1)</script>"})
        assert bad.status_code == 422 and "<script>alert(1)" not in bad.text and "&lt;script&gt;" in bad.text


def _write(c: httpx.Client, base: str, path: str, form: dict) -> httpx.Response:
    return c.post(path, data=form, headers={"Origin": base})


def test_claim_save_and_next_over_http(url, run_dir):
    """Ana claims, Ali cannot save or claim, Ana saves and lands on the next case, claimed; her first is free."""
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url) as ana, httpx.Client(
        timeout=HTTP_TIMEOUT, base_url=url
    ) as ali, httpx.Client(timeout=HTTP_TIMEOUT, base_url=url) as anonymous:
        sign_in(ana, url, ANA)
        sign_in(ali, url, ALI)
        order = [r["id"] for r in ana.get("/api/queue", params={"state": "unreviewed"}).json()]
        first, second = order[0], order[1]
        qs = "state=unreviewed"
        path = f"/applicants/{first}"
        csrf = _csrf(ana, path)
        attacker = ana.post(f"{path}/claim?{qs}", data={"csrf_token": csrf}, headers={"Origin": "http://attacker.test"})
        assert attacker.status_code == 403
        assert _write(anonymous, url, f"{path}/claim?{qs}", {"csrf_token": csrf}).status_code == 401
        claimed = _write(ana, url, f"{path}/claim?{qs}", {"csrf_token": csrf})
        assert claimed.status_code == 303
        assert "You (ana.analyst) hold this case" in ana.get(path).text

        ali_csrf = _csrf(ali, path)
        assert "ana.analyst</strong> is working on this case" in ali.get(path).text
        refused = _write(ali, url, f"{path}/claim", {"csrf_token": ali_csrf})
        assert refused.status_code == 409 and "ana.analyst" in refused.text
        form = {"outcome": "confirm", "reason": REASON, "csrf_token": ali_csrf}
        blocked = _write(ali, url, f"{path}/reviews", form)
        assert blocked.status_code == 409 and "being reviewed by ana.analyst" in blocked.text
        api = ali.post(f"/api/applicants/{first}/reviews", json={"outcome": "confirm", "reason": REASON})
        assert api.status_code == 409
        assert ali.get("/api/reviews").json() == []
        queue = ali.get("/", params={"state": "claimed"}).text
        assert f">#{first}<" in queue and "ana.analyst" in queue

        saved = _write(ana, url, f"{path}/reviews?{qs}", form | {"csrf_token": csrf, "then": "next"})
        assert saved.status_code == 303
        location = saved.headers["location"]
        assert location.startswith(f"/applicants/{second}?")
        assert _query_of(location)["state"] == "unreviewed" and _query_of(location)["done"] == str(first)
        landed = ana.get(location).text
        assert 'id="saved"' in landed and "This is the next case." in landed
        assert "You (ana.analyst) hold this case" in landed  # the next case is claimed for her
        assert "Nobody is working on this case." in ali.get(path).text  # saving released the first
        assert "ana.analyst</strong> is working on this case" in ali.get(f"/applicants/{second}").text
        released = _write(ana, url, f"/applicants/{second}/release?{qs}", {"csrf_token": csrf})
        assert released.status_code == 303 and "Nobody is working" in ali.get(f"/applicants/{second}").text
    assert verify_run(run_dir).ok


def test_the_claim_holder_is_the_signed_in_account(run_dir):
    """Claims name the account the sign-in authenticated; there is no typed name to fall back on."""
    from types import SimpleNamespace

    from starlette.requests import Request

    from review import create_app

    app = create_app(run_dir, accounts=accounts_for(run_dir))
    try:
        desk = app.state.desk
        request = Request({"type": "http", "method": "POST", "path": "/", "headers": [], "state": {}})
        assert desk.who(request) is None  # not signed in: nobody
        request.state.account = SimpleNamespace(name="ana.analyst")
        assert desk.who(request) == "ana.analyst"
    finally:
        app.state.store.close()
        app.state.auth.accounts.close()


def test_save_and_next_at_the_end_of_the_queue(url, run_dir):
    table = _table(run_dir)
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url) as c:
        sign_in(c, url, ANA)
        rows = c.get("/api/queue", params={"decision": "decline", "state": "unreviewed"}).json()
        assert rows
        csrf = _csrf(c, f"/applicants/{rows[0]['id']}")
        qs = "decision=decline&state=unreviewed"
        location = ""
        for r in rows:  # work through every declined case with save-and-next
            target = int(r["id"]) if not location else int(re.search(r"/applicants/(\d+)", location).group(1))
            form = {"outcome": "confirm", "reason": REASON, "csrf_token": csrf, "then": "next"}
            location = _write(c, url, f"/applicants/{target}/reviews?{qs}", form).headers["location"]
        assert location.startswith("/?") and _query_of(location)["decision"] == "decline"
        assert "the queue is done" in c.get(location).text
        reviewed = {r["applicant_id"] for r in c.get("/api/reviews").json()}
        assert reviewed == {int(r["id"]) for r in rows}
        assert all(table.loc[i, "decision"] == "decline" for i in reviewed)


def test_team_page_counts(url, run_dir):
    flagged = _flags(run_dir)["id"].drop_duplicates().tolist()
    table = _table(run_dir)
    declined = [i for i in flagged if table.loc[i, "decision"] == "decline"]
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url) as c:
        sign_in(c, url, ANA)
        empty = c.get("/team").text
        assert "No review saved" in empty and f'id="n-open"><a href="/?state=open">{len(flagged)}<' in empty
        post = lambda i, outcome, who: c.post(  # noqa: E731
            f"/api/applicants/{i}/reviews", json={"outcome": outcome, "reason": REASON}, auth=who
        )
        overridden = post(declined[0], "override_approve", ANA)
        assert overridden.status_code == 201
        assert post(declined[1], "confirm", ANA).status_code == 201
        assert post(declined[2], "confirm", ANA).status_code == 201
        assert post(declined[3], "needs_information", ALI).status_code == 201
        assert post(declined[5], "override_approve", ALI).status_code == 201  # left awaiting approval
        approval = c.post(f"/api/reviews/{overridden.json()['seq']}/approve", json={"reason": REASON}, auth=BO)
        assert approval.status_code == 201
        csrf = _csrf(c, f"/applicants/{declined[4]}")
        assert _write(c, url, f"/applicants/{declined[4]}/claim", {"csrf_token": csrf}).status_code == 303
        page = c.get("/team").text
    counts = dict(re.findall(r'id="n-(\w+)">(?:<a [^>]*>)?(\d+)', page))
    assert counts == {"flagged": str(len(flagged)), "open": str(len(flagged) - 6), "claimed": "1", "waiting": "1",
                      "pending": "1", "decided": "3", "reviews": "6"}
    rows = re.findall(r"<tr><td>([^<]+)</td>((?:<td[^>]*>[^<]*</td>)+)</tr>", page)
    cells = {name: re.findall(r">([^<]*)</td>", rest) for name, rest in rows}
    assert cells["ana.analyst"][:7] == ["3", "2", "1", "0", "33%", "0 / 0", "1"]
    assert cells["ali"][:7] == ["2", "0", "1", "1", "100%", "0 / 0", "0"]
    assert cells["bo"][:7] == ["1", "0", "0", "0", "none decided", "1 / 0", "0"]
    assert re.search(r'id="oldest-open">#\d+</a>, open for \d+ d', page)  # the run was created days ago
    assert f'id="oldest-waiting">#{declined[3]}<' in page


def test_keyboard_script_is_served_from_the_app_and_allowed_by_the_csp(url):
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=url) as c:
        sign_in(c, url, ANA)
        page = c.get("/")
        assert '<script src="/static/review.js" defer></script>' in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)  # no inline script
        assert not re.search(r"\son[a-z]+=", page.text)  # no inline event handler
        js = c.get("/static/review.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert not re.search(r"https?:|fetch\(|XMLHttpRequest|import\(|eval\(", js.text)
        assert "/static/review.js" in page.text and "<kbd>j</kbd>" in page.text


# ---- real browser -------------------------------------------------------------------------------
def _browser(pw):  # noqa: ANN001, ANN202
    if not CHROMIUM.exists():
        pytest.skip(f"Debian Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def _signed_in(page, base: str, account: tuple[str, str], path: str = "/") -> None:  # noqa: ANN001 - Playwright page
    """Open `path`; the app asks for a sign-in first and comes back to it."""
    page.goto(base + path)
    page.wait_for_url(re.compile(r".*/login\?next=.*"))
    page.fill("#name", account[0])
    page.fill("#password", account[1])
    page.click("#sign-in")
    page.wait_for_selector("#signed-in-as")


@pytest.mark.browser
def test_browser_filters_search_and_keyboard(run_dir, tmp_path):
    """Filters and page survive the round trip through a case; / searches; j/k and Enter move through rows."""
    from playwright.sync_api import sync_playwright

    with serving(run_dir) as base, sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            _signed_in(page, base, ANA)
            page.select_option("#f-scope", "all")
            page.select_option("#f-sort", "probability")
            page.click("#apply")
            page.wait_for_url(re.compile(r".*scope=all.*sort=probability.*"))
            page.click("#next-page")
            page.wait_for_url(re.compile(r".*page=2.*"))
            listed = page.locator("#queue tbody a").all_inner_texts()
            page.keyboard.press("j")
            page.keyboard.press("j")
            page.keyboard.press("k")
            assert page.locator("#queue tbody tr.current").count() == 1
            page.keyboard.press("Enter")
            page.wait_for_url(re.compile(rf".*/applicants/{listed[0].strip('#')}\?.*sort=probability.*page=2.*"))
            page.keyboard.press("j")  # next case, in the same order
            page.wait_for_url(re.compile(rf".*/applicants/{listed[1].strip('#')}\?.*"))
            page.keyboard.press("u")  # back to the queue: the filters, order and page as they were
            page.wait_for_url(re.compile(r".*/\?scope=all&.*sort=probability.*page=2.*"))
            assert page.locator("#f-scope").input_value() == "all"
            assert page.locator("#f-sort").input_value() == "probability"
            assert page.locator("#queue tbody a").all_inner_texts() == listed
            wanted = int(_table(run_dir).index[-1])
            page.keyboard.press("/")
            assert page.evaluate("document.activeElement.id") == "find"
            page.keyboard.type(str(wanted))
            page.keyboard.press("Enter")
            page.wait_for_url(re.compile(rf".*/applicants/{wanted}\?.*sort=probability.*"))
            assert page.locator("h1").inner_text() == f"Applicant #{wanted}"
        finally:
            browser.close()


@pytest.mark.browser
def test_browser_claim_review_save_and_next_and_team(run_dir, tmp_path):
    """Two analysts in two browsers: claim, the other sees it, keyboard review, save-and-next, the team page."""
    from playwright.sync_api import sync_playwright

    shots = Path(__import__("os").environ.get("REVIEW_SCREENSHOTS", tmp_path))
    with serving(run_dir) as base, sync_playwright() as pw:
        browser = _browser(pw)
        try:
            ana = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            bo = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            _signed_in(ana, base, ANA, "/?decision=decline&state=unreviewed")
            _signed_in(bo, base, ALI)
            order = [int(t.strip("#")) for t in ana.locator("#queue tbody a").all_inner_texts()]
            ana.click(f"text=#{order[0]}")
            ana.wait_for_url(re.compile(rf".*/applicants/{order[0]}\?.*decision=decline.*"))
            ana.click("#claim-button")
            ana.wait_for_selector("#claim-mine")

            bo.goto(f"{base}/applicants/{order[0]}")
            assert "ana.analyst is working on this case" in bo.locator("#claim-held").inner_text()
            bo.goto(base + "/?decision=decline&state=unreviewed")
            row = bo.locator(f"#queue tbody tr[data-id='{order[0]}'] td.claim").inner_text()
            assert "ana.analyst" in row and "until" in row
            bo.screenshot(path=str(shots / "queue.png"), full_page=False)

            ana.keyboard.press("1")  # the first outcome: confirm
            assert ana.locator("input[name=outcome][data-key='1']").is_checked()
            ana.fill("#reason", "Repayment history checked against the statements; decline stands.")
            assert ana.locator("#reviewer").count() == 0  # no name to type: the account signed in is the reviewer
            ana.keyboard.press("Escape")
            ana.keyboard.press("s")  # save and next
            ana.wait_for_url(re.compile(rf".*/applicants/{order[1]}\?.*state=unreviewed&decision=decline.*"))
            assert "This is the next case." in ana.locator("#saved").inner_text()
            ana.wait_for_selector("#claim-mine")  # the next case is hers now

            bo.goto(f"{base}/applicants/{order[0]}")
            assert "Nobody is working on this case." in bo.locator("#claim").inner_text()
            assert "ana.analyst" in bo.locator("#history").inner_text()
            bo.goto(base + "/team")
            assert bo.locator("#n-decided").inner_text() == "1" and bo.locator("#n-claimed").inner_text() == "1"
            assert "ana.analyst" in bo.locator("#reviewers").inner_text()
            bo.screenshot(path=str(shots / "team.png"), full_page=True)
            ana.screenshot(path=str(shots / "applicant.png"), full_page=False)
        finally:
            browser.close()
    assert verify_run(run_dir).ok
