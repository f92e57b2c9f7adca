"""``python -m dronescheduler``: serve the drone scheduler (settings from ``DRONESCHEDULER_*``)."""

from __future__ import annotations

import signal
from types import FrameType

from dronecommon import load_settings
from dronecommon.server import serve

from .settings import DroneSchedulerSettings


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    settings = load_settings(DroneSchedulerSettings)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal with the handler
    # it found installed: this one turns that completed shutdown into exit status 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    serve("dronescheduler.main:create_app", settings)


if __name__ == "__main__":
    main()
