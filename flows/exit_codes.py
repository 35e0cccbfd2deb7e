"""The command's exit codes: what a scheduler or a CI pipeline gates on (documented in the README)."""

PASSED = 0  # the audit ran and its release gates passed
POLICY_FAILED = 1  # the audit ran, and a gate of [audit.gates] failed (the summary names the rule)
BAD_INPUT = 2  # bad data, configuration, options or model: nothing was written (or a usage error)
SYSTEM_ERROR = 3  # anything else went wrong (a crash, a lost worker): see the log; re-running resumes
