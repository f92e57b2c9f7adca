"""What the ingestion service holds while it runs: Redis, the queue sender and the service.

:func:`running` is the body of the app's lifespan: it opens the workload credential when a client
signs in with it, builds the Redis client (the Idempotency-Key records, owners and limits) and
the queue sender (which shares that client unless the queue has a Redis of its own), starts the
reader of the delivery events (ended deliveries leave their account's count) and the admission
control (``admission.py``), registers readiness and closes everything on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from dronecommon import ServiceApp, redis_check
from dronecommon.auth.clients import create_redis_client
from dronecommon.auth.credentials import credential_for
from dronecommon.events import EventReader
from dronecommon.messaging import create_sender
from dronecommon.streams import default_consumer_name

from .accounts import AccountStore
from .admission import Admission, admission_control
from .ended import EndedDeliveries
from .repository import IdempotencyStore
from .service import IngestionService
from .settings import IngestionSettings

logger = logging.getLogger("ingestion.runtime")


class State(TypedDict):
    """The lifespan state: what the routes receive (see ``api.py``)."""

    ingestion: IngestionService
    admission: Admission


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
        accounts = AccountStore(redis, limits=settings.limits, ownership_ttl=settings.ownership_ttl)
        # A blocking XREADGROUP waits up to a second: its socket timeout must outlast it.
        events_redis = create_redis_client(
            settings.redis.model_copy(
                update={"url": settings.events_redis_url or settings.redis.url}
            ),
            credential,
            socket_timeout=max(5.0, settings.redis.socket_timeout),
        )
        stack.push_async_callback(events_redis.aclose)
        reader = EventReader(
            events_redis,
            settings.events_group,
            default_consumer_name("ingestion"),
            prefix=settings.delivery_key_prefix,
            start_id="$",
        )
        task = asyncio.create_task(
            reader.run(EndedDeliveries(accounts).handle), name="ingestion-ended-deliveries"
        )

        async def stop_reading() -> None:
            reader.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

        stack.push_async_callback(stop_reading)
        admission = await stack.enter_async_context(
            admission_control(
                settings.admission,
                queue,
                redis=redis,
                credential=credential,
            )
        )
        yield {
            "admission": admission,
            "ingestion": IngestionService(
                sender,
                store,
                accounts,
                queue_name=queue.name,
                send_timeout=settings.send_timeout,
                store_timeout=settings.store_timeout,
                wait_for_owner=settings.idempotency_wait,
                retry_after=settings.retry_after,
                area=settings.service_area,
                limits=settings.limits,
            ),
        }
