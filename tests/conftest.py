"""Shared fixtures: the real data file and one model trained on it per test session.

Training takes ~10 s on 2 cores, so tests that need a fitted model share this
one instead of training their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from pipeline import CreditModel, Portfolio, load_portfolio  # noqa: E402
from pipeline import schema as S  # noqa: E402
from pipeline.acquire import DEFAULT_PATH, ENV_VAR  # noqa: E402
from pipeline.run_record import RunRecord  # noqa: E402
from pipeline.splitting import split_portfolio  # noqa: E402
from pipeline.surrogate import Surrogate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "UCI_Credit_Card.csv"
MSG_NO_DATA = (
    "the real dataset (UCI 'default of credit card clients', 30,000 rows) was not found; put it at one of\n"
    "  {shared}  (beside the checkout, as CI has it)\n"
    "  ${env}  (now {env_value})\n"
    "  {local}  (where `credit-audit run` looks by default)"
)
DEFAULT_SPEC = S.SPEC  # the shipped schema, active at import
# The smoke run renders this many notices; bench/reports.py measures all of them.
NOTICE_LIMIT = 40
# Kernel SHAP's cost is linear in the background rows and is most of the smoke run's time
# (100 rows: ~135 s of its ~230 s on 2 cores). The smoke run checks what the run writes,
# not explanation precision (tests/test_explain_shap.py does, on the default background).
SMOKE_BACKGROUND = 25


@pytest.fixture(autouse=True)
def default_schema() -> Iterator[None]:
    """Every test ends with the default schema active again (a test may audit another schema file)."""
    yield
    if S.SPEC is not DEFAULT_SPEC:
        S.activate(DEFAULT_SPEC)


@pytest.fixture(scope="session", autouse=True)
def signing_keystore(tmp_path_factory) -> Iterator[Path]:
    """A keystore with a fresh Ed25519 key for the whole session, named by $CREDIT_AUDIT_KEYSTORE.

    Runs and reviews refuse to go unsigned (pipeline.signing), so every test, and every
    command a test starts, signs with this key; never the operator's own keystore.
    """
    from pipeline.signing import KEYSTORE_ENV, UNSIGNED_ENV, create_key

    folder = tmp_path_factory.mktemp("keystore")
    create_key(folder)
    before = {k: os.environ.get(k) for k in (KEYSTORE_ENV, UNSIGNED_ENV)}
    os.environ[KEYSTORE_ENV] = str(folder)
    os.environ.pop(UNSIGNED_ENV, None)
    yield folder
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@dataclass(frozen=True)
class Split:
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series


def real_data_path() -> Path | None:
    """The real file, looked for as CI has it, then as the CLI looks for it ($CREDIT_AUDIT_DATA, data/)."""
    env = os.environ.get(ENV_VAR)
    for path in (SHARED_DATA, Path(env) if env else None, REPO / DEFAULT_PATH):
        if path is not None and path.is_file():
            return path
    return None


def missing_data_message() -> str:
    return MSG_NO_DATA.format(shared=SHARED_DATA, env=ENV_VAR, env_value=os.environ.get(ENV_VAR, "unset"),
                              local=REPO / DEFAULT_PATH)


@pytest.fixture(scope="session")
def data_path() -> Path:
    path = real_data_path()
    if path is None:
        pytest.fail(missing_data_message(), pytrace=False)
    return path


@pytest.fixture(scope="session")
def portfolio(data_path: Path) -> Portfolio:
    return load_portfolio(data_path)


@pytest.fixture(scope="session")
def split(portfolio: Portfolio) -> Split:
    index = split_portfolio(portfolio, test_fraction=0.2, seed=0)  # the flow's own split
    tr, te = index.train, index.test
    f, y = portfolio.features, portfolio.labels
    return Split(f.iloc[tr], y.iloc[tr], f.iloc[te], y.iloc[te])


@pytest.fixture(scope="session")
def fitted_model(split: Split) -> CreditModel:
    return CreditModel(seed=0).fit(split.X_train, split.y_train)


@pytest.fixture(scope="session")
def fitted_surrogate(fitted_model: CreditModel, split: Split) -> Surrogate:
    return Surrogate().fit(split.X_train, fitted_model.predict(split.X_train))


@pytest.fixture(scope="session")
def slice_record(portfolio: Portfolio, fitted_model: CreditModel) -> RunRecord:
    """A run record built by the flow's own assembly function from the real model and 1,000 real rows."""
    from dataclasses import replace

    from pipeline import scoring
    from pipeline.config import AuditConfig

    rows = slice(0, 1000)
    small = replace(portfolio, features=portfolio.features.iloc[rows].reset_index(drop=True),
                    labels=portfolio.labels.iloc[rows].reset_index(drop=True),
                    ids=portfolio.ids.iloc[rows].reset_index(drop=True))
    index = split_portfolio(small, 0.2, 0)
    train = small.features.iloc[index.train]
    surrogate = Surrogate(features=fitted_model.features, max_depth=3, seed=0).fit(train, fitted_model.predict(train))
    table = scoring.applicants_table(small, index, fitted_model, surrogate)
    return scoring.core_record(run_id="run-test", created="2026-12-02T00:00:00+00:00", config=AuditConfig(),
                               device="cpu", code_version="0" * 64, portfolio=small, split=index,
                               model=fitted_model, surrogate=surrogate, table=table)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One temporary Prefect server for the whole session; its API URL.

    Each flow run, in this process or in a command started by a test, talks to
    it instead of starting an embedded server of its own (~10 s each on 2 cores).
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def audit_run(prefect_api, tmp_path_factory, data_path) -> Path:  # noqa: ARG001 - the server must be up
    """One whole audit flow on the real file (shared by tests)."""
    from flows.audit import audit_flow
    from pipeline.config import AuditConfig

    out = tmp_path_factory.mktemp("audit-run")
    config = AuditConfig(seed=0, device="cpu", background_size=SMOKE_BACKGROUND)
    run_dir = audit_flow(data=str(data_path), out=str(out), config=config.to_dict(), notice_limit=NOTICE_LIMIT)
    return Path(run_dir)


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the session, started from Debian's binaries (tests/postgres_server.py).

    Fails, never skips silently, when the binaries are missing; CREDIT_AUDIT_SKIP_POSTGRES=1 skips
    knowingly (refused in CI).
    """
    from postgres_server import MSG_SKIPPED, SKIP_ENV, skip_requested, start_server

    if skip_requested():
        pytest.skip(MSG_SKIPPED.format(skip=SKIP_ENV))
    try:
        server = start_server()
    except (FileNotFoundError, RuntimeError) as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def review_db(request, monkeypatch) -> str | None:
    """The review database a store test runs on, named by $CREDIT_AUDIT_REVIEW_DB as a bank would name it.

    sqlite: the variable is unset and each run keeps its file beside it (None). postgresql: a
    fresh database on the session's server (its URL), so every store, verify and command the
    test starts, in this process or another, uses it.
    """
    from review._store import DB_ENV

    if request.param == "sqlite":
        monkeypatch.delenv(DB_ENV, raising=False)
        return None
    url = request.getfixturevalue("postgres").create_database()
    monkeypatch.setenv(DB_ENV, url)
    return url
