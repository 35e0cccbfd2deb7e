"""End-to-end bench: the full audit of the real 30,000-row file, as `credit-audit run` runs it.

Trains, explains every applicant, audits fairness with bootstrap intervals,
writes the global report and renders the notice of every declined applicant,
in a subprocess (`python -m flows.cli run`). While it runs, the resident
memory of the whole process tree (the flow, its notice worker processes and
Prefect's embedded server) is sampled with psutil every 0.2 s. Prints the
per-step times recorded in audit.json, total wall time and peak memory
against the issue's goals (<= 15 min, <= 4 GiB on the 2-core machine).

    .venv/bin/python bench/audit.py [--data CSV] [--out DIR] [--device cpu|cuda|auto] [--notice-limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "UCI_Credit_Card.csv"
GOAL_WALL_S = 15 * 60
GOAL_PEAK_GIB = 4.0
GOAL_GPU_EXPLAIN_S = 10.0
SAMPLE_S = 0.2
PROGRESS_S = 30.0
GIB = 1024**3


class TreeMemory:
    """Peak resident memory of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid: int, report=None) -> None:  # noqa: ANN001 - report(self) every PROGRESS_S
        self.root = psutil.Process(pid)
        self.report = report
        self.peak_total = 0
        self.peak_root = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        total = 0
        for p in procs:
            try:
                rss = p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            total += rss
            if p.pid == self.root.pid:
                self.peak_root = max(self.peak_root, rss)
        self.peak_total = max(self.peak_total, total)
        self.peak_processes = max(self.peak_processes, len(procs))

    def _loop(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            self._sample()
            if self.report and time.monotonic() - last >= PROGRESS_S:
                last = time.monotonic()
                self.report(self)
            self._stop.wait(SAMPLE_S)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_audit(data: Path, out: Path, device: str, notice_limit: int | None) -> tuple[float, TreeMemory, int]:
    cmd = [sys.executable, "-m", "flows.cli", "run", "--data", str(data), "--out", str(out), "--device", device]
    if notice_limit is not None:
        cmd += ["--notice-limit", str(notice_limit)]
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    log = (out.parent / f"{out.name}.log").open("w")
    start = time.perf_counter()
    notices = out / "reports" / "notices"

    def progress(mem: TreeMemory) -> None:  # partial figures survive an interrupted bench
        done = len(list(notices.glob("*.pdf"))) if notices.exists() else 0
        print(f"  {time.perf_counter() - start:7.0f} s: peak RSS so far {mem.peak_total / GIB:.2f} GiB, "
              f"{done} notices, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)

    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    with TreeMemory(proc.pid, progress) as mem:
        rc = proc.wait()
    wall = time.perf_counter() - start
    log.close()
    return wall, mem, rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REAL_DATA)
    ap.add_argument("--out", type=Path, default=None, help="run directory (default: a fresh temporary one)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    ap.add_argument("--notice-limit", type=int, default=None, help="default: every declined applicant")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-audit-")) / "run"
    load_before = os.getloadavg()
    print(f"full audit of {args.data} -> {out} (device {args.device}, {psutil.cpu_count()} cores, "
          f"load average {load_before[0]:.1f} / {load_before[1]:.1f} / {load_before[2]:.1f})", flush=True)
    wall, mem, rc = run_audit(args.data, out, args.device, args.notice_limit)
    load_after = os.getloadavg()
    if rc != 0:
        print(f"credit-audit run failed (exit {rc}) after {wall:.0f} s, peak RSS {mem.peak_total / GIB:.2f} GiB; "
              f"log: {out.parent / (out.name + '.log')}")
        return rc
    audit = json.loads((out / "audit.json").read_text())
    notices = len(list((out / "reports" / "notices").glob("*.pdf")))
    print(f"\n{'step':<22}{'seconds':>10}")
    timings = audit.get("timings", {})
    for step, seconds in timings.items():
        print(f"{step:<22}{seconds:>10.1f}")
    inside = sum(timings.values())
    print(f"{'(sum of steps)':<22}{inside:>10.1f}")
    print(f"{'process wall time':<22}{wall:>10.1f}   (includes Python/Prefect start-up, artifacts, manifest)")
    print(f"\napplicants {audit['data'].get('rows', '?')}, declined {audit['decisions'].get('decline', 0)}, "
          f"notices rendered {notices}")
    print(f"peak RSS, whole process tree (sum, sampled every {SAMPLE_S} s): {mem.peak_total / GIB:.2f} GiB "
          f"(main process alone {mem.peak_root / GIB:.2f} GiB; up to {mem.peak_processes} processes)")
    print(f"load average after: {load_after[0]:.1f} / {load_after[1]:.1f} / {load_after[2]:.1f}")
    top = sorted(timings.items(), key=lambda kv: -kv[1])[:2]
    print("largest steps: " + ", ".join(f"{k} {v:.0f} s ({v / max(inside, 1e-9):.0%})" for k, v in top))
    ok_wall = wall <= GOAL_WALL_S
    ok_mem = mem.peak_total <= GOAL_PEAK_GIB * GIB
    print(f"\ngoal wall time <= {GOAL_WALL_S / 60:.0f} min: {'met' if ok_wall else 'NOT met'} ({wall / 60:.1f} min)")
    print(f"goal peak memory <= {GOAL_PEAK_GIB:.0f} GiB: {'met' if ok_mem else 'NOT met'} ({mem.peak_total / GIB:.2f} GiB)")
    if audit.get("device", "cpu").startswith("cuda"):
        explain = timings.get("explain", float("nan"))
        print(f"goal GPU explanation <= {GOAL_GPU_EXPLAIN_S:.0f} s: {'met' if explain <= GOAL_GPU_EXPLAIN_S else 'NOT met'} "
              f"({explain:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
