"""Service Bus locks at the SDK boundary: no message is locked for a receiver without renewal.

There is no Service Bus here, so the SDK's receiver is replaced by a fake that models what the
broker and the SDK do with *prefetch*: a receiver opened with ``prefetch_count=P`` holds up to
``P + 1`` messages locked in its buffer (the lock clock runs from the moment the broker hands a
message over, not from when the application takes it out of the buffer), while with
``prefetch_count=0`` a receive call locks only what it asks for. Locks expire for real: settling
or renewing a message whose lock ran out raises the SDK's ``MessageLockLostError``. Renewal runs
through the SDK's real ``AutoLockRenewer``, subclassed only to record when each message was
registered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from azure.servicebus import ServiceBusReceivedMessage, ServiceBusReceiveMode
from azure.servicebus._pyamqp.message import Header, Message, Properties
from azure.servicebus.aio import AutoLockRenewer, ServiceBusClient
from azure.servicebus.exceptions import MessageLockLostError as SdkMessageLockLostError

from dronecommon.messaging import ReceivedMessage
from dronecommon.messaging.servicebus import ServiceBusQueueReceiver

QUEUE = "deliveryrequests"


class PrefetchingReceiver:
    """Fake of ``azure.servicebus.aio.ServiceBusReceiver`` with the SDK's prefetch buffer."""

    def __init__(self, options: dict[str, Any], *, lock_seconds: float) -> None:
        self.options = options
        self.prefetch = int(options.get("prefetch_count", 0))
        self.lock_seconds = lock_seconds
        self.available: list[str] = []
        self.buffer: list[ServiceBusReceivedMessage] = []
        self.locked: dict[str, float] = {}  # message id -> when the broker locked it (monotonic)
        self.unsettled: set[str] = set()
        self.most_unsettled = 0
        self.completed: list[str] = []
        self.lock_lost: list[str] = []
        self._running = True  # what AutoLockRenewer looks at
        self._arrived = asyncio.Event()

    def deliver(self, message_id: str) -> None:
        self.available.append(message_id)
        self._arrived.set()

    def _lock(self, count: int) -> list[ServiceBusReceivedMessage]:
        """The broker hands ``count`` messages over, locked from now."""
        taken, self.available = self.available[:count], self.available[count:]
        now = datetime.now(UTC)
        messages = []
        for message_id in taken:
            amqp = Message(
                header=Header(delivery_count=0),
                properties=Properties(
                    message_id=message_id.encode(), content_type=b"application/json"
                ),
                message_annotations={
                    b"x-opt-enqueued-time": int(now.timestamp() * 1000),
                    b"x-opt-sequence-number": len(self.locked) + 1,
                    b"x-opt-locked-until": int(
                        (now + timedelta(seconds=self.lock_seconds)).timestamp() * 1000
                    ),
                },
                data=[b"{}"],
            )
            messages.append(
                ServiceBusReceivedMessage(
                    amqp,
                    receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
                    receiver=self,
                    lock_token=uuid.uuid4(),
                )
            )
            self.locked[message_id] = time.monotonic()
            self.unsettled.add(message_id)
        self.most_unsettled = max(self.most_unsettled, len(self.unsettled))
        return messages

    async def receive_messages(
        self, max_message_count: int | None = None, max_wait_time: float | None = None
    ) -> list[ServiceBusReceivedMessage]:
        count = max_message_count or self.prefetch or 1
        if not self.available and not self.buffer:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max_wait_time or 0.05):
                    await self._arrived.wait()
        if self.prefetch == 0:
            return self._lock(count)  # credit for exactly what is asked
        # With prefetch the link keeps its buffer topped up: those messages are locked already.
        self.buffer += self._lock(self.prefetch + 1 - len(self.buffer))
        batch, self.buffer = self.buffer[:count], self.buffer[count:]
        return batch

    def _check_lock(self, message: ServiceBusReceivedMessage) -> None:
        expiry = message.locked_until_utc
        if expiry is not None and datetime.now(UTC) > expiry:
            self.lock_lost.append(str(message.message_id))
            raise SdkMessageLockLostError(message="The lock on the message lock has expired.")

    async def complete_message(self, message: ServiceBusReceivedMessage) -> None:
        self._check_lock(message)
        self.completed.append(str(message.message_id))
        self.unsettled.discard(str(message.message_id))
        message._settled = True

    async def abandon_message(self, message: ServiceBusReceivedMessage) -> None:
        self._check_lock(message)
        self.unsettled.discard(str(message.message_id))
        message._settled = True
        self.deliver(str(message.message_id))

    async def dead_letter_message(self, message: ServiceBusReceivedMessage, **_: Any) -> None:
        raise AssertionError("nothing is dead-lettered here")

    async def renew_message_lock(self, message: ServiceBusReceivedMessage) -> datetime:
        self._check_lock(message)
        message._expiry = datetime.now(UTC) + timedelta(seconds=self.lock_seconds)
        return message._expiry

    async def close(self) -> None:
        self._running = False


