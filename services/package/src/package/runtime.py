"""What the package service holds while it runs: the MongoDB client and the index set-up.

:func:`running` is the body of the app's lifespan. The store may be down at start-up: the app
serves anyway, the indexes are created in the background, and readiness names what is missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from dronecommon import ServiceApp, mongo_check
from dronecommon.auth.clients import create_mongo_client

from .repository import COLLECTION, IndexSetup, PackageRepository
from .service import PackageService
from .settings import PackageSettings


class State(TypedDict):
    """The lifespan state: what the routes receive (see ``api.py``)."""

    packages: PackageService


@asynccontextmanager
async def running(app: ServiceApp, settings: PackageSettings) -> AsyncIterator[State]:
    async with AsyncExitStack() as stack:
        client = create_mongo_client(
            settings.mongo, timeoutMS=int(settings.query_timeout * 1000), tz_aware=True
        )
        stack.push_async_callback(client.close)
        repository = PackageRepository(client[settings.mongo.database][COLLECTION])
        indexes = IndexSetup(repository)
        indexes.start()
        stack.push_async_callback(indexes.stop)
        app.readiness.add("mongo", mongo_check(client))
        app.readiness.add("indexes", indexes.check)
        yield {"packages": PackageService(repository)}
