"""Receiving: ``PEEK_LOCK`` on the shared receive engine; lock renewal by the SDK's
``AutoLockRenewer``; settlement through the receiver that got the message.

**No message is locked without renewal.** The SDK's own prefetch buffer (``prefetch_count``) is
off: a message the broker puts in that buffer is locked from that moment, yet no handler (and so
no renewer) knows of it until a receive call takes it out, and with every handler busy — one
waiting out a 30 s backoff, say — it waits there until its lock expires, to come back later with
a delivery counted for nothing. With ``prefetch_count=0`` a receive call asks the broker for
exactly the messages it wants (the engine's free handler slots, at most the ``prefetch`` setting
per call) and the SDK gives back what arrives outside a receive call; every message received is
registered with the renewer at once, before it is handed to a handler.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Sequence

from azure.servicebus import ServiceBusReceivedMessage, ServiceBusReceiveMode
from azure.servicebus.aio import AutoLockRenewer, ServiceBusClient, ServiceBusReceiver
from azure.servicebus.exceptions import MessageAlreadySettled
from azure.servicebus.exceptions import MessageLockLostError as SdkMessageLockLostError

from dronecommon.messaging.base import (
    MessageAlreadySettledError,
    MessageLockLostError,
    ReceivedMessage,
)
from dronecommon.messaging.engine import PullReceiver
from dronecommon.messaging.servicebus.clients import bounded_probe
from dronecommon.messaging.servicebus.convert import body_bytes, string_properties, text

logger = logging.getLogger("dronecommon.messaging.servicebus")


class ServiceBusQueueMessage(ReceivedMessage):
    """A peek-locked Service Bus message; settles through the receiver that got it."""

    def __init__(self, receiver: ServiceBusReceiver, message: ServiceBusReceivedMessage) -> None:
        super().__init__(
            body=body_bytes(message.body),
            message_id=text(message.message_id or ""),
            properties=string_properties(message.application_properties),
            delivery_count=(message.delivery_count or 0) + 1,
            enqueued_at=message.enqueued_time_utc,
            content_type=message.content_type,
        )
        self.sdk_message = message
        self._receiver = receiver

    async def _call(self, operation: Awaitable[None]) -> None:
        try:
            await operation
        except SdkMessageLockLostError as exc:
            raise MessageLockLostError(str(exc)) from exc
        except MessageAlreadySettled as exc:
            raise MessageAlreadySettledError(str(exc)) from exc

    async def _complete(self) -> None:
        await self._call(self._receiver.complete_message(self.sdk_message))

    async def _abandon(self) -> None:
        await self._call(self._receiver.abandon_message(self.sdk_message))

    async def _dead_letter(self, reason: str, description: str) -> None:
        await self._call(
            self._receiver.dead_letter_message(
                self.sdk_message, reason=reason, error_description=description
            )
        )


class ServiceBusQueueReceiver(PullReceiver):
    """Receives from one Service Bus queue with peek-lock, prefetch and lock renewal."""

    messaging_system = "servicebus"

    def __init__(
        self,
        client: ServiceBusClient,
        queue_name: str,
        *,
        max_concurrency: int = 32,
        prefetch: int = 64,
        receive_wait: float = 1.0,
        readiness_timeout: float = 2.0,
        settle_timeout: float = 10.0,
        max_lock_renewal_duration: float = 300.0,
        probe_client: ServiceBusClient | None = None,
        lock_renewer: AutoLockRenewer | None = None,
        owns_client: bool = True,
    ) -> None:
        super().__init__(
            queue_name=queue_name, max_concurrency=max_concurrency, settle_timeout=settle_timeout
        )
        self.prefetch = prefetch
        self.receive_wait = receive_wait
        self.readiness_timeout = readiness_timeout
        self.max_lock_renewal_duration = max_lock_renewal_duration
        self._client = client
        self._probe_client = probe_client or client
        self._owns_client = owns_client
        self._lock_renewer = lock_renewer
        self._receiver: ServiceBusReceiver | None = None

    async def check_ready(self) -> None:
        probe = self._probe_client.get_queue_receiver(self.queue_name)
        await bounded_probe(
            probe,
            lambda: probe.peek_messages(max_message_count=1),
            self.readiness_timeout,
            f"service bus queue {self.queue_name} (receive)",
        )

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()
            if self._probe_client is not self._client:
                await self._probe_client.close()

    async def _start(self) -> None:
        self._receiver = self._client.get_queue_receiver(
            self.queue_name,
            receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
            prefetch_count=0,  # nothing locked in a buffer no renewer knows of (module docstring)
            max_wait_time=self.receive_wait,
        )
        if self._lock_renewer is None:
            self._lock_renewer = AutoLockRenewer(
                max_lock_renewal_duration=self.max_lock_renewal_duration
            )

    async def _finish(self) -> None:
        if self._lock_renewer is not None:
            with contextlib.suppress(Exception):
                await self._lock_renewer.close()
        if self._receiver is not None:
            receiver, self._receiver = self._receiver, None
            await receiver.close()

    async def _fetch(self, max_count: int) -> Sequence[ReceivedMessage]:
        receiver = self._receiver
        if receiver is None:
            raise RuntimeError("the receiver is not running")
        received = await receiver.receive_messages(
            max_message_count=min(max_count, max(1, self.prefetch)),
            max_wait_time=self.receive_wait,
        )
        messages = [ServiceBusQueueMessage(receiver, message) for message in received]
        for message in messages:
            self._renew(message)  # from receipt, not from when a handler starts
        return messages

    def _renew(self, message: ServiceBusQueueMessage) -> None:
        """Keep the lock of ``message`` alive until it is settled (the renewer stops then)."""
        if self._lock_renewer is None:
            return

        async def on_failure(_renewable: object, error: Exception | None) -> None:
            if message.settled:
                return
            message._mark_lock_lost()
            logger.warning(
                "lost the lock on message %s from %s: %r",
                message.message_id,
                self.queue_name,
                error,
            )

        try:
            self._lock_renewer.register(
                message._receiver, message.sdk_message, on_lock_renew_failure=on_failure
            )
        except Exception:
            logger.warning(
                "could not register message %s for lock renewal",
                message.message_id,
                exc_info=True,
            )
