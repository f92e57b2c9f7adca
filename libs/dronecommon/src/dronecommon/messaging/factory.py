"""Build the queue's sender, receiver and dead-letter store from :class:`QueueSettings`.

``settings.transport`` picks the transport:

* ``"redis"`` — Redis Streams at ``settings.redis_url``, else the ``redis_url`` argument (the
  service's own Redis), through a client from
  :func:`~dronecommon.messaging.redis_streams.queue_redis_client`. Pass ``redis=`` to reuse a
  client built elsewhere (for example one authenticated with Microsoft Entra ID); it is then not
  closed by the queue objects.
* ``"servicebus"`` — ``settings.servicebus_connection_string`` (the emulator) or
  ``settings.servicebus_namespace`` with ``credential`` (an ``AsyncTokenCredential``, the
  workload identity). The queue's lock duration and maximum delivery count are properties of the
  Service Bus queue itself; ``lock_duration`` and ``max_delivery_count`` apply to Redis only.

Nothing here does I/O: connections open on first use.
"""

from __future__ import annotations

from azure.core.credentials_async import AsyncTokenCredential
from azure.servicebus.aio import ServiceBusClient
from redis.asyncio import Redis

from dronecommon.messaging.base import DeadLetterStore, MessageReceiver, MessageSender
from dronecommon.messaging.redis_streams import (
    RedisDeadLetterStore,
    RedisStreamReceiver,
    RedisStreamSender,
    queue_redis_client,
)
from dronecommon.messaging.servicebus import (
    ServiceBusDeadLetterStore,
    ServiceBusQueueReceiver,
    ServiceBusQueueSender,
    servicebus_clients,
)
from dronecommon.settings import QueueSettings


def _redis_client(
    settings: QueueSettings, redis_url: str | None, redis: Redis | None, *, receiving: bool
) -> tuple[Redis, bool]:
    if redis is not None:
        return redis, False
    url = settings.redis_url or redis_url
    if not url:
        raise ValueError("the redis queue transport needs QueueSettings.redis_url or a redis_url")
    client = queue_redis_client(
        url,
        receive_wait=settings.receive_wait if receiving else None,
        max_concurrency=settings.max_concurrency,
    )
    return client, True


def _sb_clients(
    settings: QueueSettings, credential: AsyncTokenCredential | None
) -> tuple[ServiceBusClient, ServiceBusClient]:
    secret = settings.servicebus_connection_string
    return servicebus_clients(
        connection_string=secret.get_secret_value() if secret is not None else None,
        namespace=settings.servicebus_namespace,
        credential=credential,
    )


def create_sender(
    settings: QueueSettings,
    *,
    redis_url: str | None = None,
    credential: AsyncTokenCredential | None = None,
    redis: Redis | None = None,
) -> MessageSender:
    """The sender for ``settings.name`` on the configured transport."""
    if settings.transport == "servicebus":
        client, probe = _sb_clients(settings, credential)
        return ServiceBusQueueSender(
            client,
            settings.name,
            readiness_timeout=settings.readiness_timeout,
            probe_client=probe,
        )
    client_r, owns = _redis_client(settings, redis_url, redis, receiving=False)
    return RedisStreamSender(
        client_r, settings.name, readiness_timeout=settings.readiness_timeout, owns_client=owns
    )


def create_receiver(
    settings: QueueSettings,
    *,
    redis_url: str | None = None,
    credential: AsyncTokenCredential | None = None,
    redis: Redis | None = None,
    consumer_name: str | None = None,
) -> MessageReceiver:
    """The receiver for ``settings.name`` (one competing consumer) on the configured transport."""
    if settings.transport == "servicebus":
        client, probe = _sb_clients(settings, credential)
        return ServiceBusQueueReceiver(
            client,
            settings.name,
            max_concurrency=settings.max_concurrency,
            prefetch=settings.prefetch,
            receive_wait=settings.receive_wait,
            readiness_timeout=settings.readiness_timeout,
            probe_client=probe,
        )
    client_r, owns = _redis_client(settings, redis_url, redis, receiving=True)
    return RedisStreamReceiver(
        client_r,
        settings.name,
        consumer_group=settings.consumer_group,
        consumer_name=consumer_name,
        max_concurrency=settings.max_concurrency,
        prefetch=settings.prefetch,
        lock_duration=settings.lock_duration,
        max_delivery_count=settings.max_delivery_count,
        receive_wait=settings.receive_wait,
        readiness_timeout=settings.readiness_timeout,
        owns_client=owns,
    )


def create_dead_letter_store(
    settings: QueueSettings,
    *,
    redis_url: str | None = None,
    credential: AsyncTokenCredential | None = None,
    redis: Redis | None = None,
) -> DeadLetterStore:
    """The dead-letter store of ``settings.name`` on the configured transport."""
    if settings.transport == "servicebus":
        client, probe = _sb_clients(settings, credential)
        return ServiceBusDeadLetterStore(
            client,
            settings.name,
            readiness_timeout=settings.readiness_timeout,
            receive_wait=settings.receive_wait,
            probe_client=probe,
        )
    client_r, owns = _redis_client(settings, redis_url, redis, receiving=False)
    return RedisDeadLetterStore(
        client_r, settings.name, readiness_timeout=settings.readiness_timeout, owns_client=owns
    )
