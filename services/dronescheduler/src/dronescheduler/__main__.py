"""``python -m dronescheduler``: serve the drone scheduler (settings from ``DRONESCHEDULER_*``).

``python -m dronescheduler --help`` lists every variable with its default and exits without serving.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dronecommon.cli import service_main

from .settings import DroneSchedulerSettings

DESCRIPTION = """\
The drone fleet and its assignments, in MongoDB: assigns the nearest free drone able to carry a
package, with its ETAs; releases it; reports an owner's monthly use. The fleet is seeded from
the DRONESCHEDULER_FLEET__* settings on first start."""


def main(argv: Sequence[str] | None = None) -> int:
    return service_main(
        DroneSchedulerSettings,
        "dronescheduler.main:create_app",
        argv,
        description=DESCRIPTION,
        readme="services/dronescheduler/README.md",
    )


if __name__ == "__main__":
    sys.exit(main())
