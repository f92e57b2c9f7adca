"""The delivery service app: ``create_app()`` builds it; the lifespan owns the Redis client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from dronecommon import create_service_app, load_settings, readiness, redis_check
from dronecommon.auth.clients import create_redis_client
from dronecommon.auth.credentials import create_credential
from dronecommon.domain import utcnow

from . import api
from .repository import DeliveryRepository
from .service import Clock, DeliveryService
from .settings import DeliverySettings


def create_app(
    settings: DeliverySettings | None = None,
    *,
    configure_logs: bool = True,
    clock: Clock | None = None,
) -> FastAPI:
    """The delivery app; no I/O here (the lifespan opens Redis). ``clock`` is "now" for tests."""
    settings = settings or load_settings(DeliverySettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        credential = create_credential() if settings.redis.use_entra_id else None
        redis = create_redis_client(settings.redis, credential, decode_responses=True)
        readiness(app).add("redis", redis_check(redis))
        repository = DeliveryRepository(
            redis, prefix=settings.key_prefix, events_maxlen=settings.events_maxlen
        )
        try:
            yield {"deliveries": DeliveryService(repository, settings, clock or utcnow)}
        finally:
            await redis.aclose()
            if credential is not None:
                await credential.close()

    return create_service_app(
        settings,
        title="delivery",
        description="Delivery records, status, tracking and summaries (Redis).",
        routers=[api.internal],
        public_routers=[api.public],
        lifespan=lifespan,
        configure_logs=configure_logs,
    )
