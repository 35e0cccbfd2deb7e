#!/usr/bin/env bash
# Builds the image from the Dockerfile and checks that it really works: as its non-root
# user, with no network, it audits a slice of the real file mounted read-only, the run's
# outputs are there and `credit-audit verify` (inside the image) accepts the manifest and
# the review trail; then the review app from the image answers on 127.0.0.1. Prints the
# build time, the image size and the torch build, the figures the README quotes.
#
# Usage: scripts/check-image.sh [DATA_CSV]     (env: ROWS=1000, IMAGE_TAG=credit-audit:check)
# Builds with ../shared/tools/oci-build.sh when present (closed network: local Debian base and a
# local python:3.11-slim-bookworm stand-in), else with plain `podman build`. Needs root for the former.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${IMAGE_TAG:-credit-audit:check}
ROWS=${ROWS:-1000}
OCI_BUILD=${OCI_BUILD:-../shared/tools/oci-build.sh}

fail() { echo "check-image: FAILED: $*" >&2; exit 1; }

# The data, found as the tests find it: ../shared/data (CI), $CREDIT_AUDIT_DATA, data/.
DATA=${1:-}
if [ -z "$DATA" ]; then
  for candidate in ../shared/data/UCI_Credit_Card.csv "${CREDIT_AUDIT_DATA:-}" data/UCI_Credit_Card.csv; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then DATA=$candidate; break; fi
  done
fi
[ -n "$DATA" ] && [ -f "$DATA" ] || fail "no data file: pass one, or put it at ../shared/data/UCI_Credit_Card.csv, \$CREDIT_AUDIT_DATA or data/UCI_Credit_Card.csv"

# ---- build -----------------------------------------------------------------------------------
build_log=$(mktemp)
start=$(date +%s)
if [ -f "$OCI_BUILD" ]; then
  # builds, then runs `credit-audit --help` once
  bash "$OCI_BUILD" . "$TAG" -- --help > "$build_log" 2>&1 || { grep -v "^WARNING: Location" "$build_log" | tail -n 60; fail "the image did not build (log: $build_log)"; }
  export CONTAINERS_CONF=${OCI_WORK:-/var/tmp/oci-build}/containers.conf   # runc, ulimits (see that script)
else
  podman build -t "$TAG" . > "$build_log" 2>&1 || { grep -v "^WARNING: Location" "$build_log" | tail -n 60; fail "the image did not build (log: $build_log)"; }
fi
build_s=$(( $(date +%s) - start ))
rm -f "$build_log"

# ---- the audit of a slice, as the image's user, offline -------------------------------------
work=$(mktemp -d)
review_name="credit-audit-check-$$"
cleanup() { podman rm -f "$review_name" > /dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/data" "$work/runs" "$work/secrets"
head -n "$((ROWS + 1))" "$DATA" > "$work/data/UCI_Credit_Card.csv"   # a slice, written here only
chmod a+rx "$work" "$work/data" && chmod a+r "$work/data/UCI_Credit_Card.csv" && chmod a+rwx "$work/runs" "$work/secrets"
# The operator's keystore lives outside the run: mounted from the host, the key made by the image's own command.
mounts=(-v "$work/data:/app/data:ro" -v "$work/runs:/app/runs" -v "$work/secrets:/secrets"
        -e CREDIT_AUDIT_KEYSTORE=/secrets/keys)
podman run --rm --network none "${mounts[@]}" "$TAG" keys init > "$work/keys.log" 2>&1 \
  || { cat "$work/keys.log"; fail "credit-audit keys init failed in the image"; }

start=$(date +%s)
podman run --rm --network none "${mounts[@]}" "$TAG" run --device cpu --out /app/runs/slice --notice-limit 5 \
  > "$work/run.log" 2>&1 || { tail -n 40 "$work/run.log"; fail "the audit exited non-zero"; }
audit_s=$(( $(date +%s) - start ))
run="$work/runs/slice"
for f in audit.json manifest.json applicants.parquet reports/audit_report.pdf; do
  [ -s "$run/$f" ] || fail "the run has no $f"
done
head -c 5 "$run/reports/audit_report.pdf" | grep -q '%PDF-' || fail "audit_report.pdf is not a PDF"
notices=$(find "$run/reports/notices" -name '*.pdf' | wc -l)
[ "$notices" -eq 5 ] || fail "expected 5 notices, found $notices"
owner=$(stat -c %u "$run/audit.json")
[ "$owner" != 0 ] || fail "the run was written by root; the image must run as its own user"

verify=$(podman run --rm --network none "${mounts[@]}" "$TAG" verify --run /app/runs/slice \
  --public-key /secrets/keys/signing-key.pub) \
  || { echo "$verify"; fail "credit-audit verify rejected the run"; }
echo "$verify" | grep -q "^verified against key .*: no altered, missing or removed record" || fail "unexpected verify output: $verify"

# ---- the review app from the image, reached on the host's loopback --------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
podman run -d --name "$review_name" --network host "${mounts[@]}" "$TAG" \
  review --run /app/runs/slice --host 127.0.0.1 --port "$port" > /dev/null
answered=""
for _ in $(seq 1 90); do
  if answered=$(python3 - "$port" 2> /dev/null <<'PY'
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=5) as r:
    print(r.read().decode())
PY
  ); then break; fi
  answered=""
  sleep 1
done
[ -n "$answered" ] || { podman logs "$review_name" | tail -n 20; fail "the review app did not answer on 127.0.0.1:$port"; }
podman rm -f "$review_name" > /dev/null

# ---- figures ---------------------------------------------------------------------------------
size=$(podman image inspect "$TAG" --format '{{.Size}}')
torch=$(podman run --rm --network none --entrypoint python "$TAG" -c 'import torch; print(torch.__version__)')
user=$(podman run --rm --network none --entrypoint id "$TAG" -un)
echo "check-image: ok: $TAG built in ${build_s} s, $((size / 1000000)) MB, torch $torch, runs as $user"
echo "check-image: audit of $ROWS rows in ${audit_s} s (offline): report, $notices notices, manifest verified"
echo "check-image: review app answered on 127.0.0.1:$port: $answered"
