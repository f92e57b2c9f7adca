"""Build the telemetry publisher and consumer from :class:`TelemetryStreamSettings`.

``settings.transport`` picks the transport:

* ``"redis"`` — Redis Streams on the ``redis`` client given (the service's own, or one built for
  ``settings.redis_url``); the client is the caller's to close.
* ``"eventhubs"`` — Azure Event Hubs with ``credential`` (the workload identity), or with
  ``settings.eventhubs_connection_string`` (the emulator); checkpoints in Blob Storage.

Nothing here does I/O: connections open on first use.
"""

from __future__ import annotations

from azure.core.credentials_async import AsyncTokenCredential
from redis.asyncio import Redis

from dronecommon.settings import TelemetryStreamSettings

from .base import FixConsumer, FixPublisher
from .redis_streams import RedisFixConsumer, RedisFixPublisher


def _redis(settings: TelemetryStreamSettings, redis: Redis | None) -> Redis:
    if redis is None:
        raise ValueError("the redis telemetry transport needs a Redis client")
    return redis


def create_fix_publisher(
    settings: TelemetryStreamSettings,
    *,
    redis: Redis | None = None,
    credential: AsyncTokenCredential | None = None,
) -> FixPublisher:
    if settings.transport == "eventhubs":
        from .eventhubs import EventHubsFixPublisher

        return EventHubsFixPublisher.create(settings, credential)
    return RedisFixPublisher(
        _redis(settings, redis),
        stream=settings.stream,
        maxlen=settings.maxlen,
        fixes_per_entry=settings.fixes_per_entry,
        readiness_timeout=settings.readiness_timeout,
    )


def create_fix_consumer(
    settings: TelemetryStreamSettings,
    *,
    consumer: str,
    redis: Redis | None = None,
    credential: AsyncTokenCredential | None = None,
) -> FixConsumer:
    """One consumer named ``consumer`` (unique per process) of ``settings.consumer_group``."""
    if settings.transport == "eventhubs":
        from .eventhubs import EventHubsFixConsumer

        return EventHubsFixConsumer.create(settings, credential)
    return RedisFixConsumer(
        _redis(settings, redis),
        settings.consumer_group,
        consumer,
        stream=settings.stream,
        max_batch=settings.max_batch,
        fixes_per_entry=settings.fixes_per_entry,
        receive_wait=settings.receive_wait,
        claim_idle=settings.claim_idle,
        start_at_latest=settings.start_at_latest,
        readiness_timeout=settings.readiness_timeout,
    )
