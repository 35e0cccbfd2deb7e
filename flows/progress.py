"""Progress of the long steps, as log lines a person or a scheduler's log can follow.

The two long steps (explanations, notices) run for minutes. A line with the
count, the rate and the time left at most every few seconds (and at the end)
tells an operator the run is alive and when it will finish, in a terminal and
in Prefect's log alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

EVERY_S = 5.0  # at most one line per this many seconds (the issue asks for one at least every 10 s)


class Progress:
    """Counts of one step; `update(done)` logs when a line is due."""

    def __init__(self, what: str, total: int, log: Callable[[str], None], already: int = 0,
                 every_s: float = EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.total, self.log, self.every_s, self.clock = what, total, log, every_s, clock
        self.already = already  # done before this invocation (resumed): not counted in the rate
        self.start = self.last = clock()

    def line(self, done: int) -> str:
        elapsed = max(self.clock() - self.start, 1e-9)
        fresh = done - self.already
        rate = fresh / elapsed
        share = done / self.total if self.total else 1.0
        text = f"{self.what}: {done:,} of {self.total:,} ({share:.0%}), {rate:.1f} per second"
        if done < self.total and rate > 0:
            text += f", about {(self.total - done) / rate:.0f} s left"
        return text

    def update(self, done: int) -> None:
        now = self.clock()
        if done >= self.total or now - self.last >= self.every_s:
            self.last = now
            self.log(self.line(done))
