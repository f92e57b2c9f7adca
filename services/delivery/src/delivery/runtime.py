"""What the delivery service holds while it runs: its Redis clients, the telemetry consumer and
the tracking streams' hub.

:func:`running` is the body of the app's lifespan: it opens the workload credential when Redis
(or Event Hubs) asks for Microsoft Entra ID, builds the clients, starts the telemetry consumer
(unless ``DELIVERY_LIVE__CONSUMER=false``) and the hub, registers readiness, and on the way out
stops them and closes everything (``AsyncExitStack``, in reverse order).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from dronecommon import ServiceApp, redis_check
from dronecommon.auth.clients import create_redis_client
from dronecommon.auth.credentials import credential_for
from dronecommon.fixes import create_fix_consumer
from dronecommon.streams import default_consumer_name

from .consumer import ConsumerWorker, TelemetryConsumer
from .livestore import LiveStore
from .repository import DeliveryRepository
from .service import DeliveryService
from .settings import DeliverySettings
from .sse import Tracker
from .views import Clock
from .watch import Hub


class State(TypedDict):
    """The lifespan state: what the routes receive (see ``api.py``)."""

    deliveries: DeliveryService
    tracker: Tracker


@asynccontextmanager
async def running(
    app: ServiceApp, settings: DeliverySettings, clock: Clock
) -> AsyncIterator[State]:
    live = settings.live
    async with AsyncExitStack() as stack:
        credential = await stack.enter_async_context(
            credential_for(
                redis=settings.redis,
                telemetry_stream=settings.telemetry_stream if live.consumer else None,
            )
        )
        redis = create_redis_client(settings.redis, credential, decode_responses=True)
        stack.push_async_callback(redis.aclose)
        app.readiness.add("redis", redis_check(redis))
        repository = DeliveryRepository(
            redis,
            prefix=settings.key_prefix,
            events_maxlen=settings.events_maxlen,
            stages_maxlen=live.stages_maxlen,
        )
        deliveries = DeliveryService(repository, settings, clock)

        if live.consumer:
            # A blocking XREADGROUP waits up to RECEIVE_WAIT: its socket timeout must outlast it.
            stream = settings.telemetry_stream
            reader_redis = create_redis_client(
                settings.redis,
                credential,
                url=stream.redis_url,
                socket_timeout=max(5.0, stream.receive_wait + 2, settings.redis.socket_timeout),
            )
            stack.push_async_callback(reader_redis.aclose)
            source = create_fix_consumer(
                stream,
                consumer=live.consumer_name or default_consumer_name("delivery"),
                redis=reader_redis,
                credential=credential,
            )
            store = LiveStore(
                redis,
                repository,
                trail_length=live.trail_length,
                drone_fix_ttl=live.drone_fix_ttl,
            )
            consumer = TelemetryConsumer(
                store,
                deliveries.rules,
                deliveries.estimates,
                clock,
                max_attempts=live.max_attempts,
            )
            worker = ConsumerWorker(source, consumer, shutdown_grace=live.shutdown_grace)
            worker.start()
            stack.push_async_callback(worker.stop)

            async def telemetry() -> None:
                worker.check()
                await source.check_ready()

            app.readiness.add("telemetry", telemetry, timeout=stream.readiness_timeout + 0.5)

        hub = Hub(
            redis,
            deliveries,
            max_watchers=settings.sse.max_watchers,
            retry_after=settings.sse.retry_after,
        )
        await hub.start()
        stack.push_async_callback(hub.close)
        yield {"deliveries": deliveries, "tracker": Tracker(hub, deliveries, settings.sse)}
