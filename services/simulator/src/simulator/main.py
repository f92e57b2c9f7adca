"""The simulator app: ``create_app(settings)`` (no I/O until the lifespan runs).

The simulator flies the drones the delivery events assign (see :mod:`simulator.runtime`); its
HTTP app serves health and a small control API.
"""

from __future__ import annotations

from fastapi import FastAPI

from dronecommon import create_service_app, load_settings

from . import api
from .runtime import running
from .settings import SimulatorSettings


def create_app(
    settings: SimulatorSettings | None = None, *, configure_logs: bool = True
) -> FastAPI:
    settings = settings or load_settings(SimulatorSettings)

    return create_service_app(
        settings,
        title="Fleet simulator",
        description=(
            "Flies the assigned drones in wall-clock time, publishes their telemetry, confirms "
            "their deliveries and releases them at the drone scheduler."
        ),
        routers=[api.router],
        lifespan=lambda app: running(app, settings),
        configure_logs=configure_logs,
    )
