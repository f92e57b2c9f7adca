"""``python -m package``: serve the package API (settings from ``PACKAGE_*`` variables).

``python -m package --help`` lists every variable with its default and exits without serving.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dronecommon.cli import service_main

from .settings import PackageSettings

DESCRIPTION = """\
Packages of the drone delivery system (size, weight, tag) and owners' monthly weight
summaries, stored in MongoDB (FerretDB locally, Azure Cosmos DB for MongoDB in Azure)."""


def main(argv: Sequence[str] | None = None) -> int:
    return service_main(
        PackageSettings,
        "package.main:create_app",
        argv,
        description=DESCRIPTION,
        readme="services/package/README.md",
    )


if __name__ == "__main__":
    sys.exit(main())
