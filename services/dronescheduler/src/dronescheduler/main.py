"""The drone scheduler app: ``create_app(settings)`` (no I/O until the lifespan runs)."""

from __future__ import annotations

from fastapi import FastAPI

from dronecommon import create_service_app, load_settings

from . import api
from .runtime import running
from .settings import DroneSchedulerSettings


def create_app(
    settings: DroneSchedulerSettings | None = None, *, configure_logs: bool = True
) -> FastAPI:
    settings = settings or load_settings(DroneSchedulerSettings)
    return create_service_app(
        settings,
        title="Drone scheduler",
        description=(
            "Assigns drones of the fleet to deliveries (nearest base, capable class, atomic "
            "claims), re-plans and releases them, and reports utilization; on MongoDB."
        ),
        routers=[api.router, api.drones],
        lifespan=lambda app: running(app, settings),
        configure_logs=configure_logs,
    )
