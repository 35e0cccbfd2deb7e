"""The flow's last step: seal the run (manifest + signature) and publish its checkpoint as a Prefect artifact.

The artifact (`run-checkpoint`) holds the signed checkpoint as JSON, so the
Prefect UI keeps, per run, a copy of it outside the run directory: a record
that the run's writers cannot edit, for `verify --checkpoint` later. An
unsigned run (no key, `unsigned` asked for) is published as such, loudly.
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from pipeline.checkpoint import Checkpoint
from review import seal_run

ARTIFACT_KEY = "run-checkpoint"
MSG_UNSIGNED = (
    "run {run} was sealed WITHOUT a signing key (unsigned was asked for): its manifest and reviews can only be "
    "checked for internal consistency; create a key with `credit-audit keys init`"
)


def checkpoint_markdown(run_dir: Path, checkpoint: Checkpoint | None) -> str:
    """The artifact's text: how to archive and check the checkpoint, and the checkpoint itself."""
    if checkpoint is None:
        return f"**UNSIGNED RUN.** {MSG_UNSIGNED.format(run=run_dir.name)}."
    return "\n".join([
        f"Run `{checkpoint.run_id}` sealed with key `{checkpoint.key_id}` at {checkpoint.time}: manifest SHA-256 "
        f"`{checkpoint.manifest_sha256}`, {checkpoint.trail_count} review(s) in its trail.",
        "",
        "Save the JSON below as a file outside the run and check the run later with "
        f"`credit-audit verify --run {run_dir} --public-key <signing-key.pub> --checkpoint <file>`.",
        "",
        "```json",
        checkpoint.to_json().rstrip(),
        "```",
    ])


def seal_and_publish(run_dir: str | Path, written: list[Path] | None = None,
                     unsigned: bool = False) -> Checkpoint | None:
    """Seal the files the run wrote (review.seal_run: NoSigningKey before writing when there is no key), publish."""
    run_dir = Path(run_dir)
    checkpoint = seal_run(run_dir, unsigned=unsigned, written=written)
    if checkpoint is None:
        get_run_logger().warning(MSG_UNSIGNED.format(run=run_dir.name))
    create_markdown_artifact(
        checkpoint_markdown(run_dir.resolve(), checkpoint), key=ARTIFACT_KEY, description="Signed checkpoint of the run"
    )
    return checkpoint
