"""The development issuer's command line (``make token``, the compose set-up, tests).

    python -m dronecommon.auth.devcli init   [--dir DIR] [--issuer URL]
    python -m dronecommon.auth.devcli token  [--account contoso] [--user myowner] [--role Operator]
    python -m dronecommon.auth.devcli token  --service workflow --aud package --role Packages.Write
    python -m dronecommon.auth.devcli jwks

``init`` creates the signing key (mode 0600) and ``jwks.json`` once, in ``--dir`` (default
``$DEV_ISSUER_DIR``, else ``.data/dev-issuer``), and prints what a service sets to trust them;
``--owner UID`` hands the files to that user (the compose stack's one-shot runs as root and the
services as 10001). ``token`` prints a bearer
token alone on its last line: by default a customer's token for the public API (account ``tid``,
user ``oid``), with ``--service NAME`` an app-only token of that service identity. Anyone holding
the key can mint any token: never for production.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dronecommon.auth.devissuer import (
    DEFAULT_ACCOUNT,
    DEFAULT_DEV_ISSUER,
    DEFAULT_USER,
    JWKS_FILE_NAME,
    KEY_FILE_NAME,
    PUBLIC_AUDIENCE,
    DevIssuer,
)

DEFAULT_DIR = Path(".data") / "dev-issuer"


def _default_dir() -> Path:
    return Path(os.environ.get("DEV_ISSUER_DIR") or DEFAULT_DIR)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dronecommon.auth.devcli", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("init", "create the key and JWKS (once) and print the settings that trust them"),
        ("token", "print a bearer token"),
        ("jwks", "print the public JWKS"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--dir", type=Path, default=_default_dir(), help="the key's folder")
        command.add_argument("--issuer", default=DEFAULT_DEV_ISSUER, help="the iss claim")
    init = commands.choices["init"]
    init.add_argument(
        "--owner", type=int, default=None, help="uid that should own the files (containers)"
    )
    token = commands.choices["token"]
    token.add_argument("--account", default=DEFAULT_ACCOUNT, help="the customer's account (tid)")
    token.add_argument("--user", default=DEFAULT_USER, help="the customer's user (oid, sub)")
    token.add_argument(
        "--service", default=None, help="an app-only token of this service identity instead"
    )
    token.add_argument("--aud", default=PUBLIC_AUDIENCE, help="audience (default: the public API)")
    token.add_argument("--role", action="append", default=[], help="a role (repeatable)")
    token.add_argument("--lifetime", type=float, default=3600.0, help="seconds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = sys.stdout
    key_file = args.dir / KEY_FILE_NAME
    if args.command == "init":
        folder = args.dir.resolve()
        if key_file.exists():
            # Kept as it is (it may belong to the services' user, out of this user's reach).
            made = "kept"
        else:
            DevIssuer.load_or_create(folder, args.issuer)
            made = "made"
        if args.owner is not None:
            for path in (folder, folder / KEY_FILE_NAME, folder / JWKS_FILE_NAME):
                os.chown(path, args.owner, args.owner)
        out.write(
            f"# development issuer {made} in {folder}; each service sets:\n"
            f"<PREFIX>_AUTH__ISSUER={args.issuer}\n"
            f"<PREFIX>_AUTH__JWKS_FILE={folder / JWKS_FILE_NAME}\n"
            f"<PREFIX>_AUTH__PUBLIC_AUDIENCE={PUBLIC_AUDIENCE}\n"
            f"<PREFIX>_AUTH__AUDIENCE=<its own audience>\n"
            f"# and callers of other services (outbound tokens minted locally):\n"
            f"<PREFIX>_AUTH__DEV_SIGNING_KEY_FILE={folder / KEY_FILE_NAME}\n"
        )
        return 0
    # An existing key is only read.
    issuer = (
        DevIssuer.load(key_file, args.issuer)
        if key_file.exists()
        else DevIssuer.load_or_create(args.dir, args.issuer)
    )
    if args.command == "token":
        roles = [role for role in args.role if role]
        if args.service:
            token = issuer.mint(
                audience=args.aud,
                subject=args.service,
                azp=args.service,
                oid=args.service,
                roles=roles,
                lifetime=args.lifetime,
                extra_claims={"idtyp": "app"},
            )
        else:
            token = issuer.mint_customer(
                account=args.account,
                user=args.user,
                audience=args.aud,
                roles=roles,
                lifetime=args.lifetime,
            )
        out.write(token + "\n")
    else:
        out.write(json.dumps(issuer.jwks(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
