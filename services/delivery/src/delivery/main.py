"""The delivery service app: ``create_app(settings)`` (no I/O until the lifespan runs)."""

from __future__ import annotations

from fastapi import FastAPI

from dronecommon import create_service_app, load_settings
from dronecommon.domain import utcnow

from . import api
from .runtime import running
from .settings import DeliverySettings
from .views import Clock


def create_app(
    settings: DeliverySettings | None = None,
    *,
    configure_logs: bool = True,
    clock: Clock | None = None,
) -> FastAPI:
    """The delivery app. ``clock`` is "now" for tests."""
    settings = settings or load_settings(DeliverySettings)
    return create_service_app(
        settings,
        title="delivery",
        description="Delivery records, status, tracking and summaries (Redis).",
        routers=[api.owned],
        internal_routers=[api.internal],
        public_routers=[api.public],
        lifespan=lambda app: running(app, settings, clock or utcnow),
        configure_logs=configure_logs,
    )
