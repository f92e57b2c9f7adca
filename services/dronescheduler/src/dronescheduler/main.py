"""The drone scheduler app: ``create_app(settings)`` (no I/O until the lifespan runs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from dronecommon import create_service_app, load_settings, mongo_check, readiness
from dronecommon.auth.clients import create_mongo_client

from . import api
from .fleet import Fleet
from .repository import SchedulerRepository
from .service import Scheduler
from .settings import DroneSchedulerSettings
from .startup import Startup


def create_app(
    settings: DroneSchedulerSettings | None = None, *, configure_logs: bool = True
) -> FastAPI:
    settings = settings or load_settings(DroneSchedulerSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        client = create_mongo_client(
            settings.mongo, timeoutMS=int(settings.query_timeout * 1000), tz_aware=True
        )
        repository = SchedulerRepository(
            client[settings.mongo.database], cache_size=settings.assignment_cache
        )
        scheduler = Scheduler(Fleet(settings.fleet), repository, settings.fleet)
        startup = Startup(scheduler, repository, timeout=settings.bootstrap_timeout)
        readiness(app).add("mongo", mongo_check(client))
        readiness(app).add("fleet", startup.check)
        startup.start()
        try:
            await startup.wait(settings.startup_wait)
            yield {"scheduler": scheduler}
        finally:
            await startup.stop()
            await client.close()

    return create_service_app(
        settings,
        title="Drone scheduler",
        description=(
            "Assigns drones of the fleet to deliveries (nearest base, capable class, atomic "
            "claims), re-plans and releases them, and reports utilization; on MongoDB."
        ),
        routers=[api.router, api.drones],
        lifespan=lifespan,
        configure_logs=configure_logs,
    )
