"""Reviewer accounts: the users command, argon2 hashes, sign-in without enumeration, lockout, sessions."""

from __future__ import annotations

import io
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from flows.cli import main as cli_main
from review._accounts import (
    LOCKOUT,
    MAX_ADDRESS_FAILURES,
    MAX_FAILURES,
    MSG_LOCKED,
    MSG_NAME,
    MSG_SIGN_IN,
    SESSION_IDLE,
    SESSION_TTL,
    USERS_DB_ENV,
    USERS_FILE,
    AccountError,
    AccountStore,
    LockedOut,
    Role,
    users_db_url,
)

PASSWORD = "correct horse battery staple"
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # the same algorithm (argon2id), quick to test


@pytest.fixture(params=["sqlite", "postgresql"])
def accounts(request, tmp_path: Path):  # noqa: ANN001 - pytest's request
    """The accounts on both databases: a bank keeps them on its PostgreSQL server beside the reviews."""
    url = (f"sqlite:///{tmp_path / 'users.sqlite'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres").create_database())
    store = AccountStore(url, hasher=FAST)
    store.add("ana", "analyst", PASSWORD)
    yield store
    store.close()


def _users(tmp_path: Path, *args: str, stdin: str | None = None, monkeypatch=None) -> int:  # noqa: ANN001
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli_main(["users", *args, "--users-db", f"sqlite:///{tmp_path / 'users.sqlite'}"])


# ---- the admin command ---------------------------------------------------------------
def test_users_add_list_disable_passwd(tmp_path, monkeypatch, capsys):
    assert _users(tmp_path, "add", "Ana", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n",
                  monkeypatch=monkeypatch) == 0
    assert "created analyst ana" in capsys.readouterr().out
    assert _users(tmp_path, "add", "bo", "--role", "approver", "--password-stdin", stdin=PASSWORD + "\n",
                  monkeypatch=monkeypatch) == 0
    assert _users(tmp_path, "list") == 0
    out = capsys.readouterr().out
    assert "ana" in out and "approver" in out and "2 account(s)" in out and PASSWORD not in out
    store = AccountStore(f"sqlite:///{tmp_path / 'users.sqlite'}")
    try:
        assert store.authenticate("ANA", PASSWORD, "10.0.0.1").role == Role.ANALYST  # names fold to lower case
        assert _users(tmp_path, "passwd", "ana", "--password-stdin", stdin="another long password\n",
                      monkeypatch=monkeypatch) == 0
        with pytest.raises(AccountError):
            store.authenticate("ana", PASSWORD, "10.0.0.1")
        assert store.authenticate("ana", "another long password", "10.0.0.1").name == "ana"
        assert _users(tmp_path, "disable", "ana") == 0
        with pytest.raises(AccountError):
            store.authenticate("ana", "another long password", "10.0.0.1")
    finally:
        store.close()


