"""``python -m webapp``: run the web app (settings from ``WEBAPP_*`` variables).

``python -m webapp --help`` lists every variable with its default and exits without serving.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dronecommon.cli import service_main

from .settings import WebappSettings

DESCRIPTION = """\
The customer web app: sign in (the development issuer locally, Microsoft Entra ID in Azure),
schedule deliveries, follow them live on a map, the public tracking page /track/<id> and the
operators' page /ops. Pages are served on http://127.0.0.1:8000 by default."""


def main(argv: Sequence[str] | None = None) -> int:
    return service_main(
        WebappSettings,
        "webapp.main:create_app",
        argv,
        description=DESCRIPTION,
        readme="services/webapp/README.md",
    )


if __name__ == "__main__":
    sys.exit(main())
