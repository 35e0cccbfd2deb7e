"""A throwaway PostgreSQL server for the tests, from Debian's `postgresql` package (scripts/system-deps.sh).

`initdb` and `pg_ctl` run in a fresh folder under the system's temporary
directory; the server listens only on a unix socket in that folder (no TCP: with
trust authentication, a TCP port would let any local user in as superuser), on
a port number nobody else uses, and is stopped and removed at the end of the
session. PostgreSQL refuses to run as root, and CI runs as root: there the
server runs as the unprivileged `nobody`, in a folder it owns. Each test gets a
database of its own (`create_database`), so no state leaks between tests.

A machine without the binaries fails the tests that need them, with the command
that installs them: the PostgreSQL half of the store's tests is never skipped
silently. A developer who cannot install PostgreSQL sets
CREDIT_AUDIT_SKIP_POSTGRES=1 to skip it, visibly; CI (where $CI is set) refuses that.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SKIP_ENV = "CREDIT_AUDIT_SKIP_POSTGRES"
SUPERUSER = "postgres"
UNPRIVILEGED = ("nobody", "nogroup")  # who runs the server when the tests run as root
START_TIMEOUT_S = 60
MSG_MISSING = (
    "PostgreSQL's server binaries (initdb, pg_ctl) were not found in {glob} nor on PATH: the store's tests run on "
    "PostgreSQL too. Install Debian's package: `bash scripts/system-deps.sh` as root (or apt-get install postgresql); "
    "to skip the PostgreSQL half knowingly, set {skip}=1 (refused when $CI is set)"
)
MSG_SKIPPED = "PostgreSQL tests skipped on request ({skip}=1)"
MSG_START_FAILED = "PostgreSQL did not start ({step} exited {code}):\n{output}"


def _version(bindir: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", bindir.parent.name)) or (0,)


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL's bin folder (/usr/lib/postgresql/<version>/bin), else initdb's on PATH."""
    found = [p for p in Path("/").glob(DEBIAN_BIN_GLOB.lstrip("/")) if (p / "initdb").is_file() and (p / "pg_ctl").is_file()]
    if found:
        return max(found, key=_version)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A running server: its folder (data, socket, log) and port; `url(db)` for SQLAlchemy."""

    bindir: Path
    folder: Path
    port: int
    run_as: tuple[str, str] | None
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.folder}&port={self.port}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement as the superuser, outside a transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(host=str(self.folder), port=self.port, user=SUPERUSER, dbname=database,
                             autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        name = f"reviews_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, step: str, *args: str) -> None:
        user, group = self.run_as or (None, None)
        done = subprocess.run([str(self.bindir / step), *args], cwd=self.folder, user=user, group=group,
                              extra_groups=[] if user else None, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(MSG_START_FAILED.format(step=step, code=done.returncode,
                                                       output=(done.stdout + done.stderr + log)[-4000:]))

    def start(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                  "--locale=C", "--no-sync")
        options = f"-k {self.folder} -p {self.port} -c listen_addresses='' -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", str(START_TIMEOUT_S), "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_server() -> PostgresServer:
    """Start a server (as `nobody` when this is root); RuntimeError with the server's output if it fails.

    The folder is made with mkdtemp in the system's temporary directory, not pytest's
    (which is private to root, so `nobody` could not enter it); a short path also keeps
    the socket's name under the 107 characters a unix socket allows.
    """
    bindir = find_bindir()
    if bindir is None:
        raise FileNotFoundError(MSG_MISSING.format(glob=DEBIAN_BIN_GLOB, skip=SKIP_ENV))
    folder = Path(tempfile.mkdtemp(prefix="credit-audit-pg-"))
    run_as = UNPRIVILEGED if os.geteuid() == 0 else None
    if run_as:
        shutil.chown(folder, *run_as)
    server = PostgresServer(bindir=bindir, folder=folder, port=_free_port(), run_as=run_as)
    try:
        return server.start()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def skip_requested() -> bool:
    """True when the developer asked to skip PostgreSQL; never in CI."""
    return os.environ.get(SKIP_ENV) == "1" and not os.environ.get("CI")