class FakeClient:
    """Fake of ``azure.servicebus.aio.ServiceBusClient`` handing out one prefetching receiver."""

    def __init__(self, *, lock_seconds: float) -> None:
        self.lock_seconds = lock_seconds
        self.receivers: list[PrefetchingReceiver] = []

    def get_queue_receiver(self, queue_name: str, **options: Any) -> PrefetchingReceiver:
        assert queue_name == QUEUE
        receiver = PrefetchingReceiver(options, lock_seconds=self.lock_seconds)
        self.receivers.append(receiver)
        return receiver

    async def close(self) -> None:
        pass


class RecordingRenewer(AutoLockRenewer):
    """The SDK's renewer, recording when each message was registered (monotonic time)."""

    def __init__(self) -> None:
        super().__init__(max_lock_renewal_duration=300)
        self.registered: dict[str, float] = {}

    def register(self, receiver: Any, renewable: Any, *args: Any, **kwargs: Any) -> None:
        self.registered[str(renewable.message_id)] = time.monotonic()
        super().register(receiver, renewable, *args, **kwargs)


async def test_no_message_is_locked_for_the_receiver_without_its_lock_being_renewed() -> None:
    # Two handlers, eight messages, each held for 1 s (as a handler waiting out a backoff does),
    # 3 s locks, and the default prefetch: the last messages wait 3 s for a handler. Whatever the
    # receiver holds must be under renewal from the moment it is locked, or it comes back with
    # its lock lost and a delivery counted for nothing.
    lock_seconds = 3.0
    fake = FakeClient(lock_seconds=lock_seconds)
    renewer = RecordingRenewer()
    completed: list[str] = []
    all_completed = asyncio.Event()

    async def handle(message: ReceivedMessage) -> None:
        await asyncio.sleep(1.0)
        await message.complete()
        completed.append(message.message_id)
        if len(completed) == 8:
            all_completed.set()

    receiver = ServiceBusQueueReceiver(
        cast("ServiceBusClient", fake),
        QUEUE,
        max_concurrency=2,
        prefetch=64,
        receive_wait=0.05,
        lock_renewer=renewer,
    )
    task = asyncio.create_task(receiver.run(handle))
    try:
        await asyncio.sleep(0.1)  # the receive loop opens its receiver
        [broker] = fake.receivers
        for n in range(8):
            broker.deliver(f"m-{n}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                await all_completed.wait()
    finally:
        await receiver.stop(2.0)
        await asyncio.gather(task, return_exceptions=True)
        await receiver.close()

    assert broker.lock_lost == []
    assert sorted(broker.completed) == sorted(f"m-{n}" for n in range(8))
    # Every lock the broker granted was put under renewal at once...
    late = {
        message_id: round(renewer.registered[message_id] - locked_at, 2)
        for message_id, locked_at in broker.locked.items()
        if renewer.registered.get(message_id, float("inf")) - locked_at > 0.2
    }
    assert late == {}, f"locked, but registered for renewal only this many seconds later: {late}"
    # ... and the receiver never held more locked messages than it has handlers.
    assert broker.most_unsettled <= 2
