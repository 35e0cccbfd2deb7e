#!/usr/bin/env bash
# Writes requirements-runtime.lock: the runtime dependencies of pyproject.toml, resolved
# in a fresh virtual environment under the pins of requirements.lock (the full
# development tree), then frozen. The image installs exactly this file, so it holds
# what an audit needs and nothing of the test, benchmark and browser tools.
# Usage: scripts/lock-runtime.sh [PYTHON]   (about 4 minutes on 2 cores; prints the venv's size)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-python3.11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
"$PYTHON" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
  pyproject.toml > "$work/runtime.in"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check -c requirements.lock -r "$work/runtime.in"
"$work/venv/bin/pip" check
{
  echo "# The runtime tree only (what the image installs): written by scripts/lock-runtime.sh from"
  echo "# pyproject.toml's dependencies under the pins of requirements.lock. Do not edit by hand."
  # --all keeps setuptools (torch needs a newer one than a venv starts with); pip itself is not pinned.
  # The CPU wheel carries a local version label (+cpu); == without it accepts either build.
  "$work/venv/bin/pip" freeze --all --exclude pip --disable-pip-version-check | sed -E 's/^torch==([^+]+)\+.*/torch==\1/'
  # Pins with an environment marker (e.g. async-timeout, which redis needs before Python 3.11.3, as in
  # Debian bookworm's 3.11.2 that the image runs) are carried over: this interpreter may not need them.
  grep -E '^[^#].*;' requirements.lock || true
} > "$work/runtime.lock"
# The same order as requirements.lock (pip freeze's), so the two diff cleanly.
"$PYTHON" - "$work/runtime.lock" <<'PY'
import re, sys
key = lambda line: re.split(r"[=; ]", line, maxsplit=1)[0].lower().replace("_", "-")
order = {key(l): i for i, l in enumerate(open("requirements.lock")) if l.strip() and not l.startswith("#")}
header, pins = [], []
for line in open(sys.argv[1]).read().splitlines():
    (header if line.startswith("#") else pins).append(line)
pins.sort(key=lambda line: order.get(key(line), len(order)))
open("requirements-runtime.lock", "w").write("\n".join(header + pins) + "\n")
PY
echo "requirements-runtime.lock: $(grep -c '==' requirements-runtime.lock) packages;" \
     "runtime venv $(du -sm "$work/venv" | cut -f1) MB"
