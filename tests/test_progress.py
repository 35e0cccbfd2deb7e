"""Progress lines: counts, rate and time left, at most one per interval, and a heartbeat while nothing finishes."""

from __future__ import annotations

import time

from flows.progress import Progress, heartbeat


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_carry_count_rate_and_time_left():
    clock, lines = Clock(), []
    p = Progress("notices", 1000, lines.append, every_s=5.0, clock=clock)
    clock.now = 2.0
    p.update(40)  # not due yet
    clock.now = 10.0
    p.update(200)
    assert lines == ["notices: 200 of 1,000 (20%), 20.0 per second, about 40 s left"]
    clock.now = 11.0
    p.update(1000)  # the last line always comes
    assert lines[-1] == "notices: 1,000 of 1,000 (100%), 90.9 per second"


def test_a_resumed_step_counts_only_fresh_work_in_the_rate():
    clock, lines = Clock(), []
    p = Progress("notices", 100, lines.append, already=60, every_s=1.0, clock=clock)
    clock.now = 4.0
    p.update(80)
    assert lines == ["notices: 80 of 100 (80%), 5.0 per second, about 4 s left"]


def test_heartbeat_speaks_while_a_long_chunk_runs():
    lines: list[str] = []
    p = Progress("explanations (applicants)", 30_000, lines.append, every_s=0.05)
    with heartbeat(p, every_s=0.05):
        time.sleep(0.3)
    assert lines and all("still working" in line for line in lines)
    assert lines[0].startswith("explanations (applicants): 0 of 30,000 (0%)")
