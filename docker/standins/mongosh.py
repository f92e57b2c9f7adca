#!/opt/mongosh/bin/python
"""`mongosh` for the FerretDB stand-in image: only `--eval "db.adminCommand('NAME').ok"`.

It connects to mongodb://127.0.0.1:27017 (or --host/--port, or a connection string argument),
runs the admin command and prints its `ok` (the expression a healthcheck evaluates); any other
expression is refused (exit 2), a failed connection or command exits 1, as mongosh does.
"""

import argparse
import re
import sys

from pymongo import MongoClient
from pymongo.errors import PyMongoError

EXPRESSION = re.compile(r"""^\s*db\.adminCommand\(\s*(['"])(\w+)\1\s*\)(\.ok)?\s*;?\s*$""")


def main() -> int:
    parser = argparse.ArgumentParser(prog="mongosh")
    parser.add_argument("uri", nargs="?", default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--eval", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    args = parser.parse_args()
    match = EXPRESSION.match(args.eval)
    if match is None:
        sys.stderr.write(f"stand-in mongosh: only db.adminCommand('NAME').ok: {args.eval!r}\n")
        return 2
    uri = args.uri or f"mongodb://{args.host}:{args.port}/"
    try:
        with MongoClient(uri, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000) as client:
            reply = client.admin.command(match.group(2))
    except PyMongoError as exc:
        sys.stderr.write(f"MongoServerError: {exc}\n")
        return 1
    sys.stdout.write(f"{int(reply.get('ok', 0)) if match.group(3) else reply}\n")
    return 0 if reply.get("ok") == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
