"""What signing costs: per review write, per manifest seal, and as a share of a full run.

Works on a copy of a finished run (`--run DIR`; the run itself is not
touched). The copy gets `--notices` dummy notice files, as many as a full run
of the real file writes (3,441 declined applicants), so its manifest is the
size of a full run's. Measured, in a fresh keystore:

- Ed25519: one signature and one verification (the primitive);
- a review write: `ReviewStore.save` signed (entry signature + signed
  checkpoint + manifest digest) against `unsigned=True`, median of `--writes`;
- a seal: what `seal_run` does beyond `write_manifest` (load the key, read
  the trail head and run id, hash and sign the manifest, write the
  signature), timed on its own, median of `--seals`; that is all signing adds
  to a run, since reviews are written later, in the review app.

The share of a run is that difference over the full run's wall time
(`--run-seconds`, default 420: the ~7 min a full run of the real file takes).

    .venv/bin/python bench/signing.py --run runs/<run-id> [--notices 3441] [--writes 200] [--seals 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NOTICE_BYTES = 40_000  # about the size of one rendered two-page notice


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_primitive(signer, rounds: int = 2000) -> tuple[float, float]:  # noqa: ANN001 - pipeline.signing.Signer
    message = b"credit-audit review entry\n" + b"0" * 64
    t = time.perf_counter()
    for _ in range(rounds):
        sig = signer.sign(message)
    sign_us = (time.perf_counter() - t) / rounds * 1e6
    t = time.perf_counter()
    for _ in range(rounds):
        signer.public.verify(sig, message)
    return sign_us, (time.perf_counter() - t) / rounds * 1e6


def bench_writes(run: Path, writes: int) -> tuple[float, float]:
    from review import Account, ReviewStore, Role

    medians = []
    for unsigned in (False, True):
        shutil.rmtree(run / "review", ignore_errors=True)
        store = ReviewStore(run, unsigned=unsigned)
        samples = []
        for i in range(writes):
            t = time.perf_counter()
            store.save(100 + i % 10, "approve", "confirm", f"bench review {i}: statements checked",
                       Account("bench.analyst", Role.ANALYST))
            samples.append(time.perf_counter() - t)
        store.close()
        medians.append(_median_ms(samples))
    shutil.rmtree(run / "review", ignore_errors=True)
    return medians[0], medians[1]


def bench_seal(run: Path, seals: int) -> tuple[float, float, int]:
    """(median ms of what seal_run adds after write_manifest, median ms of write_manifest, manifest bytes).

    The added part is timed on its own, step for step as seal_run runs it (resolve the key,
    read the trail head and the run id, hash and sign the manifest, write the signature):
    the difference of two whole seals is lost in the noise of hashing the files.
    """
    from pipeline import outputs as O
    from pipeline.signing import resolve_signer
    from review import trail_head
    from review._store import run_id_of

    added, plain = [], []
    for _ in range(seals):
        t = time.perf_counter()
        O.write_manifest(run)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        signer = resolve_signer(run_dir=run)
        count, head = trail_head(run)
        O.sign_manifest(run, signer, run_id_of(run), count, head)
        added.append(time.perf_counter() - t)
    return _median_ms(added), _median_ms(plain), (run / O.MANIFEST).stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a finished run directory (copied, not changed)")
    parser.add_argument("--notices", type=int, default=3441, help="dummy notices in the copy (default: a full run's)")
    parser.add_argument("--writes", type=int, default=200, help="review writes per mode")
    parser.add_argument("--seals", type=int, default=10, help="seals to time")
    parser.add_argument("--run-seconds", type=float, default=420.0, help="wall time of a full run (default 420)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-signing-") as tmp:
        os.environ["CREDIT_AUDIT_KEYSTORE"] = str(Path(tmp) / "keys")
        from pipeline.signing import create_key

        signer = create_key()
        run = Path(tmp) / "run"
        shutil.copytree(args.run, run, ignore=shutil.ignore_patterns("review", ".cache"))
        notices = run / "reports" / "notices"
        notices.mkdir(parents=True, exist_ok=True)
        filler = os.urandom(NOTICE_BYTES)
        for i in range(args.notices):
            (notices / f"bench_notice_{i}.pdf").write_bytes(filler[:-8] + i.to_bytes(8, "big"))

        sign_us, verify_us = bench_primitive(signer)
        write_signed, write_unsigned = bench_writes(run, args.writes)
        added, seal_plain, manifest_bytes = bench_seal(run, args.seals)

    print(f"Ed25519 (cryptography): sign {sign_us:.0f} us, verify {verify_us:.0f} us")
    print(f"review write, median of {args.writes}: signed {write_signed:.2f} ms, unsigned {write_unsigned:.2f} ms "
          f"(+{write_signed - write_unsigned:.2f} ms for the entry signature, the signed checkpoint and its row)")
    print(f"seal of a manifest of {args.notices}+ files ({manifest_bytes / 1024:.0f} KiB), median of {args.seals}: "
          f"write_manifest {seal_plain:.0f} ms; signing adds {added:.1f} ms (key, trail head, run id, digest, "
          "signature, manifest.json.sig)")
    print(f"share of a full run ({args.run_seconds:.0f} s): {added / 1000 / args.run_seconds * 100:.4f}% "
          "(reviews are written after the run, in the review app: they add nothing to it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
