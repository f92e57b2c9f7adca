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
from typing import Any

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from fastapi import FastAPI
from redis.asyncio import Redis

from dronecommon import readiness
from dronecommon.auth.clients import create_redis_client
from dronecommon.auth.credentials import create_credential, outbound_token_provider
from dronecommon.httpclient import ResilientClient, create_http_client
from dronecommon.httpclient.client import TokenProvider
from dronecommon.messaging import MessageReceiver, create_receiver

from .backends import Backends
from .consumer import Consumer
from .repository import PendingStore
from .service import Workflow
from .settings import WorkflowSettings

logger = logging.getLogger("workflow.runtime")

DOWNSTREAM = ("package", "dronescheduler", "delivery")


def needs_credential(settings: WorkflowSettings) -> bool:
    """Whether any client authenticates with the workload identity."""
    queue = settings.queue
    return (
        settings.redis.use_entra_id
        or (queue.transport == "servicebus" and queue.servicebus_connection_string is None)
        or (bool(settings.auth.outbound_scope) and not settings.auth.dev_signing_key_file)
    )


def downstream_url(settings: WorkflowSettings, service: str) -> str:
    url = {
        "package": settings.package_url,
        "dronescheduler": settings.dronescheduler_url,
        "delivery": settings.delivery_url,
    }[service]
    return url.rstrip("/")


def _queue_redis(
    settings: WorkflowSettings, credential: AsyncTokenCredential | None
) -> Redis | None:
    """The queue's own Redis client (Redis Streams transport), sized for the handlers.

    Built here rather than by the messaging factory so that its pool holds a connection per
    concurrent handler (the factory's client keeps redis-py's default of 100, which a
    ``max_concurrency`` near 100 exhausts: settling then fails with "Too many connections") and
    so that it authenticates with Microsoft Entra ID like the service's other Redis client.
    """
    queue = settings.queue
    if queue.transport != "redis":
        return None
    return create_redis_client(
        settings.redis,
        credential,
        url=queue.redis_url or settings.redis.url,
        # A blocking XREADGROUP waits up to receive_wait: the socket timeout must outlast it.
        socket_timeout=max(5.0, queue.receive_wait + 5.0),
        socket_connect_timeout=5.0,
        max_connections=queue.max_concurrency + 16,
    )


def _health_check(probe: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        response = await probe.get(url + "/healthz")
        if response.status_code != 200:
            raise RuntimeError(f"/healthz answered {response.status_code}")

    return check


@contextlib.asynccontextmanager
async def running(app: FastAPI, settings: WorkflowSettings) -> AsyncIterator[dict[str, Any]]:
    credential: AsyncTokenCredential | None = (
        create_credential() if needs_credential(settings) else None
    )
    redis = create_redis_client(settings.redis, credential)
    tokens = outbound_token_provider(settings.auth, credential, caller="workflow")
    token: TokenProvider | None = tokens.token if tokens is not None else None
    clients: dict[str, ResilientClient] = {
        name: create_http_client(
            settings.http, base_url=downstream_url(settings, name), name=name, token_provider=token
        )
        for name in DOWNSTREAM
    }
    backends = Backends(**clients)
    pending = PendingStore(redis, ttl=settings.pending_ttl)
    consumer = Consumer(Workflow(backends, pending), settings)
    queue_redis = _queue_redis(settings, credential)
    receiver: MessageReceiver = create_receiver(
        settings.queue, redis=queue_redis, credential=credential
    )
    probe = httpx.AsyncClient(timeout=settings.downstream_health_timeout, trust_env=False)
    task = asyncio.create_task(receiver.run(consumer.handle), name="workflow-receiver")

    async def receiving() -> None:
        if task.done():
            why = "cancelled" if task.cancelled() else repr(task.exception())
            raise RuntimeError(f"the receive loop ended: {why}")

    checks = readiness(app)
    checks.add("queue", receiver.check_ready, timeout=settings.queue.readiness_timeout + 0.5)
    checks.add("redis", pending.ping)
    checks.add("receiver", receiving)
    for name in DOWNSTREAM:
        checks.add(
            name,
            _health_check(probe, downstream_url(settings, name)),
            timeout=settings.downstream_health_timeout + 0.5,
        )
    try:
        yield {"consumer": consumer, "receiver": receiver}
    finally:
        consumer.stopping.set()
        try:
            await receiver.stop(settings.shutdown_grace)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, timeout=5.0)
        finally:
            closers = [receiver.close, backends.aclose, probe.aclose, redis.aclose]
            if queue_redis is not None:
                closers.append(queue_redis.aclose)
            for close in closers:
                try:
                    await close()
                except Exception:
                    logger.warning("closing %s failed", close, exc_info=True)
            if tokens is not None:
                await tokens.close()
            if credential is not None:
                await credential.close()
