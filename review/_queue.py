"""The review queue at bank scale: filters, urgency order, pages, search and next/previous case.

Built once per app (`QueueIndex.build`) from the run's applicants and flags:
every sort order is a precomputed permutation of all applicants, every
filter on what the run computed (flag code, model decision, flagged or not)
a precomputed mask. Only the review state changes while the app runs; it is
updated incrementally from the store (the entries after the last one seen),
and the matching positions of a query are cached until the states they
depend on change. So a page request costs a database look-up of what is new
plus the rows of its page, not a pass over 30,000 applicants
(bench/review_queue.py measures it on a real run).

Urgency, the default order: declined applicants near the threshold first,
then the other declined ones, then approved ones near the threshold, then
the rest; closest to the threshold first within each tier. "Near" is the
run's own borderline margin (the flag's `borderline_margin`, else the flag
rules' default), so the queue and the borderline flag mean the same thing.

The queue's state lives in the URL (`QueueQuery.params`): every link built
from a query (pages, applicant pages, back to the queue, save-and-next)
carries it, so an analyst never loses filters, order or page.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from urllib.parse import urlencode

import numpy as np
import pandas as pd

from pipeline.flags import FLAG_LABELS, FlagConfig

from ._claims import Claim
from ._decisions import PENDING_APPROVAL
from ._run import ReviewRun
from ._store import OUTCOME_LABELS, Outcome

PAGE_SIZE = 50
PAGE_MAX = 100_000
CACHE_QUERIES = 64  # cached query results (a few per analyst); the oldest is dropped first
ID_DIGITS = 19  # int64 ids: at most 19 digits
UNREVIEWED = -1
# the states a review can leave: an outcome in effect, or proposals awaiting a second person (four eyes)
OUTCOMES: tuple[str, ...] = (*(str(o) for o in Outcome), PENDING_APPROVAL)
DECIDING = (Outcome.CONFIRM, Outcome.OVERRIDE_APPROVE, Outcome.OVERRIDE_DECLINE)
OVERRIDES = (Outcome.OVERRIDE_APPROVE, Outcome.OVERRIDE_DECLINE)

SCOPES = {"flagged": "flagged applicants", "all": "every applicant"}
SORTS = {
    "urgency": "urgency (declined and borderline first)",
    "flags": "number of flags",
    "probability": "probability of default",
    "margin": "distance to threshold",
    "id": "applicant id",
}
STATES = {
    "all": "any state",
    "open": "open (not reviewed, not claimed)",
    "claimed": "claimed, not reviewed",
    "unreviewed": "not reviewed",
    "reviewed": "reviewed (any outcome)",
    PENDING_APPROVAL: "awaiting a second person's approval",
    **{str(k): v for k, v in OUTCOME_LABELS.items()},
}
DECISIONS = {"all": "any decision", "approve": "approved by the model", "decline": "declined by the model"}
ORDERS = {"desc": "highest first", "asc": "lowest first"}
URGENCY = ("declined, near the threshold", "declined", "approved, near the threshold", "approved")
CLAIM_STATES = ("open", "claimed")
MSG_BAD_FILTER = "{name} must be one of {allowed}, got {got!r}"
MSG_BAD_PAGE = f"page must be a whole number from 1 to {PAGE_MAX}, got {{got!r}}"
MSG_BAD_ID = f"an applicant id is a whole number of 1 to {ID_DIGITS} digits, got {{got!r}}"


class QueryError(ValueError):
    """A queue parameter outside what the queue offers (the route answers 422 with this message)."""


@dataclass(frozen=True)
class QueueQuery:
    """What the analyst asked the queue for: scope, filters, order and page (the URL's query string)."""

    scope: str = "flagged"
    code: str = "all"
    state: str = "all"
    decision: str = "all"
    sort: str = "urgency"
    order: str = "desc"
    page: int = 1

    def params(self, **change: object) -> dict[str, str]:
        """The query string's fields, every one spelt out, so a link restores exactly this view."""
        return {k: str(v) for k, v in asdict(replace(self, **change)).items()}

    def qs(self, **change: object) -> str:
        return urlencode(self.params(**change))

    def selection(self) -> tuple[str, ...]:
        """Everything but the page: what the matching positions depend on."""
        return (self.scope, self.code, self.state, self.decision, self.sort, self.order)


def parse_query(
    scope: str = "flagged",
    code: str = "all",
    state: str = "all",
    decision: str = "all",
    sort: str = "urgency",
    order: str = "desc",
    page: object = 1,
) -> QueueQuery:
    """A QueueQuery from URL text, or QueryError naming the parameter, what it allows and what came."""
    for name, value, allowed in (
        ("scope", scope, SCOPES),
        ("code", code, ["all", *FLAG_LABELS]),
        ("state", state, STATES),
        ("decision", decision, DECISIONS),
        ("sort", sort, SORTS),
        ("order", order, ORDERS),
    ):
        if value not in allowed:
            raise QueryError(MSG_BAD_FILTER.format(name=name, allowed=list(allowed), got=value))
    text = str(page)
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(PAGE_MAX))) or not 1 <= int(text) <= PAGE_MAX:
        raise QueryError(MSG_BAD_PAGE.format(got=text[:40]))
    return QueueQuery(scope, code, state, decision, sort, order, int(text))


