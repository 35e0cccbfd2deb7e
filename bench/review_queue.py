"""What a queue page costs on a real run: time per page request, through the app's own HTTP routes.

Works on a copy of a finished run (`--run DIR`; the run itself is not
touched), in the app as `credit-audit review` builds it, driven by
Starlette's test client (no network, so the figure is the app's own work):

- start-up: `create_app` (loading the run and indexing the queue);
- per page, for the first, a middle and the last page of the flagged
  queue and of every applicant (30,000 rows on the real file), filtered and
  not, medians of `--repeat`: the queue's own work (read new reviews and
  live claims, select, build the page's rows), the template on top, and a
  whole GET through the test client (which adds its own thread hops);
- after a review: the first page right after a save (the state filter's
  cached match is rebuilt) and the next ones.

`--reviews N` first saves N reviews (signed with a key of a fresh keystore),
so the cost of reading review states is in the figure. The same script runs
against an older checkout of the app (routes it lacks are skipped), which
is how the before/after figures in the README were taken.

    .venv/bin/python bench/review_queue.py --run runs/<run-id> [--reviews 1000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOKEN = "bench-token-0123456789abcdef"
REASON = "Checked against the statements; the decision stands."


def _median_ms(fn, repeat: int) -> float:  # noqa: ANN001 - a zero-argument callable
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def _pages(client, query: str) -> int:  # noqa: ANN001 - a test client
    text = client.get(f"/?{query}").text
    found = re.search(r"page \d+ of (\d+)", text)
    return int(found.group(1)) if found else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--reviews", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)

    from fastapi.testclient import TestClient

    from pipeline.signing import KEYSTORE_ENV, create_key
    from review import ReviewStore, create_app, load_review_run

    try:
        from review._app import _env
        from review._queue import parse_query, queue_view
    except ImportError:  # an older checkout: HTTP figures only
        _env = parse_query = queue_view = None

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(shutil.copytree(args.run, Path(tmp) / "run", ignore=shutil.ignore_patterns("review")))
        create_key(Path(tmp) / "keys")
        os.environ[KEYSTORE_ENV] = str(Path(tmp) / "keys")
        run = load_review_run(run_dir)
        if args.reviews:
            store = ReviewStore(run_dir, run_id=run.run_id)
            ids = run.flags["id"].drop_duplicates().to_numpy()
            t = time.perf_counter()
            for k in range(args.reviews):
                i = int(ids[k % len(ids)])
                store.save(i, str(run.row(i)["decision"]), "needs_information", REASON, f"Analyst {k % 7}")
            print(f"saved {args.reviews} reviews in {time.perf_counter() - t:.1f} s")
            store.close()
        t = time.perf_counter()
        app = create_app(run_dir, token=TOKEN, run=run)
        print(f"start-up (create_app, run already loaded): {(time.perf_counter() - t) * 1000:.0f} ms")
        client = TestClient(app, base_url="http://127.0.0.1")
        print(f"applicants {len(run.applicants):,}, flagged {run.flags['id'].nunique():,}")
        desk = getattr(app.state, "desk", None)  # None: an app from before the queue index
        env = _env() if desk is not None else None
        print(f"{'':45s} {'page':>14s}  {'queue work':>10s}  {'+ render':>8s}  {'HTTP (test client)':>18s}")
        for label, query in (
            ("flagged queue", "scope=flagged"),
            ("every applicant", "scope=all"),
            ("every applicant, declined, by probability", "scope=all&decision=decline&sort=probability"),
            ("flagged, not reviewed", "scope=flagged&state=unreviewed"),
        ):
            pages = _pages(client, query)
            for page in sorted({1, max(1, pages // 2), pages}):
                http = _median_ms(lambda q=query, p=page: client.get(f"/?{q}&page={p}"), args.repeat)
                work = render = float("nan")
                if desk is not None:
                    q = parse_query(**dict(kv.split("=") for kv in query.split("&")), page=page)
                    work = _median_ms(lambda q=q: queue_view(run, desk.index, q, desk.fresh()), args.repeat)
                    view = queue_view(run, desk.index, q, desk.fresh())
                    render = _median_ms(
                        lambda v=view: env.get_template("queue.html.j2").render(view=v, notice=None, find="", saved=None),
                        args.repeat,
                    )
                print(f"{label:45s} {page:5d} of {pages:5d}  {work:7.2f} ms  {render:5.2f} ms  {http:15.2f} ms")
        first = int(run.flags["id"].iloc[0])
        api = {"X-Review-Token": TOKEN}
        body = {"outcome": "confirm", "reason": REASON, "reviewer": "Bench Analyst"}
        t = time.perf_counter()
        client.post(f"/api/applicants/{first}/reviews", json=body, headers=api)
        print(f"one review saved through the API: {(time.perf_counter() - t) * 1000:.1f} ms")
        t = time.perf_counter()
        client.get("/?scope=flagged&state=unreviewed&page=2")
        print(f"first unreviewed page after that save: {(time.perf_counter() - t) * 1000:.2f} ms")
        ms = _median_ms(lambda: client.get("/?scope=flagged&state=unreviewed&page=2"), args.repeat)
        print(f"the same page again: {ms:.2f} ms per request")
        team = _median_ms(lambda: client.get("/team"), max(3, args.repeat // 4))
        print(f"team page: {team:.1f} ms per request")
        app.state.store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
