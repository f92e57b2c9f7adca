"""The development token issuer, for running the stack locally with authentication on.

    uv run python scripts/dev_issuer.py init   [--dir .data/dev-issuer] [--issuer URL]
    uv run python scripts/dev_issuer.py token  --aud api://delivery [--caller workflow]
                                               [--role Delivery.Write ...] [--lifetime 3600]
    uv run python scripts/dev_issuer.py jwks   (print the public JWKS)

``init`` creates the signing key (mode 0600) and ``jwks.json`` once and prints the environment a
service needs to trust them (``<PREFIX>_AUTH__...``); ``token`` prints a bearer token, e.g.
``curl -H "Authorization: Bearer $(uv run python scripts/dev_issuer.py token --aud api://delivery)"``.
Never for production: anyone holding the key can mint tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dronecommon.auth.devissuer import DEFAULT_DEV_ISSUER, JWKS_FILE_NAME, KEY_FILE_NAME, DevIssuer

DEFAULT_DIR = Path(".data") / "dev-issuer"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("init", "token", "jwks"):
        command = commands.add_parser(name)
        command.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="key folder")
        command.add_argument("--issuer", default=DEFAULT_DEV_ISSUER, help="the iss claim")
    token = commands.choices["token"]
    token.add_argument("--aud", required=True, help="audience, e.g. api://delivery")
    token.add_argument("--caller", default="dev-client", help="azp, oid and sub of the caller")
    token.add_argument("--role", action="append", default=[], help="an app role (repeatable)")
    token.add_argument("--lifetime", type=float, default=3600.0, help="seconds")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    issuer = DevIssuer.load_or_create(args.dir, args.issuer)
    out = sys.stdout
    if args.command == "init":
        folder = args.dir.resolve()
        out.write(
            f"# development issuer in {folder} (kid {issuer.kid}); for each service set:\n"
            f"<PREFIX>_AUTH__ENABLED=true\n"
            f"<PREFIX>_AUTH__ISSUER={issuer.issuer}\n"
            f"<PREFIX>_AUTH__AUDIENCE=api://<service>\n"
            f"<PREFIX>_AUTH__JWKS_FILE={folder / JWKS_FILE_NAME}\n"
            f"# and for callers (outbound tokens minted locally):\n"
            f"<PREFIX>_AUTH__DEV_SIGNING_KEY_FILE={folder / KEY_FILE_NAME}\n"
        )
    elif args.command == "token":
        token = issuer.mint(
            audience=args.aud,
            subject=args.caller,
            azp=args.caller,
            oid=args.caller,
            roles=args.role,
            lifetime=args.lifetime,
        )
        out.write(token + "\n")
    else:
        out.write(json.dumps(issuer.jwks(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
