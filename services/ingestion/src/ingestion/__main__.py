"""``python -m ingestion``: serve the public API (settings from ``INGESTION_*`` variables).

``python -m ingestion --help`` lists every variable with its default and exits without serving.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dronecommon.cli import service_main

from .settings import IngestionSettings

DESCRIPTION = """\
The public API of the drone delivery system: schedule, reschedule and cancel deliveries.
Each request is validated, normalised and put on the delivery queue (Redis Streams or Azure
Service Bus) before it is answered 202; the workflow carries it out."""


def main(argv: Sequence[str] | None = None) -> int:
    return service_main(
        IngestionSettings,
        "ingestion.main:create_app",
        argv,
        description=DESCRIPTION,
        readme="services/ingestion/README.md",
    )


if __name__ == "__main__":
    sys.exit(main())
