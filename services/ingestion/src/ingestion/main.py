"""The ingestion app: ``create_app(settings)`` (no I/O until the lifespan runs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from dronecommon import create_service_app, load_settings, readiness, redis_check
from dronecommon.auth.clients import create_redis_client
from dronecommon.auth.credentials import create_credential
from dronecommon.messaging import create_sender

from . import api, errors
from .repository import IdempotencyStore
from .service import IngestionService
from .settings import IngestionSettings


def create_app(
    settings: IngestionSettings | None = None, *, configure_logs: bool = True
) -> FastAPI:
    settings = settings or load_settings(IngestionSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        async with AsyncExitStack() as stack:
            queue = settings.queue
            # The workload identity, only when something signs in with it.
            keyless_bus = queue.transport == "servicebus" and not queue.servicebus_connection_string
            credential = None
            if settings.redis.use_entra_id or keyless_bus:
                credential = create_credential()
                stack.push_async_callback(credential.close)
            redis = create_redis_client(settings.redis, credential)
            stack.push_async_callback(redis.aclose)
            # The queue shares the service's Redis client unless it has a Redis of its own.
            shared = queue.transport == "redis" and not queue.redis_url
            sender = create_sender(
                queue,
                redis_url=queue.redis_url or settings.redis.url,
                credential=credential,
                redis=redis if shared else None,
            )
            stack.push_async_callback(sender.close)
            readiness(app).add("redis", redis_check(redis))
            readiness(app).add("queue", sender.check_ready)
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
                )
            }

    # Behind bearer auth when it is on (the factory documents 401/403 either way).
    app = create_service_app(
        settings,
        title="Ingestion service",
        description="The public API: schedule, reschedule and cancel deliveries. Every accepted"
        " request is on the delivery queue before the 202 answer.",
        routers=[api.router],
        lifespan=lifespan,
        configure_logs=configure_logs,
    )
    errors.install_error_handlers(app, retry_after=settings.retry_after)
    return app
