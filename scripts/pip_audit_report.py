"""Run pip-audit over a lock file and say plainly what was and was not audited.

pip-audit prints "No known vulnerabilities found" and exits 0 even when the
vulnerability service answered for none of the packages (each one is then
"skipped"), which reads as a clean bill of health. This wrapper counts the
packages audited, the vulnerabilities, and the packages that could not be
audited, writes pip-audit's JSON beside a short text summary, and exits:

  0  no vulnerability outside the documented list (KNOWN), whatever was skipped
  1  a vulnerability that is not documented in KNOWN (README, "Supply chain")
  2  pip-audit itself failed

Usage: python scripts/pip_audit_report.py PIP_AUDIT LOCK OUT_DIR
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

# Vulnerabilities that are known, have no fixed release we can take, and are documented in the
# README's "Supply chain" section: {vulnerability id: why it is accepted}. Empty while none is known.
KNOWN: dict[str, str] = {}


def summarise(report: dict, lock: str) -> tuple[list[str], list[str]]:
    """Lines to print, and the ids of undocumented vulnerabilities."""
    deps = report["dependencies"]
    skipped = [d for d in deps if "skip_reason" in d]
    audited = [d for d in deps if "skip_reason" not in d]
    vulns = [(d["name"], d["version"], v) for d in audited for v in d.get("vulns", [])]
    lines = [f"pip-audit of {lock}: {len(deps)} pinned packages, {len(audited)} audited, "
             f"{len(skipped)} not audited, {len(vulns)} known vulnerabilities"]
    new = []
    for name, version, v in vulns:
        fix = ", ".join(v.get("fix_versions") or []) or "no fixed release"
        status = "documented" if v["id"] in KNOWN else "NEW"
        lines.append(f"  {status}: {name} {version}: {v['id']} ({', '.join(v.get('aliases') or [])}); fix: {fix}")
        if v["id"] not in KNOWN:
            new.append(v["id"])
    if skipped:
        reasons = Counter(d["skip_reason"].split(":")[0] for d in skipped)
        lines.append(f"  NOT AUDITED: {len(skipped)} of {len(deps)} packages; the vulnerability service gave no answer"
                     f" for them ({'; '.join(f'{r}: {n}' for r, n in reasons.items())})")
    return lines, new


def main(argv: list[str]) -> int:
    pip_audit, lock, out_dir = argv[1], argv[2], Path(argv[3])
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(lock).name.removesuffix(".lock")
    json_path = out_dir / f"pip-audit-{stem}.json"
    # --no-deps --disable-pip: the lock is complete and pinned; nothing is resolved or installed.
    done = subprocess.run([pip_audit, "-r", lock, "--no-deps", "--disable-pip", "--progress-spinner", "off",
                           "-f", "json", "-o", str(json_path)], capture_output=True, text=True)
    if not json_path.exists():
        print(f"pip-audit failed (exit {done.returncode}):\n{done.stderr[-3000:]}", file=sys.stderr)
        return 2
    lines, new = summarise(json.loads(json_path.read_text()), lock)
    (out_dir / f"pip-audit-{stem}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"  report: {json_path}")
    if new:
        print(f"pip-audit: {len(new)} undocumented vulnerabilities: update the pin, or document them in the README"
              " and in KNOWN of scripts/pip_audit_report.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
