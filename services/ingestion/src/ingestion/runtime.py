"""What the ingestion service holds while it runs: Redis, the queue sender and the service.

:func:`running` is the body of the app's lifespan: it opens the workload credential when a client
signs in with it, builds the Redis client (the Idempotency-Key records) and the queue sender
(which shares that client unless the queue has a Redis of its own), registers readiness and
closes everything on the way out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from dronecommon import ServiceApp, redis_check
from dronecommon.auth.clients import create_redis_client
from dronecommon.auth.credentials import credential_for
from dronecommon.messaging import create_sender

from .repository import IdempotencyStore
from .service import IngestionService
from .settings import IngestionSettings


class State(TypedDict):
    """The lifespan state: what the routes receive (see ``api.py``)."""

    ingestion: IngestionService


@asynccontextmanager
async def running(app: ServiceApp, settings: IngestionSettings) -> AsyncIterator[State]:
    queue = settings.queue
    async with AsyncExitStack() as stack:
        credential = await stack.enter_async_context(
            credential_for(redis=settings.redis, queue=queue)
        )
        redis = create_redis_client(settings.redis, credential)
        stack.push_async_callback(redis.aclose)
        shared = queue.transport == "redis" and not queue.redis_url
        sender = create_sender(
            queue,
            redis_url=queue.redis_url or settings.redis.url,
            credential=credential,
            redis=redis if shared else None,
        )
        stack.push_async_callback(sender.close)
        app.readiness.add("redis", redis_check(redis))
        app.readiness.add("queue", sender.check_ready)
        store = IdempotencyStore(
            redis, ttl=settings.idempotency_ttl, lease=settings.idempotency_lease
        )
        yield {
            "ingestion": IngestionService(
                sender,
                store,
                queue_name=queue.name,
                send_timeout=settings.send_timeout,
                store_timeout=settings.store_timeout,
                wait_for_owner=settings.idempotency_wait,
                retry_after=settings.retry_after,
            )
        }
