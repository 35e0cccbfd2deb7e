"""What a demographic-shift check says, as written on the command line or in `[audit.shift] checks`.

A check moves one group's share of the held-out population by a stated number
of points and asks how every fairness figure moves (the computation is
`pipeline.fairness.audit_shift`). This module only reads the text, so the
configuration and the command line can refuse a malformed check in a
millisecond, before any data or model is loaded (no torch, no pandas):

    SEX:+0.1               the attribute's least-favoured group (lowest approval rate
                           in the unshifted audit) gains 10 points of share
    SEX:female-0.05        the group "female" loses 5 points
    SEX x AGE band:female, under 30+0.1    an intersection cell
    all                    every protected attribute, its least-favoured group, +0.1 and -0.1

The change is in share points (0.1 = 10 percentage points), with its sign
written, strictly between -1 and 1 and not 0. Whether the attribute and the
group exist and whether the new share stays strictly between 0 and 1 depends
on the data: `pipeline.fairness.resolve_shifts` checks that once the
held-out split is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALL = "all"
DEFAULT_SHIFT = 0.1  # points of share `all` moves each attribute's least-favoured group, both ways
SHIFT_SEP = ":"
MSG_SYNTAX = (
    "shift check {text!r}: expected ATTRIBUTE:+0.1, ATTRIBUTE:GROUP-0.05 or 'all' (the change in share "
    "points, sign written)"
)
MSG_RANGE = "shift check {text!r}: the change must be strictly between -1 and 1 and not 0, got {delta:g}"
_DELTA = re.compile(r"(?P<delta>[+-](?:\d+(?:\.\d*)?|\.\d+))$")


@dataclass(frozen=True)
class ShiftSpec:
    """One check: `group` None means the attribute's least-favoured group (chosen once the audit has run)."""

    attribute: str
    group: str | None
    delta: float
    text: str

    def label(self, group: str | None = None) -> str:
        """The check as a reader sees it: `SEX: female +10 points`."""
        target = group or self.group or "least-favoured group"
        return f"{self.attribute}: {target} {self.delta * 100:+g} points"


def parse_shift(text: str) -> tuple[ShiftSpec, ...] | None:
    """The check(s) `text` asks for; None for `all` (every attribute: expanded once the groups are known).

    Raises ValueError with the text and what was expected.
    """
    stripped = text.strip()
    if stripped.lower() == ALL:
        return None
    attribute, sep, rest = stripped.partition(SHIFT_SEP)
    match = _DELTA.search(rest)
    if not sep or not attribute.strip() or match is None:
        raise ValueError(MSG_SYNTAX.format(text=text))
    delta = float(match["delta"])
    if not -1 < delta < 1 or delta == 0:
        raise ValueError(MSG_RANGE.format(text=text, delta=delta))
    group = rest[: match.start()].strip() or None
    return (ShiftSpec(attribute.strip(), group, delta, stripped),)


def check_shift_texts(texts: list[str] | tuple[str, ...]) -> None:
    """Every text parses (configuration validation); raises ValueError naming the first that does not."""
    for text in texts:
        parse_shift(text)