def test_users_refuses_bad_input_with_one_line(tmp_path, monkeypatch, capsys):
    ok = PASSWORD + "\n"
    assert _users(tmp_path, "add", "ana", "--role", "analyst", "--password-stdin", stdin=ok,
                  monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    cases = [
        (("add", "ana", "--role", "analyst", "--password-stdin"), ok, "already exists"),
        (("add", "Ana Analyst", "--role", "analyst", "--password-stdin"), ok, "account name must be"),
        (("add", "cy", "--role", "analyst", "--password-stdin"), "short\n", "password must be 12"),
        (("disable", "nobody"), None, "no account named 'nobody'"),
    ]
    for args, stdin, message in cases:
        assert _users(tmp_path, *args, stdin=stdin, monkeypatch=monkeypatch) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_:  # no password option on the command line: ps would show it
        cli_main(["users", "add", "cy", "--role", "analyst", "--password", PASSWORD])
    assert exit_.value.code == 2
    assert _users(tmp_path, "add", "cy", "--role", "admin") == 2  # the roles' one place: review._accounts.Role
    assert "role must be one of ['analyst', 'approver', 'auditor'], got 'admin'" in capsys.readouterr().err


def test_password_is_asked_on_a_terminal_only(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal, and --password-stdin not given
    assert _users(tmp_path, "add", "cy", "--role", "auditor") == 2
    assert "--password-stdin" in capsys.readouterr().err


def test_hashes_are_argon2id_and_the_file_is_private(tmp_path, monkeypatch):
    import sqlite3

    assert _users(tmp_path, "add", "ana", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n",
                  monkeypatch=monkeypatch) == 0
    path = tmp_path / "users.sqlite"
    with sqlite3.connect(path) as db:
        (stored,) = db.execute("SELECT password_hash FROM review_accounts").fetchone()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PASSWORD.encode() not in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_where_the_accounts_live(tmp_path, monkeypatch):
    monkeypatch.delenv(USERS_DB_ENV, raising=False)
    monkeypatch.delenv("CREDIT_AUDIT_REVIEW_DB", raising=False)
    keys = tmp_path / "keys"
    assert users_db_url(keystore=keys) == f"sqlite:///{(keys / USERS_FILE).resolve()}"
    pg = "postgresql://review@db.bank.example/review"
    assert users_db_url(review_db=pg, keystore=keys) == pg  # a server database holds the accounts too
    assert users_db_url(review_db="sqlite:////runs/r1/review/reviews.sqlite", keystore=keys).endswith(USERS_FILE)
    monkeypatch.setenv(USERS_DB_ENV, "sqlite:////srv/users.sqlite")
    assert users_db_url(review_db=pg, keystore=keys) == "sqlite:////srv/users.sqlite"
    assert users_db_url("sqlite:////x.sqlite") == "sqlite:////x.sqlite"


# ---- sign-in -----------------------------------------------------------------------------
def test_no_user_enumeration(accounts):
    accounts.add("dora", "auditor", PASSWORD)
    accounts.disable("dora")
    messages = set()
    for name, password in (("ana", "wrong password!"), ("nobody", PASSWORD), ("dora", PASSWORD), ("", "")):
        with pytest.raises(AccountError) as err:
            accounts.authenticate(name, password, "10.0.0.1")
        messages.add(str(err.value))
    assert messages == {MSG_SIGN_IN}


def test_unknown_names_cost_a_hash_check_too(accounts, monkeypatch):
    """Constant-time: an unknown name is checked against a dummy hash, so it answers as slowly as a known one."""
    calls: list[str] = []
    real = accounts._verify
    monkeypatch.setattr(accounts, "_verify", lambda h, p: calls.append(h) or real(h, p))
    for name in ("ana", "nobody", "Robert'); DROP TABLE review_accounts;--"):
        with pytest.raises(AccountError):
            accounts.authenticate(name, "wrong password!", "10.0.0.1")
    assert len(calls) == 3 and calls[1] == calls[2] == accounts._dummy


def test_disabled_account_cannot_sign_in_and_its_sessions_end(accounts):
    account = accounts.authenticate("ana", PASSWORD, "10.0.0.1")
    token = accounts.open_session(account)
    assert accounts.session_account(token).name == "ana"
    accounts.disable("ana")
    assert accounts.session_account(token) is None
    with pytest.raises(AccountError) as err:
        accounts.authenticate("ana", PASSWORD, "10.0.0.1")
    assert str(err.value) == MSG_SIGN_IN


def test_lockout_per_account_name(accounts):
    for i in range(MAX_FAILURES):
        with pytest.raises(AccountError) as err:
            accounts.authenticate("ana", f"wrong password {i}", f"10.0.0.{i}", now=T0 + timedelta(seconds=i))
        assert not isinstance(err.value, LockedOut)
    at = T0 + timedelta(minutes=1)
    with pytest.raises(LockedOut) as err:  # even the right password, from a fresh address
        accounts.authenticate("ana", PASSWORD, "10.9.9.9", now=at)
    assert str(err.value) == MSG_LOCKED.format(minutes=15)
    with pytest.raises(LockedOut):
        accounts.authenticate("ANA", PASSWORD, "10.9.9.9", now=at)  # the same account under another spelling
    later = T0 + LOCKOUT + timedelta(seconds=MAX_FAILURES)
    assert accounts.authenticate("ana", PASSWORD, "10.9.9.9", now=later).name == "ana"
    # a success clears the account's count: five more failures are needed to lock it again
    with pytest.raises(AccountError) as err:
        accounts.authenticate("ana", "wrong again!!", "10.9.9.9", now=later)
    assert not isinstance(err.value, LockedOut)


def test_unknown_names_lock_out_like_known_ones(accounts):
    for _ in range(MAX_FAILURES):
        with pytest.raises(AccountError):
            accounts.authenticate("nobody", "guess number one", "10.0.0.1", now=T0)
    with pytest.raises(LockedOut):
        accounts.authenticate("nobody", "guess number one", "10.0.0.2", now=T0)


def test_lockout_per_client_address(accounts):
    for i in range(MAX_ADDRESS_FAILURES):  # spraying one password over many names from one address
        with pytest.raises(AccountError):
            accounts.authenticate(f"user{i}", "Winter2026!!", "203.0.113.7", now=T0)
    with pytest.raises(LockedOut):
        accounts.authenticate("ana", PASSWORD, "203.0.113.7", now=T0)
    assert accounts.authenticate("ana", PASSWORD, "198.51.100.1", now=T0).name == "ana"  # another address


def test_sessions_expire_idle_and_absolute_and_logout_ends_them(accounts):
    ana = accounts.get("ana")
    token = accounts.open_session(ana, now=T0)
    assert accounts.session_account(token, now=T0 + SESSION_IDLE - timedelta(seconds=1)).name == "ana"
    assert accounts.session_account(token, now=T0 + 2 * SESSION_IDLE - timedelta(seconds=2)).name == "ana"
    assert accounts.session_account(token, now=T0 + 3 * SESSION_IDLE) is None  # idle too long: gone for good
    assert accounts.session_account(token, now=T0) is None

    token = accounts.open_session(ana, now=T0)
    t = T0
    while t + SESSION_IDLE / 2 < T0 + SESSION_TTL:  # busy all day: the absolute limit still ends it
        t += SESSION_IDLE / 2
        assert accounts.session_account(token, now=t) is not None
    assert accounts.session_account(token, now=T0 + SESSION_TTL) is None

    token = accounts.open_session(ana)
    accounts.close_session(token)
    assert accounts.session_account(token) is None
    assert accounts.session_account("forged-token") is None and accounts.session_account(None) is None


def test_session_tokens_are_not_stored(accounts):
    from sqlalchemy import text

    token = accounts.open_session(accounts.get("ana"))
    with accounts.engine.connect() as conn:
        stored = [str(v) for row in conn.execute(text("SELECT * FROM review_sessions")) for v in row]
    assert stored and not any(token in v for v in stored)  # only its digest is kept


@pytest.mark.parametrize("name", ["a", "ana analyst", "ána", "../etc", "-ana", "x" * 41, "ana\x00"])
def test_bad_names_are_refused(accounts, name):
    with pytest.raises(AccountError) as err:
        accounts.add(name, "analyst", PASSWORD)
    assert str(err.value).startswith(MSG_NAME.split("{")[0])


def test_keystore_default_folder_is_private(tmp_path, monkeypatch):
    monkeypatch.delenv(USERS_DB_ENV, raising=False)
    monkeypatch.delenv("CREDIT_AUDIT_REVIEW_DB", raising=False)
    keys = tmp_path / "fresh-keys"
    store = AccountStore(users_db_url(keystore=keys), hasher=FAST)
    store.close()
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700 and (keys / USERS_FILE).is_file()
    assert os.access(keys / USERS_FILE, os.R_OK)


def test_failures_older_than_the_window_are_not_kept(accounts):
    """Sign-in failures cannot grow the database without bound: only the lockout window is kept."""
    from sqlalchemy import text

    for i in range(MAX_FAILURES):
        with pytest.raises(AccountError):
            accounts.authenticate(f"spray{i}", "guess number one", "10.0.0.1", now=T0)
    with pytest.raises(AccountError):
        accounts.authenticate("spray", "guess number one", "10.0.0.1", now=T0 + LOCKOUT + timedelta(seconds=1))
    with accounts.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM review_login_failures")).scalar_one() == 1