def parse_id(text: str) -> int:
    """An applicant id typed into the search box (spaces and a leading '#' allowed), or QueryError."""
    s = str(text).strip().removeprefix("#").strip()
    if not (s.isascii() and s.isdigit() and len(s) <= ID_DIGITS) or int(s) > np.iinfo(np.int64).max:
        raise QueryError(MSG_BAD_ID.format(got=str(text)[:40]))
    return int(s)


def borderline_margin(run: ReviewRun) -> float:
    """The run's borderline margin: what its flags were computed with, else the flag rules' default."""
    flags = run.record.flags
    value = flags.config.get("borderline_margin") if flags is not None else None
    return float(value) if isinstance(value, int | float) else FlagConfig().borderline_margin


def urgency_tiers(probability: np.ndarray, decline: np.ndarray, threshold: float, margin: float) -> np.ndarray:
    """0 declined and near the threshold, 1 declined, 2 approved and near it, 3 approved (URGENCY's order)."""
    near = np.abs(probability - threshold) <= margin
    return np.where(decline, np.where(near, 0, 1), np.where(near, 2, 3)).astype(np.int8)


def pct(p: float) -> str:
    return f"{p * 100:.1f}%"


@dataclass(frozen=True)
class Match:
    """The positions (into the index) a selection matches, in display order, and their ranks in that order."""

    positions: np.ndarray
    ranks: np.ndarray  # increasing: searchsorted finds a case's place in O(log n)


@dataclass(frozen=True)
class Neighbours:
    previous: int | None
    next: int | None
    page: int  # the queue page holding the case (or where it would be) under this query


