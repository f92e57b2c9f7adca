"""Sending: one ``ServiceBusMessage`` per message, on one SDK sender opened on first use.

The SDK's sender is not coroutine-safe, so sends on one sender are serialised with a lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from azure.servicebus.aio import ServiceBusClient

from dronecommon.messaging.base import MessageSender, OutgoingMessage
from dronecommon.messaging.servicebus.clients import bounded_probe
from dronecommon.messaging.servicebus.convert import to_sdk


class ServiceBusQueueSender(MessageSender):
    """Sends to one Service Bus queue."""

    def __init__(
        self,
        client: ServiceBusClient,
        queue_name: str,
        *,
        readiness_timeout: float = 2.0,
        probe_client: ServiceBusClient | None = None,
        owns_client: bool = True,
    ) -> None:
        self.queue_name = queue_name
        self.readiness_timeout = readiness_timeout
        self._client = client
        self._probe_client = probe_client or client
        self._owns_client = owns_client
        self._sender: Any = None
        self._lock = asyncio.Lock()

    async def send(self, message: OutgoingMessage) -> None:
        await self.send_many([message])

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        batch = [to_sdk(message) for message in messages]
        async with self._lock:
            if self._sender is None:
                self._sender = self._client.get_queue_sender(self.queue_name)
            await self._sender.send_messages(batch[0] if len(batch) == 1 else batch)

    async def check_ready(self) -> None:
        probe = self._probe_client.get_queue_sender(self.queue_name)
        await bounded_probe(
            probe,
            probe.__aenter__,
            self.readiness_timeout,
            f"service bus queue {self.queue_name} (send)",
        )

    async def close(self) -> None:
        async with self._lock:
            if self._sender is not None:
                sender, self._sender = self._sender, None
                await sender.close()
        if self._owns_client:
            await self._client.close()
            if self._probe_client is not self._client:
                await self._probe_client.close()
