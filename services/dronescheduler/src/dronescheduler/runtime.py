"""What the drone scheduler holds while it runs: the MongoDB client, the scheduler, start-up.

:func:`running` is the body of the app's lifespan. Start-up work (indexes, seeding, the lease
log) runs in the background until it succeeds, then the lease log is re-read and compacted every
``lease_refresh_interval``; the lifespan waits for it up to
``startup_wait`` seconds, then serves anyway while readiness names what is missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from dronecommon import ServiceApp, mongo_check
from dronecommon.auth.clients import create_mongo_client

from .fleet import Fleet
from .repository import SchedulerRepository
from .service import Scheduler
from .settings import DroneSchedulerSettings
from .startup import Startup


class State(TypedDict):
    """The lifespan state: what the routes receive (see ``api.py``)."""

    scheduler: Scheduler


@asynccontextmanager
async def running(app: ServiceApp, settings: DroneSchedulerSettings) -> AsyncIterator[State]:
    async with AsyncExitStack() as stack:
        client = create_mongo_client(
            settings.mongo, timeoutMS=int(settings.query_timeout * 1000), tz_aware=True
        )
        stack.push_async_callback(client.close)
        repository = SchedulerRepository(
            client[settings.mongo.database], cache_size=settings.assignment_cache
        )
        area = settings.service_area
        scheduler = Scheduler(
            Fleet(settings.fleet, area.bases),
            repository,
            settings.fleet,
            area=area,
            lease_retention=settings.lease_retention,
            prune_batch=settings.lease_prune_batch,
        )
        startup = Startup(
            scheduler,
            repository,
            timeout=settings.bootstrap_timeout,
            refresh_interval=settings.lease_refresh_interval,
        )
        app.readiness.add("mongo", mongo_check(client))
        app.readiness.add("fleet", startup.check)
        startup.start()
        stack.push_async_callback(startup.stop)
        await startup.wait(settings.startup_wait)
        yield {"scheduler": scheduler}