class QueueIndex:
    """Every applicant of one run, indexed for the queue; review states kept up to date from the store."""

    def __init__(self, run: ReviewRun) -> None:
        t = run.applicants.sort_index()
        self.ids = t.index.to_numpy(np.int64)
        self.probability = t["probability"].to_numpy(np.float64)
        self.decline = (t["decision"] == "decline").to_numpy(bool)
        self.threshold = float(run.threshold)
        self.margin = np.abs(self.probability - self.threshold)
        self.borderline_margin = borderline_margin(run)
        self.tier = urgency_tiers(self.probability, self.decline, self.threshold, self.borderline_margin)
        flags = run.flags
        where = np.searchsorted(self.ids, flags["id"].to_numpy(np.int64))
        self.n_flags = np.bincount(where, minlength=len(self.ids)).astype(np.int64)
        self.flagged = self.n_flags > 0
        self.code_masks = {}
        for code in flags["code"].unique():
            mask = np.zeros(len(self.ids), bool)
            mask[where[(flags["code"] == code).to_numpy()]] = True
            self.code_masks[str(code)] = mask
        self.flags_by_pos: dict[int, list[dict]] = {}
        for pos, code, reason in zip(where.tolist(), flags["code"].tolist(), flags["reason"].tolist(), strict=True):
            self.flags_by_pos.setdefault(pos, []).append(
                {"code": code, "label": FLAG_LABELS.get(code, code), "reason": reason}
            )
        counts = {c: int(m.sum()) for c, m in self.code_masks.items()}
        self.codes = [{"code": "all", "label": "any flag", "count": int(self.flagged.sum())}] + [
            {"code": c, "label": FLAG_LABELS.get(c, c), "count": counts[c]} for c in FLAG_LABELS if c in counts
        ]
        self.orders = {(s, o): self._order(s, o) for s in SORTS for o in ORDERS}
        self.ranks = {key: _inverse(perm) for key, perm in self.orders.items()}
        self.state = np.full(len(self.ids), UNREVIEWED, np.int8)
        self.reviewer: dict[int, str] = {}
        self.seen_seq = 0
        self.version = 0
        self._cache: OrderedDict[tuple, Match] = OrderedDict()
        self._reviewed = (0, 0)  # (version, count)
        self._lock = threading.Lock()

    @classmethod
    def build(cls, run: ReviewRun) -> QueueIndex:
        return cls(run)

    def _order(self, sort: str, order: str) -> np.ndarray:
        """The permutation for one sort and order; ties by id, ascending, in both orders."""
        sign = 1 if order == "desc" else -1  # "desc": most urgent, most flags, highest value first
        keys = {
            "urgency": (self.tier, self.margin),
            "flags": (-self.n_flags,),
            "probability": (-self.probability,),
            "margin": (-self.margin,),
            "id": (-self.ids,),
        }[sort]
        if sort == "id":
            return np.argsort(self.ids * -sign, kind="stable")
        return np.lexsort((self.ids, *(sign * k for k in reversed(keys))))

    # ---- review state ---------------------------------------------------------------------------
    def position(self, applicant_id: int) -> int | None:
        i = int(np.searchsorted(self.ids, applicant_id))
        return i if i < len(self.ids) and self.ids[i] == applicant_id else None

    def apply(self, states: Iterable[tuple[int, str, str]], seen_seq: int) -> None:
        """Take the states (applicant id, state code, reviewer) of the applicants new entries touched.

        The state is derived from all of an applicant's entries (review/_decisions.py), never
        from the newest one alone: a proposal that waits for a second person is not in effect.
        """
        with self._lock:
            for applicant, code, reviewer in states:
                pos = self.position(int(applicant))
                if pos is not None and code in OUTCOMES:
                    self.state[pos] = OUTCOMES.index(code)
                    self.reviewer[pos] = reviewer
            self.seen_seq = max(self.seen_seq, int(seen_seq))
            self.version += 1

    def refresh(self, store: object) -> None:
        """Read only what the store saved since the last look (the trail's sequence numbers)."""
        entries = store.entries_after(self.seen_seq)  # type: ignore[attr-defined]
        if not entries:
            return
        touched = sorted({int(e.record["applicant_id"]) for e in entries})
        states = (store.state(a) for a in touched)  # type: ignore[attr-defined]
        self.apply(((s.applicant_id, s.outcome, s.reviewer) for s in states), entries[-1].seq)

    def state_of(self, pos: int) -> str:
        s = int(self.state[pos])
        return "unreviewed" if s == UNREVIEWED else OUTCOMES[s]

    # ---- queries ------------------------------------------------------------------------------------
    def _mask(self, q: QueueQuery, claims: Mapping[int, Claim]) -> np.ndarray:
        keep = self.flagged.copy() if q.scope == "flagged" else np.ones(len(self.ids), bool)
        if q.code != "all":
            keep &= self.code_masks.get(q.code, np.zeros(len(self.ids), bool))
        if q.decision != "all":
            keep &= self.decline if q.decision == "decline" else ~self.decline
        if q.state in ("unreviewed", *CLAIM_STATES):
            keep &= self.state == UNREVIEWED
        elif q.state == "reviewed":
            keep &= self.state != UNREVIEWED
        elif q.state != "all":
            keep &= self.state == OUTCOMES.index(q.state)
        if q.state in CLAIM_STATES:
            held = np.zeros(len(self.ids), bool)
            positions = [p for p in map(self.position, claims) if p is not None]
            held[positions] = True
            keep &= held if q.state == "claimed" else ~held
        return keep

    def match(self, q: QueueQuery, claims: Mapping[int, Claim]) -> Match:
        """The positions the query selects, in order: cached per selection, review version and claims."""
        key = (
            q.selection(),
            self.version if q.state != "all" else None,
            tuple(sorted(claims)) if q.state in CLAIM_STATES else None,
        )
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            perm = self.orders[(q.sort, q.order)]
            positions = perm[self._mask(q, claims)[perm]]
            found = Match(positions, self.ranks[(q.sort, q.order)][positions])
            self._cache[key] = found
            if len(self._cache) > CACHE_QUERIES:
                self._cache.popitem(last=False)
            return found

    def pages(self, found: Match) -> int:
        return max(1, math.ceil(len(found.positions) / PAGE_SIZE))

    def page_positions(self, found: Match, page: int) -> np.ndarray:
        page = min(max(page, 1), self.pages(found))
        return found.positions[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]

    def neighbours(
        self, q: QueueQuery, applicant_id: int, claims: Mapping[int, Claim], holder: str | None = None
    ) -> Neighbours:
        """The cases before and after this one in the query's order, skipping those someone else holds.

        The case itself need not match any more (it was just reviewed): its place in the
        order is kept, so "next" is the case that followed it. Past the end "next" wraps
        round to the start (an earlier case may have been released meanwhile, and
        save-and-next should find it); "previous" stops at the first case.
        """
        found = self.match(q, claims)
        pos = self.position(applicant_id)
        if pos is None:
            return Neighbours(None, None, q.page)
        rank = int(self.ranks[(q.sort, q.order)][pos])
        after = int(np.searchsorted(found.ranks, rank, side="right"))
        before = int(np.searchsorted(found.ranks, rank, side="left"))
        nxt = self._walk(found, range(after, after + len(found.positions)), claims, holder, pos)
        prev = self._walk(found, range(before - 1, -1, -1), claims, holder, pos)
        return Neighbours(prev, nxt, before // PAGE_SIZE + 1)

    def _walk(
        self, found: Match, steps: range, claims: Mapping[int, Claim], holder: str | None, own: int
    ) -> int | None:
        """The first id along `steps` (match indices, wrapping) that is not this case nor held by someone else."""
        n = len(found.positions)
        for i in steps:
            pos = int(found.positions[i % n])
            applicant = int(self.ids[pos])
            claim = claims.get(applicant)
            if pos != own and (claim is None or claim.holder == holder):
                return applicant
        return None

    # ---- the page -----------------------------------------------------------------------------------
    def rows(self, positions: np.ndarray, claims: Mapping[int, Claim]) -> list[dict]:
        """The finished strings of one page's rows (the only per-row work a request does)."""
        out = []
        for pos in positions.tolist():
            applicant = int(self.ids[pos])
            state = self.state_of(pos)
            claim = claims.get(applicant)
            out.append(
                {
                    "id": applicant,
                    "probability": pct(float(self.probability[pos])),
                    "decision": "decline" if self.decline[pos] else "approve",
                    "urgency": URGENCY[int(self.tier[pos])],
                    "flags": self.flags_by_pos.get(pos, []),
                    "state": state,
                    "state_label": STATES.get(state, "not reviewed"),
                    "reviewer": self.reviewer.get(pos, ""),
                    "claim": None if claim is None else {"holder": claim.holder, "until": claim.until},
                }
            )
        return out

    def reviewed(self) -> int:
        """Flagged applicants with a review: counted once per review version, not per request."""
        with self._lock:
            if self._reviewed[0] != self.version:
                self._reviewed = (self.version, int(((self.state != UNREVIEWED) & self.flagged).sum()))
            return self._reviewed[1]

    def api_rows(self, found: Match) -> list[dict]:
        """The JSON API's rows: every match (the API is for tools that want the whole list)."""
        frame = pd.DataFrame(
            {
                "id": self.ids[found.positions],
                "probability": self.probability[found.positions],
                "decision": np.where(self.decline[found.positions], "decline", "approve"),
            }
        )
        return [
            {
                "id": int(r.id),
                "probability": float(r.probability),
                "decision": r.decision,
                "flags": [f["code"] for f in self.flags_by_pos.get(int(pos), [])],
                "state": self.state_of(int(pos)),
                "urgency": URGENCY[int(self.tier[pos])],
            }
            for pos, r in zip(found.positions.tolist(), frame.itertuples(index=False), strict=True)
        ]


def _inverse(perm: np.ndarray) -> np.ndarray:
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    return inv


def queue_view(run: ReviewRun, index: QueueIndex, q: QueueQuery, claims: Mapping[int, Claim]) -> dict:
    """Everything the queue page prints for this query."""
    found = index.match(q, claims)
    pages = index.pages(found)
    page = min(q.page, pages)
    shown = replace(q, page=page)
    return {
        "run_id": run.run_id,
        "threshold": pct(index.threshold),
        "borderline": f"{index.borderline_margin * 100:.1f} points",
        "rows": index.rows(index.page_positions(found, page), claims),
        "total_flagged": index.codes[0]["count"],
        "applicants": len(index.ids),
        "matching": len(found.positions),
        "reviewed": index.reviewed(),
        "claimed": len(claims),
        "page": page,
        "pages": pages,
        "query": shown,
        "qs": shown.qs(),
        "prev_qs": shown.qs(page=page - 1) if page > 1 else None,
        "next_qs": shown.qs(page=page + 1) if page < pages else None,
        "codes": index.codes,
        "scopes": SCOPES,
        "states": STATES,
        "decisions": DECISIONS,
        "sorts": SORTS,
        "orders": ORDERS,
        "flags_computed_here": run.flags_computed_here,
        "has_report": run.report_pdf() is not None,
    }
