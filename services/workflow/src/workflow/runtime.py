"""Everything the consumer holds while it runs: clients, the receiver and its task.

:func:`running` is the body of the app's lifespan: it builds the clients, registers readiness,
starts ``receiver.run(consumer.handle)`` in a task and, on the way out (uvicorn runs the lifespan
exit on SIGTERM), stops receiving, gives in-flight messages ``shutdown_grace`` seconds (handlers
waiting out a backoff abandon at once), then closes every client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TypedDict

from azure.core.credentials_async import AsyncTokenCredential
from redis.asyncio import Redis

from dronecommon import ServiceApp
from dronecommon.auth.clients import create_redis_client
from dronecommon.auth.credentials import (
    credential_for,
    credential_needed,
    outbound_token_provider,
)
from dronecommon.httpclient import ResilientClient, create_http_client, create_probe_client
from dronecommon.httpclient.client import TokenProvider
from dronecommon.messaging import MessageReceiver, create_dead_letter_store, create_receiver
from dronecommon.messaging.redis_streams import queue_redis_client as streams_client

from .backends import Backends
from .consumer import Consumer
from .queueview import QueueView
from .repository import PendingStore
from .service import Workflow
from .settings import DOWNSTREAM, WorkflowSettings

logger = logging.getLogger("workflow.runtime")


class State(TypedDict):
    """The lifespan state."""

    consumer: Consumer
    receiver: MessageReceiver
    queue_view: QueueView


def needs_credential(settings: WorkflowSettings) -> bool:
    """Whether any client authenticates with the workload identity (the library's rule)."""
    return credential_needed(redis=settings.redis, queue=settings.queue, outbound=settings.auth)


def downstream_url(settings: WorkflowSettings, service: str) -> str:
    url = {
        "package": settings.package_url,
        "dronescheduler": settings.dronescheduler_url,
        "delivery": settings.delivery_url,
    }[service]
    return url.rstrip("/")


def queue_redis_client(
    settings: WorkflowSettings, credential: AsyncTokenCredential | None
) -> Redis | None:
    """The queue's own Redis client (Redis Streams transport), sized for the handlers and
    authenticated with Microsoft Entra ID like the service's other Redis client."""
    queue = settings.queue
    if queue.transport != "redis":
        return None
    return streams_client(
        queue.redis_url or settings.redis.url,
        settings=settings.redis,
        credential=credential,
        receive_wait=queue.receive_wait,
        max_concurrency=queue.max_concurrency,
    )


def _health_check(probe: ResilientClient, url: str) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        response = await probe.get(url + "/healthz")
        if response.status_code != 200:
            raise RuntimeError(f"/healthz answered {response.status_code}")

    return check


def _quietly(name: str, close: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    """``close``, with a failure logged instead of stopping the other clients from closing."""

    async def closing() -> None:
        try:
            await close()
        except Exception:
            logger.warning("closing the %s failed", name, exc_info=True)

    return closing


@contextlib.asynccontextmanager
async def running(app: ServiceApp, settings: WorkflowSettings) -> AsyncIterator[State]:
    async with AsyncExitStack() as stack:
        credential = await stack.enter_async_context(
            credential_for(redis=settings.redis, queue=settings.queue, outbound=settings.auth)
        )
        redis = create_redis_client(settings.redis, credential)
        stack.push_async_callback(_quietly("redis client", redis.aclose))
        clients: dict[str, ResilientClient] = {}
        for name in DOWNSTREAM:
            # One audience per service: a token for each, with the roles held on it.
            tokens = outbound_token_provider(
                settings.auth, credential, caller="workflow", target=name
            )
            if tokens is not None:
                stack.push_async_callback(tokens.close)
            token: TokenProvider | None = tokens.token if tokens is not None else None
            clients[name] = create_http_client(
                settings.http,
                base_url=downstream_url(settings, name),
                name=name,
                token_provider=token,
            )
        backends = Backends(**clients, outbound_scopes=settings.auth.outbound_scopes)
        stack.push_async_callback(_quietly("downstream clients", backends.aclose))
        pending = PendingStore(redis, ttl=settings.pending_ttl)
        consumer = Consumer(Workflow(backends, pending, area=settings.service_area), settings)
        queue_redis = queue_redis_client(settings, credential)
        if queue_redis is not None:
            stack.push_async_callback(_quietly("queue's redis client", queue_redis.aclose))
        receiver: MessageReceiver = create_receiver(
            settings.queue, redis=queue_redis, credential=credential
        )
        stack.push_async_callback(_quietly("receiver", receiver.close))
        dead_letters = create_dead_letter_store(
            settings.queue, redis=queue_redis, credential=credential
        )
        stack.push_async_callback(_quietly("dead-letter store", dead_letters.close))
        queue_view = QueueView(
            transport=settings.queue.transport,
            name=settings.queue.name,
            group=settings.queue.consumer_group,
            dead_letters=dead_letters,
            redis=queue_redis,
        )
        probe = create_probe_client(settings.downstream_health_timeout)
        stack.push_async_callback(_quietly("health probe client", probe.aclose))
        task = asyncio.create_task(receiver.run(consumer.handle), name="workflow-receiver")

        async def stop_receiving() -> None:
            consumer.stopping.set()
            await receiver.stop(settings.shutdown_grace)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, timeout=5.0)

        stack.push_async_callback(stop_receiving)

        async def receiving() -> None:
            if task.done():
                why = "cancelled" if task.cancelled() else repr(task.exception())
                raise RuntimeError(f"the receive loop ended: {why}")

        checks = app.readiness
        checks.add("queue", receiver.check_ready, timeout=settings.queue.readiness_timeout + 0.5)
        checks.add("redis", pending.ping)
        checks.add("receiver", receiving)
        for name in DOWNSTREAM:
            checks.add(
                name,
                _health_check(probe, downstream_url(settings, name)),
                timeout=settings.downstream_health_timeout + 0.5,
            )
        yield {"consumer": consumer, "receiver": receiver, "queue_view": queue_view}
