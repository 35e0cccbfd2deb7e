"""Progress of the long steps, as log lines a person or a scheduler's log can follow.

The two long steps (explanations, notices) run for minutes. A line with the
count, the rate and the time left at most every few seconds (and at the end)
tells an operator the run is alive and when it will finish, in a terminal and
in Prefect's log alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

EVERY_S = 5.0  # at most one line per this many seconds (the issue asks for one at least every 10 s)


class Progress:
    """Counts of one step; `update(done)` logs when a line is due."""

    def __init__(self, what: str, total: int, log: Callable[[str], None], already: int = 0,
                 every_s: float = EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.total, self.log, self.every_s, self.clock = what, total, log, every_s, clock
        self.already = already  # done before this invocation (resumed): not counted in the rate
        self.done = already
        self.start = self.last = clock()
        self._lock = threading.Lock()

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
        with self._lock:
            self.done = done
            now = self.clock()
            if done >= self.total or now - self.last >= self.every_s:
                self.last = now
                self.log(self.line(done))

    def tick(self) -> None:
        """A line even when no item finished lately (a long chunk), so silence never means a hang."""
        with self._lock:
            now = self.clock()
            if now - self.last >= self.every_s and self.done < self.total:
                self.last = now
                self.log(self.line(self.done) + f", still working ({now - self.start:.0f} s in)")


@contextmanager
def heartbeat(progress: Progress, every_s: float = EVERY_S) -> Iterator[Progress]:
    """Call `progress.tick()` every `every_s` seconds from a daemon thread while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            progress.tick()

    thread = threading.Thread(target=beat, name="progress-heartbeat", daemon=True)
    thread.start()
    try:
        yield progress
    finally:
        stop.set()
        thread.join(timeout=every_s)
