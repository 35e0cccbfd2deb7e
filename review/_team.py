"""The team page: where the queue stands and what each reviewer has done.

Counts are over the flagged applicants (the queue) and each case's current
(latest) review, and add up to the queue: *decided* means confirmed or
overridden, *awaiting information* means the latest review asked for more,
*claimed* means not reviewed and someone holds a live claim, *open* means
not reviewed and not claimed (the queue's "open" filter). A
reviewer's override rate is their overrides over their deciding reviews
(confirm or override), counted over every review they proposed, so a case
reviewed twice counts twice, as the trail does; a second person's approvals
and rejections of others' proposals are counted apart (four eyes), and a
case whose proposal awaits that approval is *awaiting approval*, not decided.

A flagged case enters the queue when the run is created; one put on hold for
more information waits from that review. The oldest open case is therefore
open since the run's creation; the oldest awaiting case since its review.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime

import numpy as np

from ._claims import Claim
from ._decisions import PENDING_APPROVAL, Action
from ._queue import DECIDING, OUTCOMES, OVERRIDES, UNREVIEWED, QueueIndex, QueueQuery
from ._store import Outcome, Review


def age(since: datetime, now: datetime) -> str:
    """A duration as a person reads it: '3 d 4 h', '2 h 5 min', '7 min'."""
    minutes = max(0, int((now - since).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def rate(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "none decided"


def _reviewers(reviews: list[Review], claims: Mapping[int, Claim]) -> list[dict]:
    by: dict[str, Counter] = {}
    last: dict[str, str] = {}
    for r in reviews:
        c = by.setdefault(r.reviewer, Counter())
        c["reviews"] += 1
        if r.action in (Action.APPROVE, Action.REJECT):  # a decision on another person's proposal
            c[r.action] += 1
        else:
            c[r.outcome] += 1
        last[r.reviewer] = r.created
    holding = Counter(c.holder for c in claims.values())
    names = sorted(set(by) | set(holding), key=str.casefold)
    rows = []
    for name in names:
        c = by.get(name, Counter())
        deciding = sum(c[o] for o in DECIDING)
        overrides = sum(c[o] for o in OVERRIDES)
        rows.append(
            {
                "name": name,
                "reviews": c["reviews"],
                "confirmed": c[Outcome.CONFIRM],
                "overrides": overrides,
                "needs_information": c[Outcome.NEEDS_INFORMATION],
                "override_rate": rate(overrides, deciding),
                "approved": c[Action.APPROVE],
                "rejected": c[Action.REJECT],
                "holding": holding[name],
                "last": last.get(name, "")[:16].replace("T", " "),
            }
        )
    return rows


def team_view(
    run_id: str,
    index: QueueIndex,
    reviews: list[Review],
    claims: Mapping[int, Claim],
    created: datetime,
    now: datetime,
) -> dict:
    """Queue counts, per-reviewer counts and override rates, and the oldest open and awaiting cases."""
    flagged = index.flagged
    unreviewed = flagged & (index.state == UNREVIEWED)
    waiting = flagged & (index.state == OUTCOMES.index(Outcome.NEEDS_INFORMATION))
    decided = flagged & np.isin(index.state, [OUTCOMES.index(str(o)) for o in DECIDING])
    pending = flagged & (index.state == OUTCOMES.index(PENDING_APPROVAL))
    held = np.zeros(len(index.ids), bool)
    held[[p for p in map(index.position, claims) if p is not None]] = True
    first_open = index.match(QueueQuery(state="open"), claims).positions
    latest_wait: dict[int, str] = {}
    for r in reviews:
        latest_wait[r.applicant_id] = r.created if r.outcome == Outcome.NEEDS_INFORMATION else ""
    waits = sorted((t, i) for i, t in latest_wait.items() if t and (p := index.position(i)) is not None and waiting[p])
    return {
        "run_id": run_id,
        "flagged": int(flagged.sum()),
        "open": int((unreviewed & ~held).sum()),
        "claimed": int((unreviewed & held).sum()),
        "decided": int(decided.sum()),
        "waiting": int(waiting.sum()),
        "pending": int(pending.sum()),
        "reviews": len(reviews),
        "reviewers": _reviewers(reviews, claims),
        "oldest_open": None
        if not len(first_open)
        else {"id": int(index.ids[first_open[0]]), "age": age(created, now), "since": created.strftime("%Y-%m-%d %H:%M")},
        "oldest_waiting": None
        if not waits
        else {"id": waits[0][1], "age": age(datetime.fromisoformat(waits[0][0]), now), "since": waits[0][0][:16].replace("T", " ")},
    }
