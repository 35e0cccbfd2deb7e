"""Prefect orchestration of the audit: flows and tasks that wire pipeline/ steps, and the CLI."""
