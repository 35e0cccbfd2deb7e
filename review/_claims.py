"""Claims: which reviewer is working on a case right now, so two analysts do not work the same one.

A claim is coordination, not a decision: it is kept in its own table of the
review database (beside the reviews, so every app process and host that
shares the database sees the same claims) and never enters the signed
trail. A claim lasts CLAIM_MINUTES and is renewed when its holder claims
again; it ends when its holder saves a review of the case, releases it, or
when it expires. A live claim of someone else is shown, never taken over:
saving a review of a case someone else holds is refused.

The holder is a reviewer identity string handed in by the caller (the app's
signed-in user), so this module does not know how people sign in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, Integer, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ._accounts import AccountError, normalize_name

CLAIM_MINUTES = 30
HOLDER_MAX = 80
MSG_HELD = "applicant {id} is being reviewed by {holder} (claimed until {until} UTC)"
MSG_NO_HOLDER = "a claim needs the reviewer's identity"


class _Base(DeclarativeBase):
    pass


class ClaimRow(_Base):
    """One live (or expired, not yet replaced) claim; at most one per applicant."""

    __tablename__ = "claims"
    applicant_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[str] = mapped_column(String(HOLDER_MAX))
    claimed: Mapped[str] = mapped_column(String(40))
    expires: Mapped[str] = mapped_column(String(40), index=True)


@dataclass(frozen=True)
class Claim:
    applicant_id: int
    holder: str
    claimed: datetime
    expires: datetime

    @property
    def until(self) -> str:
        """The expiry as a reader wants it on a page: hours and minutes, UTC."""
        return self.expires.strftime("%H:%M")

    @classmethod
    def from_row(cls, row: ClaimRow) -> Claim:
        return cls(row.applicant_id, row.holder, _parse(row.claimed), _parse(row.expires))


class ClaimTaken(Exception):
    """Someone else holds a live claim on the case; `claim` says who and until when."""

    def __init__(self, claim: Claim) -> None:
        super().__init__(MSG_HELD.format(id=claim.applicant_id, holder=claim.holder, until=claim.until))
        self.claim = claim


def _stamp(t: datetime) -> str:
    """ISO text in UTC with a fixed width, so that text order is time order (the expiry index relies on it)."""
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(s: str) -> datetime:
    return datetime.fromisoformat(s)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


class Claims:
    """The claims of one run's review database (the store's engine)."""

    def __init__(self, engine: Engine, minutes: int = CLAIM_MINUTES) -> None:
        self.engine = engine
        self.length = timedelta(minutes=minutes)
        _Base.metadata.create_all(engine)

    def claim(self, applicant_id: int, holder: str, now: datetime | None = None) -> Claim:
        """Take (or renew) the claim; ClaimTaken when another reviewer holds a live one.

        Insert first; when a row exists, take it over only if it expired or is the holder's
        own, in one conditional UPDATE, so two reviewers claiming at once cannot both win.
        """
        if not holder:
            raise ValueError(MSG_NO_HOLDER)
        t = _now(now)
        row = {"holder": holder, "claimed": _stamp(t), "expires": _stamp(t + self.length)}
        try:
            with Session(self.engine) as session, session.begin():
                session.add(ClaimRow(applicant_id=int(applicant_id), **row))
        except IntegrityError:
            with Session(self.engine) as session, session.begin():
                taken = session.execute(
                    update(ClaimRow)
                    .where(ClaimRow.applicant_id == int(applicant_id))
                    .where((ClaimRow.expires <= _stamp(t)) | (ClaimRow.holder == holder))
                    .values(**row)
                ).rowcount
            if not taken:
                held = self.holder_of(applicant_id, t)
                if held is not None:
                    raise ClaimTaken(held) from None
                return self.claim(applicant_id, holder, t)  # it expired or was released in between
        return Claim(int(applicant_id), holder, t, t + self.length)

    def release(self, applicant_id: int, holder: str) -> bool:
        """End the holder's claim (after a save, or when they let the case go); False when they held none."""
        with Session(self.engine) as session, session.begin():
            gone = session.execute(
                delete(ClaimRow).where(ClaimRow.applicant_id == int(applicant_id), ClaimRow.holder == holder)
            ).rowcount
        return bool(gone)

    def holder_of(self, applicant_id: int, now: datetime | None = None) -> Claim | None:
        """The live claim on this case, None when nobody holds it."""
        with Session(self.engine) as session:
            row = session.get(ClaimRow, int(applicant_id))
            if row is None or row.expires <= _stamp(_now(now)):
                return None
            return Claim.from_row(row)

    def live(self, now: datetime | None = None) -> dict[int, Claim]:
        """Every live claim by applicant id (a handful per reviewer, read through the expiry index)."""
        with Session(self.engine) as session:
            rows = session.scalars(select(ClaimRow).where(ClaimRow.expires > _stamp(_now(now)))).all()
            return {r.applicant_id: Claim.from_row(r) for r in rows}

    def check(self, applicant_id: int, holder: str, now: datetime | None = None) -> None:
        """ClaimTaken when someone other than `holder` holds a live claim on the case."""
        held = self.holder_of(applicant_id, now)
        if held is not None and held.holder != holder:
            raise ClaimTaken(held)


def clean_holder(name: object) -> str:
    """A claim holder: an account name, by the accounts' one rule (ValueError otherwise)."""
    try:
        return normalize_name(name)
    except AccountError as exc:
        raise ValueError(str(exc)) from None
