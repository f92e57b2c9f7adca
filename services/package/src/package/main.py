"""The package service app: ``create_app(settings)`` (no I/O until the lifespan runs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from dronecommon import create_service_app, load_settings, mongo_check, readiness
from dronecommon.auth.clients import create_mongo_client

from . import api
from .repository import COLLECTION, IndexSetup, PackageRepository
from .service import PackageService
from .settings import PackageSettings


def create_app(settings: PackageSettings | None = None, *, configure_logs: bool = True) -> FastAPI:
    settings = settings or load_settings(PackageSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        client = create_mongo_client(
            settings.mongo, timeoutMS=int(settings.query_timeout * 1000), tz_aware=True
        )
        repository = PackageRepository(client[settings.mongo.database][COLLECTION])
        indexes = IndexSetup(repository)
        indexes.start()
        readiness(app).add("mongo", mongo_check(client))
        readiness(app).add("indexes", indexes.check)
        try:
            yield {"packages": PackageService(repository)}
        finally:
            await indexes.stop()
            await client.close()

    return create_service_app(
        settings,
        title="Package service",
        description="Packages of the drone delivery system: size, weight and tag, on MongoDB.",
        routers=[api.router],
        lifespan=lifespan,
        configure_logs=configure_logs,
    )
