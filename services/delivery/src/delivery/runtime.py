"""What the delivery service holds while it runs: its Redis client.

:func:`running` is the body of the app's lifespan: it opens the workload credential when Redis
asks for Microsoft Entra ID, builds the client, registers readiness and closes both on the way out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from dronecommon import ServiceApp, redis_check
from dronecommon.auth.clients import create_redis_client
from dronecommon.auth.credentials import credential_for

from .repository import DeliveryRepository
from .service import Clock, DeliveryService
from .settings import DeliverySettings


class State(TypedDict):
    """The lifespan state: what the routes receive (see ``api.py``)."""

    deliveries: DeliveryService


@asynccontextmanager
async def running(
    app: ServiceApp, settings: DeliverySettings, clock: Clock
) -> AsyncIterator[State]:
    async with AsyncExitStack() as stack:
        credential = await stack.enter_async_context(credential_for(redis=settings.redis))
        redis = create_redis_client(settings.redis, credential, decode_responses=True)
        stack.push_async_callback(redis.aclose)
        app.readiness.add("redis", redis_check(redis))
        repository = DeliveryRepository(
            redis, prefix=settings.key_prefix, events_maxlen=settings.events_maxlen
        )
        yield {"deliveries": DeliveryService(repository, settings, clock)}
