"""The ingestion app: ``create_app(settings)`` (no I/O until the lifespan runs)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware

from dronecommon import create_service_app, load_settings

from . import api
from .admission import AdmissionGate
from .runtime import running
from .settings import IngestionSettings


def create_app(
    settings: IngestionSettings | None = None, *, configure_logs: bool = True
) -> FastAPI:
    settings = settings or load_settings(IngestionSettings)
    # Behind bearer auth when it is on (the factory documents 401/403 either way).
    return create_service_app(
        settings,
        title="Ingestion service",
        description="The public API: schedule, reschedule and cancel deliveries. Every accepted"
        " request is on the delivery queue before the 202 answer.",
        routers=[api.router],
        # New delivery requests refused while overloaded before anything else is done for them.
        front_door=[Middleware(AdmissionGate, path=api.router.prefix)],
        lifespan=lambda app: running(app, settings),
        configure_logs=configure_logs,
    )
