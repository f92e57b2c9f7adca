"""The Service Bus queue's test kit: fakes of the SDK's client, sender and receiver that record what
the transport asks of them (handing out the SDK's own ``ServiceBusReceivedMessage`` objects),
running a receiver on them, messages (``test_messaging_servicebus.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from azure.servicebus import (
    ServiceBusMessage,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus._pyamqp.message import Header, Message, Properties
from azure.servicebus.aio import ServiceBusClient
from azure.servicebus.exceptions import MessageLockLostError as SdkMessageLockLostError

from dronecommon.messaging import (
    OutgoingMessage,
    ReceivedMessage,
)
from dronecommon.messaging.servicebus import (
    ServiceBusQueueReceiver,
)

QUEUE = "deliveryrequests"


# -- fakes of the SDK ------------------------------------------------------------------------------


def sdk_message(
    receiver: FakeServiceBusReceiver,
    message_id: str,
    body: bytes,
    *,
    properties: dict[str, str] | None = None,
    previous_deliveries: int = 0,
    sequence_number: int = 1,
    lock_seconds: float = 30.0,
) -> ServiceBusReceivedMessage:
    """The SDK's own received-message type, as the broker would fill it."""
    now = datetime.now(UTC)
    amqp = Message(
        header=Header(delivery_count=previous_deliveries),
        properties=Properties(message_id=message_id.encode(), content_type=b"application/json"),
        application_properties={k.encode(): v.encode() for k, v in (properties or {}).items()},
        message_annotations={
            b"x-opt-enqueued-time": int(now.timestamp() * 1000),
            b"x-opt-sequence-number": sequence_number,
            b"x-opt-locked-until": int((now + timedelta(seconds=lock_seconds)).timestamp() * 1000),
        },
        data=[body],
    )
    return ServiceBusReceivedMessage(
        amqp,
        receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
        receiver=receiver,
        lock_token=uuid.uuid4(),
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class FakeServiceBusSender:
    """Fake of ``azure.servicebus.aio.ServiceBusSender``."""

    def __init__(self) -> None:
        self.calls: list[ServiceBusMessage | list[ServiceBusMessage]] = []
        self.opened = False
        self.closed = False

    @property
    def sent(self) -> list[ServiceBusMessage]:
        flat: list[ServiceBusMessage] = []
        for call in self.calls:
            flat += call if isinstance(call, list) else [call]
        return flat

    async def send_messages(self, message: ServiceBusMessage | list[ServiceBusMessage]) -> None:
        self.calls.append(message)

    async def __aenter__(self) -> FakeServiceBusSender:
        self.opened = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self.closed = True


class FakeServiceBusReceiver:
    """Fake of ``azure.servicebus.aio.ServiceBusReceiver``: a tiny in-memory broker."""

    def __init__(self, options: dict[str, Any], *, lock_seconds: float = 30.0) -> None:
        self.options = options
        self.lock_seconds = lock_seconds
        self.available: list[ServiceBusReceivedMessage] = []
        self.settlements: list[tuple[str, str, str | None, str | None]] = []
        self.receive_requests: list[int] = []
        self.renewals: list[str] = []
        self.lose_locks = False
        self._running = True  # what AutoLockRenewer looks at
        self.closed = False
        self._arrived = asyncio.Event()

    def deliver(
        self, message_id: str, body: bytes = b"{}", previous_deliveries: int = 0, **kw: Any
    ) -> ServiceBusReceivedMessage:
        message = sdk_message(
            self,
            message_id,
            body,
            previous_deliveries=previous_deliveries,
            lock_seconds=self.lock_seconds,
            **kw,
        )
        self.available.append(message)
        self._arrived.set()
        return message

    async def receive_messages(
        self, max_message_count: int | None = None, max_wait_time: float | None = None
    ) -> list[ServiceBusReceivedMessage]:
        self.receive_requests.append(max_message_count or 0)
        if not self.available:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max_wait_time or 0.05):
                    await self._arrived.wait()
        batch = self.available[: max_message_count or 1]
        del self.available[: len(batch)]
        return batch

    def _settle(
        self,
        outcome: str,
        message: ServiceBusReceivedMessage,
        reason: str | None = None,
        description: str | None = None,
    ) -> None:
        if self.lose_locks:
            raise SdkMessageLockLostError(message="The lock on the message lock has expired.")
        self.settlements.append((outcome, str(message.message_id), reason, description))
        message._settled = True

    async def complete_message(self, message: ServiceBusReceivedMessage) -> None:
        self._settle("complete", message)

    async def abandon_message(self, message: ServiceBusReceivedMessage) -> None:
        self._settle("abandon", message)
        # The broker makes it available again with one more delivery counted.
        self.deliver(
            str(message.message_id),
            b"".join(message.body),
            previous_deliveries=(message.delivery_count or 0) + 1,
            properties={
                _text(key): _text(value)
                for key, value in (message.application_properties or {}).items()
            },
        )

    async def dead_letter_message(
        self,
        message: ServiceBusReceivedMessage,
        reason: str | None = None,
        error_description: str | None = None,
    ) -> None:
        self._settle("dead_letter", message, reason, error_description)

    async def renew_message_lock(self, message: ServiceBusReceivedMessage) -> datetime:
        self.renewals.append(str(message.message_id))
        message._expiry = datetime.now(UTC) + timedelta(seconds=self.lock_seconds)
        return message._expiry

    async def peek_messages(
        self, max_message_count: int = 1, *, sequence_number: int = 0
    ) -> list[ServiceBusReceivedMessage]:
        start = sequence_number or 1
        return [m for m in self.available if (m.sequence_number or 0) >= start][:max_message_count]

    async def __aenter__(self) -> FakeServiceBusReceiver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._running = False
        self.closed = True


