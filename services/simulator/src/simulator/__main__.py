"""``python -m simulator``: run the fleet simulator (settings from ``SIMULATOR_*`` variables)."""

from __future__ import annotations

import signal
from types import FrameType

from dronecommon import load_settings
from dronecommon.server import serve

from .settings import SimulatorSettings


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    settings = load_settings(SimulatorSettings)
    # uvicorn runs the lifespan exit (stop flying, save the flight state) on
    # SIGTERM/SIGINT, then re-raises the signal with the handler it found installed: this one
    # turns that completed shutdown into exit status 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    serve("simulator.main:create_app", settings)


if __name__ == "__main__":
    main()
