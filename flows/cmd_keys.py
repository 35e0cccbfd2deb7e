"""`credit-audit keys`: the operator's signing key pair (`init` makes it, `show` prints the public half).

The private key stays in the keystore (mode 0600 in a 0700 folder) and never
enters a run directory; runs record only the public key and its key id. The
public key file is what an auditor passes to `verify --public-key`: copy it
somewhere the run's writers cannot reach.
"""

from __future__ import annotations

import argparse
import sys

EXIT_BAD_INPUT = 2
KEYSTORE_HELP = "keystore folder (default: $CREDIT_AUDIT_KEYSTORE, then ~/.config/credit-audit/keys)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("keys", help="create or show the Ed25519 key that signs runs and reviews")
    actions = p.add_subparsers(dest="keys_action", required=True)
    init = actions.add_parser("init", help="create a new key pair in the keystore")
    init.add_argument("--keystore", default=None, help=KEYSTORE_HELP)
    init.add_argument("--force", action="store_true", help="replace an existing key (runs signed with it then "
                      "verify only with the old public key)")
    init.set_defaults(handler=init_key)
    show = actions.add_parser("show", help="print the key id and the public key")
    show.add_argument("--keystore", default=None, help=KEYSTORE_HELP)
    show.set_defaults(handler=show_key)


def init_key(args: argparse.Namespace) -> int:
    from pipeline.signing import PUBLIC_FILE, create_key

    try:
        signer = create_key(args.keystore, force=args.force)
    except (ValueError, OSError) as exc:
        print(f"credit-audit keys: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"created signing key {signer.key_id}")
    print(f"  private key: {signer.source} (mode 0600; never copy it into a run directory)")
    print(f"  public key:  {signer.source.parent / PUBLIC_FILE}")
    print("Archive the public key outside the runs; auditors check a run with "
          "`credit-audit verify --run DIR --public-key <public key file>`.")
    return 0


def show_key(args: argparse.Namespace) -> int:
    from pipeline.signing import PUBLIC_FILE, keystore_path, load_public

    try:
        key = load_public(args.keystore)
    except (ValueError, OSError) as exc:
        print(f"credit-audit keys: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"key id: {key.key_id}")
    print(f"public key file: {keystore_path(args.keystore) / PUBLIC_FILE}")
    print(key.pem().decode("ascii"), end="")
    return 0