class FakeServiceBusClient:
    """Fake of ``azure.servicebus.aio.ServiceBusClient``: hands out the fakes above."""

    def __init__(self, *, lock_seconds: float = 30.0) -> None:
        self.lock_seconds = lock_seconds
        self.senders: list[FakeServiceBusSender] = []
        self.receivers: list[FakeServiceBusReceiver] = []
        self.dead_letters = FakeServiceBusReceiver({}, lock_seconds=lock_seconds)
        self.closed = False

    def get_queue_sender(self, queue_name: str) -> FakeServiceBusSender:
        assert queue_name == QUEUE
        sender = FakeServiceBusSender()
        self.senders.append(sender)
        return sender

    def get_queue_receiver(self, queue_name: str, **options: Any) -> FakeServiceBusReceiver:
        assert queue_name == QUEUE
        if options.get("sub_queue") == ServiceBusSubQueue.DEAD_LETTER:
            self.dead_letters.options = options
            self.dead_letters._running = True
            return self.dead_letters
        receiver = FakeServiceBusReceiver(options, lock_seconds=self.lock_seconds)
        self.receivers.append(receiver)
        return receiver

    async def close(self) -> None:
        self.closed = True


def as_client(fake: FakeServiceBusClient) -> ServiceBusClient:
    return cast("ServiceBusClient", fake)


# -- helpers ---------------------------------------------------------------------------------------


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(
    fake: FakeServiceBusClient,
    handler: Callable[[ReceivedMessage], Awaitable[None]],
    **options: Any,
) -> AsyncIterator[tuple[ServiceBusQueueReceiver, FakeServiceBusReceiver]]:
    options.setdefault("receive_wait", 0.05)
    rx = ServiceBusQueueReceiver(as_client(fake), QUEUE, **options)
    task = asyncio.create_task(rx.run(handler))
    await wait_until(lambda: bool(fake.receivers))
    try:
        yield rx, fake.receivers[-1]
    finally:
        if not task.done():
            await rx.stop(2.0)
        await asyncio.gather(task, return_exceptions=True)
        await rx.close()


def outgoing(n: int | str, **properties: str) -> OutgoingMessage:
    return OutgoingMessage(
        body=json.dumps({"n": n}).encode(), message_id=f"m-{n}", properties=dict(properties)
    )


def text_properties(message: ServiceBusMessage) -> dict[str, str]:
    raw = message.application_properties or {}
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in raw.items()
    }
