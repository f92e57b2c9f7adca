"""``python -m delivery``: serve the delivery API (settings from ``DELIVERY_*`` variables).

``python -m delivery --help`` lists every variable with its default and exits without serving.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dronecommon.cli import service_main

from .settings import DeliverySettings

DESCRIPTION = """\
Delivery records, status and ETAs, tracking history, notify-me requests and monthly summaries,
stored in Redis."""


def main(argv: Sequence[str] | None = None) -> int:
    return service_main(
        DeliverySettings,
        "delivery.main:create_app",
        argv,
        description=DESCRIPTION,
        readme="services/delivery/README.md",
    )


if __name__ == "__main__":
    sys.exit(main())
