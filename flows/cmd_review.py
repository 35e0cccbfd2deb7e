"""`credit-audit review`: the local review web app over one run directory."""

from __future__ import annotations

import argparse
import sys

from .exit_codes import BAD_INPUT as EXIT_BAD_INPUT

USERS_DB_HELP = ("SQLAlchemy URL of the accounts (default: $CREDIT_AUDIT_USERS_DB, then --db when it is a server "
                 "database, then users.sqlite in the keystore folder)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("review", help="start the analyst review app (sign-in with `credit-audit users` accounts)")
    p.add_argument("--run", required=True, help="run directory written by `credit-audit run`")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1; a non-loopback one only with --trusted-proxy)")
    p.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    p.add_argument(
        "--db",
        default=None,
        help="SQLAlchemy database URL for reviews (default: $CREDIT_AUDIT_REVIEW_DB, then <run>/review/reviews.sqlite)",
    )
    p.add_argument("--users-db", default=None, help=USERS_DB_HELP)
    p.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDRESS",
                   help="SSO mode: believe the X-Remote-User header from this reverse-proxy IP address or network "
                   "only (repeatable); the name must be an enabled account, whose role applies")
    p.add_argument("--public-url", default=None,
                   help="the https://host the reverse proxy serves the app under (its Host and Origin are accepted)")
    p.add_argument("--keystore", default=None, help="folder of the signing key (default: $CREDIT_AUDIT_KEYSTORE, "
                   "then ~/.config/credit-audit/keys)")
    p.add_argument("--unsigned", action="store_true",
                   help="record reviews without a signing key (verify can then only check their consistency)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from review import serve

    try:
        serve(args.run, host=args.host, port=args.port, db_url=args.db, keystore=args.keystore, unsigned=args.unsigned,
              users_db=args.users_db, trusted_proxies=args.trusted_proxy, public_url=args.public_url)
    except (FileNotFoundError, ValueError, KeyError, OSError, SQLAlchemyError) as exc:
        print(f"credit-audit review: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
