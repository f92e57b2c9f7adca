"""The package service app: ``create_app(settings)`` (no I/O until the lifespan runs)."""

from __future__ import annotations

from fastapi import FastAPI

from dronecommon import create_service_app, load_settings

from . import api
from .runtime import running
from .settings import PackageSettings


def create_app(settings: PackageSettings | None = None, *, configure_logs: bool = True) -> FastAPI:
    settings = settings or load_settings(PackageSettings)
    return create_service_app(
        settings,
        title="Package service",
        description="Packages of the drone delivery system: size, weight and tag, on MongoDB.",
        routers=[api.router],
        lifespan=lambda app: running(app, settings),
        configure_logs=configure_logs,
    )
