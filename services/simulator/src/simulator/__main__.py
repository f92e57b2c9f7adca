"""``python -m simulator``: run the fleet simulator (settings from ``SIMULATOR_*`` variables).

``python -m simulator --help`` lists every variable with its default and exits without serving.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dronecommon.cli import service_main

from .settings import SimulatorSettings

DESCRIPTION = """\
The drone fleet simulator: flies every assigned drone base → pickup → drop-off → base in
wall-clock time, publishes its telemetry, confirms the delivery on arrival and releases the drone
at the drone scheduler when it is home."""


def main(argv: Sequence[str] | None = None) -> int:
    return service_main(
        SimulatorSettings,
        "simulator.main:create_app",
        argv,
        description=DESCRIPTION,
        readme="services/simulator/README.md",
    )


if __name__ == "__main__":
    sys.exit(main())
