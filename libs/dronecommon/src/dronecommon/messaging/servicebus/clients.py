"""Service Bus clients: one for the work and one without retries for readiness probes, and the
bounded probe itself.

A probe opens a short-lived link through the retry-less client within ``readiness_timeout``. When
the bound is hit the probe's socket is closed explicitly: the SDK does not close a connection
whose AMQP handshake was cancelled, which would leak it on a silent listener.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.servicebus.aio import ServiceBusClient

from dronecommon.messaging.base import QueueNotReadyError


def servicebus_clients(
    *,
    connection_string: str | None = None,
    namespace: str | None = None,
    credential: AsyncTokenCredential | None = None,
) -> tuple[ServiceBusClient, ServiceBusClient]:
    """A client for the work and a client without retries for readiness probes.

    The connection string wins when both are given; a namespace needs a credential.
    """
    if connection_string:
        return (
            ServiceBusClient.from_connection_string(connection_string),
            ServiceBusClient.from_connection_string(connection_string, retry_total=0),
        )
    if namespace:
        if credential is None:
            raise ValueError("a Service Bus namespace needs a credential (the workload identity)")
        return (
            ServiceBusClient(namespace, credential),
            ServiceBusClient(namespace, credential, retry_total=0),
        )
    raise ValueError("Service Bus needs a connection string or a namespace")


def _abort_transport(handler: object) -> None:
    """Close the socket of a sender/receiver whose open was cut short (see module docstring)."""
    amqp_client = getattr(handler, "_handler", None)
    connection = getattr(amqp_client, "_connection", None)
    transport = getattr(connection, "_transport", None)
    writer = getattr(transport, "writer", None)
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.close()


async def bounded_probe(
    handler: Any, operation: Callable[[], Awaitable[object]], limit: float, what: str
) -> None:
    """Run ``operation`` on a fresh SDK ``handler`` within ``limit`` seconds, then close it."""
    task = asyncio.ensure_future(operation())
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    try:
        await asyncio.wait({task}, timeout=limit)
    finally:
        if not task.done():
            _abort_transport(handler)
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await handler.close()
    if not task.done() or task.cancelled():
        raise QueueNotReadyError(f"{what}: no answer within {limit:g}s")
    error = task.exception()
    if error is not None:
        raise QueueNotReadyError(f"{what}: {type(error).__name__}: {error}") from error
