"""`credit-audit users`: the reviewer accounts of the review app (add, list, disable, passwd).

Passwords are read from a prompt (twice, not echoed) or, for scripts, from
standard input with `--password-stdin` (the first line); never from the
command line, where `ps` and shell history would show them. Accounts live in
the users database (review/_accounts.py says where), shared by every run.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from .exit_codes import BAD_INPUT as EXIT_BAD_INPUT

MSG_MISMATCH = "the two passwords differ"
MSG_NO_TTY = "no terminal to ask for the password: pass --password-stdin and send it on standard input"


def _common(p: argparse.ArgumentParser) -> None:
    from .cmd_review import USERS_DB_HELP

    p.add_argument("--users-db", default=None, help=USERS_DB_HELP)
    p.add_argument("--db", default=None, help="the review database URL (its server, when it is one, holds the accounts)")
    p.add_argument("--keystore", default=None, help="keystore folder (default: $CREDIT_AUDIT_KEYSTORE, "
                   "then ~/.config/credit-audit/keys); holds users.sqlite by default")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("users", help="manage the review app's accounts (analyst, approver, auditor)")
    actions = p.add_subparsers(dest="users_action", required=True)
    add = actions.add_parser("add", help="create an account; the password is asked for (or read from stdin)")
    add.add_argument("name", help="account name: 2-40 characters of a-z 0-9 . _ - (folded to lower case)")
    add.add_argument("--role", required=True,
                     help="analyst: proposes reviews; approver: also approves others' overrides; auditor: reads")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _common(add)
    add.set_defaults(handler=add_user)
    ls = actions.add_parser("list", help="list the accounts and their roles")
    _common(ls)
    ls.set_defaults(handler=list_users)
    off = actions.add_parser("disable", help="refuse an account's sign-ins and end its sessions (its reviews stay)")
    off.add_argument("name")
    _common(off)
    off.set_defaults(handler=disable_user)
    pw = actions.add_parser("passwd", help="set a new password (ends the account's sessions)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _common(pw)
    pw.set_defaults(handler=set_password)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ValueError(MSG_NO_TTY)
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise ValueError(MSG_MISMATCH)
    return first


def _with_store(args: argparse.Namespace, action) -> int:  # noqa: ANN001 - a callable of the store
    from sqlalchemy.exc import SQLAlchemyError

    from review import AccountStore, users_db_url

    try:
        store = AccountStore(users_db_url(args.users_db, args.db, args.keystore))
    except (SQLAlchemyError, ValueError, OSError) as exc:
        print(f"credit-audit users: the users database cannot be opened: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return action(store)
    except (ValueError, OSError, SQLAlchemyError) as exc:
        print(f"credit-audit users: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        store.close()


def add_user(args: argparse.Namespace) -> int:
    def action(store) -> int:  # noqa: ANN001
        from review import check_password, normalize_name, parse_role

        normalize_name(args.name), parse_role(args.role)  # a bad name fails before the password is asked
        account = store.add(args.name, args.role, check_password(_password(args.password_stdin)))
        print(f"created {account.role} {account.name} in {_shown(store.url)}")
        return 0

    return _with_store(args, action)


def list_users(args: argparse.Namespace) -> int:
    def action(store) -> int:  # noqa: ANN001
        accounts = store.list()
        for a in accounts:
            print(f"{a.name:<24} {a.role:<9} {'disabled' if a.disabled else 'enabled ':<8} created {a.created}")
        print(f"{len(accounts)} account(s) in {_shown(store.url)}")
        return 0

    return _with_store(args, action)


def disable_user(args: argparse.Namespace) -> int:
    def action(store) -> int:  # noqa: ANN001
        account = store.disable(args.name)
        print(f"disabled {account.name}: it can no longer sign in, and its open sessions ended (its reviews stay)")
        return 0

    return _with_store(args, action)


def set_password(args: argparse.Namespace) -> int:
    def action(store) -> int:  # noqa: ANN001
        from review import normalize_name

        normalize_name(args.name)
        account = store.set_password(args.name, _password(args.password_stdin))
        print(f"new password set for {account.name}; its open sessions ended")
        return 0

    return _with_store(args, action)


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
