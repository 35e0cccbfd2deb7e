"""Four eyes: which reviews are in effect, derived from the trail alone.

Every trail entry is one of three actions by an authenticated account:

- `propose`: an analyst's (or approver's) review of an applicant: confirm,
  override to approve or decline, or ask for more information;
- `approve`: a second, *different* person with the approver role puts a
  pending proposal in effect;
- `reject`: an approver turns a pending proposal down (nothing changes, so
  one person suffices).

A proposal takes effect at once unless `needs_second_person` says otherwise:
an override of the model, or the reversal of a decision already in effect,
waits for an approval. An applicant's state is the fold of their entries in
trail order (`fold`); nothing is stored beside the trail that could disagree
with it. Pending proposals stay pending, side by side, until each is
approved or rejected: a newer proposal never silently replaces an older one.
Entries written before accounts existed (no `action`) took effect when saved
and are read that way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

DECIDED = ("approve", "decline")
PENDING_APPROVAL = "pending_approval"
UNREVIEWED = "unreviewed"
ST_DIRECT = "in effect"
ST_APPROVED = "in effect: approved by {name} (#{seq})"
ST_PENDING = "awaiting approval by a second person (an approver)"
ST_REJECTED = "rejected by {name} (#{seq})"
ST_REPLACED = "was in effect until #{seq}"
ST_APPROVES = "approves #{seq}"
ST_REJECTS = "rejects #{seq}"


class Review(Protocol):
    """What the fold reads of a saved review (_store.Review; a protocol, so the store can import this module)."""

    seq: int
    applicant_id: int
    model_decision: str
    outcome: str
    reviewer: str
    action: str | None
    target: int | None

    @property
    def final_decision(self) -> str: ...

    @property
    def outcome_label(self) -> str: ...


class Action(StrEnum):
    PROPOSE = "propose"
    APPROVE = "approve"
    REJECT = "reject"


def needs_second_person(final: str, model_decision: str, in_effect: str | None) -> bool:
    """True for an override of the model, or for the reversal of a decision already in effect."""
    if final in DECIDED and final != model_decision:
        return True
    return in_effect in DECIDED and final != in_effect


@dataclass
class ApplicantState:
    """One applicant's reviews folded: the proposal in effect, who approved it, what is still pending."""

    applicant_id: int
    model_decision: str
    in_effect: Review | None = None  # the proposal in effect
    approval: Review | None = None  # the approval that put it in effect (None: it took effect directly)
    pending: dict[int, Review] = field(default_factory=dict)  # seq -> proposal awaiting a second person
    status: dict[int, str] = field(default_factory=dict)  # seq -> what became of each entry
    effected: list[int] = field(default_factory=list)  # seqs of the entries that put a decision in effect

    @property
    def final_decision(self) -> str:
        """The decision in effect: the reviewed one, else the model's."""
        return self.in_effect.final_decision if self.in_effect else self.model_decision

    @property
    def outcome(self) -> str:
        """The queue's state code: pending approval first (someone must act), then the outcome in effect."""
        if self.pending:
            return PENDING_APPROVAL
        return self.in_effect.outcome if self.in_effect else UNREVIEWED

    @property
    def outcome_label(self) -> str:
        if self.pending:
            return f"{len(self.pending)} awaiting approval"
        return self.in_effect.outcome_label if self.in_effect else "not reviewed"

    @property
    def reviewer(self) -> str:
        """Who put the decision in effect (and who approved it), else who proposed what is pending."""
        if self.in_effect is not None:
            by = self.in_effect.reviewer
            return f"{by}, approved by {self.approval.reviewer}" if self.approval else by
        return ", ".join(sorted({r.reviewer for r in self.pending.values()}))

    @property
    def took_effect_at(self) -> Review | None:
        """The entry at which the decision in effect took effect (its approval, or the proposal itself)."""
        return self.approval or self.in_effect

    def apply(self, entry: Review) -> None:
        """Fold one more entry of this applicant (in trail order)."""
        action = entry.action or Action.PROPOSE
        if action == Action.PROPOSE:
            current = self.in_effect.final_decision if self.in_effect else None
            if entry.action is not None and needs_second_person(entry.final_decision, self.model_decision, current):
                self.pending[entry.seq] = entry
                self.status[entry.seq] = ST_PENDING
            else:
                self._take_effect(entry, None)
            return
        proposal = self.pending.pop(int(entry.target or 0), None)
        if proposal is None:  # the store never writes this; a tampered trail is verify's to report
            return
        if action == Action.APPROVE:
            self._take_effect(proposal, entry)
            self.status[entry.seq] = ST_APPROVES.format(seq=proposal.seq)
        else:
            self.status[proposal.seq] = ST_REJECTED.format(name=entry.reviewer, seq=entry.seq)
            self.status[entry.seq] = ST_REJECTS.format(seq=proposal.seq)

    def _take_effect(self, proposal: Review, approval: Review | None) -> None:
        if self.in_effect is not None:
            self.status[self.in_effect.seq] = ST_REPLACED.format(seq=(approval or proposal).seq)
        self.in_effect, self.approval = proposal, approval
        self.effected.append((approval or proposal).seq)
        self.status[proposal.seq] = (
            ST_APPROVED.format(name=approval.reviewer, seq=approval.seq) if approval else ST_DIRECT
        )


def fold(reviews: Iterable[Review]) -> dict[int, ApplicantState]:
    """Every reviewed applicant's state from their entries, read in trail (seq) order."""
    states: dict[int, ApplicantState] = {}
    for r in sorted(reviews, key=lambda r: r.seq):
        state = states.get(r.applicant_id)
        if state is None:
            state = states[r.applicant_id] = ApplicantState(r.applicant_id, r.model_decision)
        state.apply(r)
    return states
