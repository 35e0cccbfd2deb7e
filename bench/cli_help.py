"""Time `credit-audit <command> --help` for every command (median of 5 runs each), as a user would wait for it.

    .venv/bin/python bench/cli_help.py

Help must answer at once: command modules import torch, Prefect and the data
libraries only inside the commands that need them.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("", "run", "review", "verify", "notice", "schedule", "keys", "users")
RUNS = 5


def seconds(command: str) -> float:
    args = [sys.executable, "-m", "flows.cli", *([command] if command else []), "--help"]
    start = time.perf_counter()
    subprocess.run(args, cwd=REPO, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    for command in COMMANDS:
        times = [seconds(command) for _ in range(RUNS)]
        print(f"credit-audit {command or ''} --help".replace("  ", " ")
              + f": median {statistics.median(times):.3f} s, worst {max(times):.3f} s")


if __name__ == "__main__":
    main()
