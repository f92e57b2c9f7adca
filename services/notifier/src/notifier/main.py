"""The notifier app: ``create_app(settings)`` (no I/O until the lifespan runs).

The notifier reads the delivery events and sends the notifications they call for (see
:mod:`notifier.runtime`); its HTTP app serves health and a small internal API.
"""

from __future__ import annotations

from fastapi import FastAPI

from dronecommon import create_service_app, load_settings
from dronecommon.domain import utcnow

from . import api
from .runtime import Clock, running
from .settings import NotifierSettings


def create_app(
    settings: NotifierSettings | None = None,
    *,
    configure_logs: bool = True,
    clock: Clock | None = None,
) -> FastAPI:
    """The notifier app. ``clock`` is "now" for tests."""
    settings = settings or load_settings(NotifierSettings)
    return create_service_app(
        settings,
        title="notifier",
        description=(
            "Tells a delivery's recipients when it is assigned, picked up, late or early, "
            "delivered or cancelled: e-mail, SMS and webhooks, each (delivery, event, recipient) "
            "once, through an outbox in Redis."
        ),
        routers=[api.router],
        lifespan=lambda app: running(app, settings, clock or utcnow),
        configure_logs=configure_logs,
    )
