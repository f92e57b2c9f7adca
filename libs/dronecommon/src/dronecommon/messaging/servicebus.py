"""Azure Service Bus transport (``azure.servicebus.aio``), used in Azure.

* **Clients** come from a connection string (the emulator:
  ``Endpoint=sb://127.0.0.1:PORT;...;UseDevelopmentEmulator=true;``) or from a fully qualified
  namespace plus an ``AsyncTokenCredential`` (the workload identity); see
  :func:`servicebus_clients`.
* **Sending**: one ``ServiceBusMessage`` per message (body, ``message_id`` for the broker's
  duplicate detection, content type, application properties with the trace context). The SDK's
  sender is not coroutine-safe, so sends on one sender are serialised with a lock.
* **Receiving**: ``PEEK_LOCK`` with ``prefetch_count`` and ``max_wait_time``; each handled
  message is registered with an ``AutoLockRenewer`` (the SDK renews shortly before the lock the
  broker granted runs out — the lock duration and the maximum delivery count are properties of
  the queue, set by the infrastructure, not by this client). Settlement maps to
  ``complete_message``, ``abandon_message`` and ``dead_letter_message(reason,
  error_description)``; the SDK's lock-lost and already-settled errors become
  :class:`MessageLockLostError` and :class:`MessageAlreadySettledError`. The SDK's renewer
  checks its locks once a second, so ``stop()`` may take up to a second longer than ``grace``
  while it winds down.
* **Delivery count**: the SDK reports the AMQP header's count of *earlier* attempts (0 on the
  first delivery); one is added so both transports say 1 on the first delivery.
* **Dead letters**: the queue's ``$DeadLetterQueue`` sub-queue. Listing peeks it; replaying
  receives the chosen messages (by sequence number), sends copies to the queue and completes
  them. A copy gets the message id ``"<original id>:replay:<sequence number>"`` so the broker's
  duplicate detection does not drop it as a repeat of the original, while replaying the same dead
  letter twice is still caught.
* **Readiness** opens a short-lived link — a sender link for senders, a peek for receivers and
  the dead-letter store — through a client without retries, bounded by ``readiness_timeout``.
  When the bound is hit the probe's socket is closed explicitly: the SDK does not close a
  connection whose AMQP handshake was cancelled, which would leak it on a silent listener.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

from azure.core.credentials_async import AsyncTokenCredential
from azure.servicebus import (
    ServiceBusMessage,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import AutoLockRenewer, ServiceBusClient, ServiceBusReceiver
from azure.servicebus.exceptions import MessageAlreadySettled
from azure.servicebus.exceptions import MessageLockLostError as SdkMessageLockLostError

from dronecommon.messaging.base import (
    DeadLetter,
    MessageAlreadySettledError,
    MessageLockLostError,
    MessageSender,
    OutgoingMessage,
    PullReceiver,
    QueueNotReadyError,
    ReceivedMessage,
    outgoing_properties,
)

logger = logging.getLogger("dronecommon.messaging.servicebus")

# Application properties Service Bus adds to dead-lettered messages.
_DEAD_LETTER_PROPERTIES = frozenset({"DeadLetterReason", "DeadLetterErrorDescription"})


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


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _body_bytes(body: object) -> bytes:
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    try:
        return b"".join(bytes(part) for part in cast("Any", body))
    except TypeError:
        return str(body).encode()


def _properties(raw: Mapping[Any, Any] | None) -> dict[str, str]:
    return {_text(key): _text(value) for key, value in (raw or {}).items()}


def _to_sdk(message: OutgoingMessage) -> ServiceBusMessage:
    return ServiceBusMessage(
        body=message.body,
        message_id=message.message_id,
        content_type=message.content_type,
        application_properties=cast("Any", outgoing_properties(message)),
    )


def _abort_transport(handler: object) -> None:
    """Close the socket of a sender/receiver whose open was cut short (see module docstring)."""
    amqp_client = getattr(handler, "_handler", None)
    connection = getattr(amqp_client, "_connection", None)
    transport = getattr(connection, "_transport", None)
    writer = getattr(transport, "writer", None)
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.close()


async def _probe(
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
        batch = [_to_sdk(message) for message in messages]
        async with self._lock:
            if self._sender is None:
                self._sender = self._client.get_queue_sender(self.queue_name)
            await self._sender.send_messages(batch[0] if len(batch) == 1 else batch)

    async def check_ready(self) -> None:
        probe = self._probe_client.get_queue_sender(self.queue_name)
        await _probe(
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


class ServiceBusQueueMessage(ReceivedMessage):
    """A peek-locked Service Bus message; settles through the receiver that got it."""

    def __init__(self, receiver: ServiceBusReceiver, message: ServiceBusReceivedMessage) -> None:
        super().__init__(
            body=_body_bytes(message.body),
            message_id=_text(message.message_id or ""),
            properties=_properties(message.application_properties),
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
        await _probe(
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
            prefetch_count=self.prefetch,
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
            max_message_count=max_count, max_wait_time=self.receive_wait
        )
        return [ServiceBusQueueMessage(receiver, message) for message in received]

    def _track(self, message: ReceivedMessage) -> None:
        if not isinstance(message, ServiceBusQueueMessage) or self._lock_renewer is None:
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


def _dead_letter(message: ServiceBusReceivedMessage) -> DeadLetter:
    properties = _properties(message.application_properties)
    return DeadLetter(
        id=str(message.sequence_number),
        message_id=_text(message.message_id or ""),
        body=_body_bytes(message.body),
        content_type=message.content_type,
        properties={k: v for k, v in properties.items() if k not in _DEAD_LETTER_PROPERTIES},
        reason=message.dead_letter_reason or "",
        description=message.dead_letter_error_description or "",
        delivery_count=(message.delivery_count or 0) + 1,
        enqueued_at=message.enqueued_time_utc,
        dead_lettered_at=None,
    )


def _replay_copy(message: ServiceBusReceivedMessage) -> ServiceBusMessage:
    letter = _dead_letter(message)
    return ServiceBusMessage(
        body=letter.body,
        message_id=f"{letter.message_id}:replay:{letter.id}",
        content_type=letter.content_type,
        application_properties=cast("Any", letter.properties),
    )


class ServiceBusDeadLetterStore:
    """The dead-letter sub-queue of one Service Bus queue; ids are sequence numbers."""

    def __init__(
        self,
        client: ServiceBusClient,
        queue_name: str,
        *,
        readiness_timeout: float = 2.0,
        receive_wait: float = 1.0,
        probe_client: ServiceBusClient | None = None,
        owns_client: bool = True,
    ) -> None:
        self.queue_name = queue_name
        self.readiness_timeout = readiness_timeout
        self.receive_wait = receive_wait
        self._client = client
        self._probe_client = probe_client or client
        self._owns_client = owns_client

    def _dead_letter_receiver(self, **options: Any) -> ServiceBusReceiver:
        return self._client.get_queue_receiver(
            self.queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER, **options
        )

    async def list(self, limit: int = 100) -> builtins.list[DeadLetter]:
        letters: builtins.list[DeadLetter] = []
        async with self._dead_letter_receiver() as receiver:
            next_sequence = 0
            while len(letters) < limit:
                batch = await receiver.peek_messages(
                    max_message_count=limit - len(letters), sequence_number=next_sequence
                )
                if not batch:
                    break
                letters += [_dead_letter(message) for message in batch]
                next_sequence = max(int(m.sequence_number or 0) for m in batch) + 1
        return letters[:limit]

    async def replay(self, ids: Sequence[str]) -> builtins.list[str]:
        wanted = set(ids)
        replayed: builtins.list[str] = []
        if not wanted:
            return replayed
        held: builtins.list[ServiceBusReceivedMessage] = []
        async with (
            self._dead_letter_receiver(
                receive_mode=ServiceBusReceiveMode.PEEK_LOCK, max_wait_time=self.receive_wait
            ) as receiver,
            self._client.get_queue_sender(self.queue_name) as sender,
        ):
            try:
                while len(replayed) < len(wanted):
                    batch = await receiver.receive_messages(
                        max_message_count=50, max_wait_time=self.receive_wait
                    )
                    if not batch:
                        break
                    for message in batch:
                        key = str(message.sequence_number)
                        if key in wanted and key not in replayed:
                            await sender.send_messages(_replay_copy(message))
                            await receiver.complete_message(message)
                            replayed.append(key)
                        else:
                            # Keep it locked until the scan ends so it is not received again.
                            held.append(message)
            finally:
                for message in held:
                    with contextlib.suppress(Exception):
                        await receiver.abandon_message(message)
        return replayed

    async def check_ready(self) -> None:
        probe = self._probe_client.get_queue_receiver(
            self.queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER
        )
        await _probe(
            probe,
            lambda: probe.peek_messages(max_message_count=1),
            self.readiness_timeout,
            f"service bus dead letters {self.queue_name}",
        )

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()
            if self._probe_client is not self._client:
                await self._probe_client.close()
