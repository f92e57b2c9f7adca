"""Write (or check) every service's committed OpenAPI document from its code.

uv run python scripts/openapi.py          # rewrite services/*/openapi.json
uv run python scripts/openapi.py --check  # exit 1 when a document is out of date
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from dronetesting.openapi import render_openapi

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("services", nargs="*", help="only these services (default: all)")
    args = parser.parse_args()
    stale = []
    for service in sorted(p.parent for p in ROOT.glob("services/*/pyproject.toml")):
        name = service.name
        if args.services and name not in args.services:
            continue
        if importlib.util.find_spec(f"{name}.api") is None:
            continue  # no HTTP API of its own (the web app serves pages)
        module = importlib.import_module(f"{name}.main")
        # The document is the same whether or not the instance checks tokens (the bearer scheme
        # is declared either way); without an issuer to trust, build it with tokens off.
        os.environ[f"{name.upper()}_AUTH__ENABLED"] = "false"
        app = module.create_app(configure_logs=False)
        target = service / "openapi.json"
        rendered = render_openapi(app)
        if target.exists() and target.read_text() == rendered:
            continue
        stale.append(target)
        if not args.check:
            target.write_text(rendered)
            print(f"wrote {target.relative_to(ROOT)}")
    if args.check and stale:
        print("out of date: " + ", ".join(str(p.relative_to(ROOT)) for p in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
