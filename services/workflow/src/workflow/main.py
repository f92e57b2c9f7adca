"""The workflow app: ``create_app(settings)`` (no I/O until the lifespan runs).

The workflow is a queue consumer; its HTTP app serves ``/healthz``, ``/readyz`` and the queue as
operators see it (``GET /api/queue``), and owns the consumer's lifetime through the lifespan (see
:mod:`workflow.runtime`).
"""

from __future__ import annotations

from fastapi import FastAPI

from dronecommon import create_service_app, load_settings

from . import api
from .runtime import running
from .settings import WorkflowSettings


def create_app(settings: WorkflowSettings | None = None, *, configure_logs: bool = True) -> FastAPI:
    settings = settings or load_settings(WorkflowSettings)
    return create_service_app(
        settings,
        title="Workflow",
        description=(
            "Queue consumer of the drone delivery system: runs each delivery request against the "
            "package, drone scheduler and delivery services. HTTP serves health and the queue "
            "as operators see it."
        ),
        internal_routers=[api.router],
        lifespan=lambda app: running(app, settings),
        configure_logs=configure_logs,
    )
