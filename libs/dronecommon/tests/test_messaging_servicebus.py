"""The Service Bus queue at the SDK boundary.

There is no Service Bus on these machines, so the SDK's client, sender and receiver are replaced
by fakes (``FakeServiceBus*``) that record what the transport asks of them; the messages they
hand out are the SDK's own ``ServiceBusReceivedMessage`` objects, and lock renewal runs through
the SDK's real ``AutoLockRenewer``. Readiness is tested for real, with the real SDK client,
against a closed port, a silent listener and a listener that answers the AMQP header and then
falls silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from azure.servicebus import (
    ServiceBusMessage,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus._pyamqp.message import Header, Message, Properties
from azure.servicebus.aio import ServiceBusClient
from azure.servicebus.exceptions import MessageLockLostError as SdkMessageLockLostError
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from dronecommon.messaging import (
    MessageLockLostError,
    OutgoingMessage,
    QueueNotReadyError,
    ReceivedMessage,
    create_dead_letter_store,
    create_receiver,
    create_sender,
)
from dronecommon.messaging.servicebus import (
    ServiceBusDeadLetterStore,
    ServiceBusQueueReceiver,
    ServiceBusQueueSender,
)
from dronecommon.settings import QueueSettings
from dronetesting.servers import free_port

from .queue_readiness import check_every_client

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


# -- sending ---------------------------------------------------------------------------------------


async def test_the_sender_sends_service_bus_messages_with_the_trace_context(
    span_exporter: InMemorySpanExporter,
) -> None:
    fake = FakeServiceBusClient()
    sender = ServiceBusQueueSender(as_client(fake), QUEUE)
    tracer = trace.get_tracer("test")
    explicit = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with tracer.start_as_current_span("ingest") as span:
        await sender.send(outgoing(1, operation="delivery"))
        await sender.send_many([outgoing(2, traceparent=explicit), outgoing(3)])
    await sender.close()

    [sdk_sender] = fake.senders  # one link, reused
    assert len(sdk_sender.calls) == 2  # send_many is one call with a batch
    first, second, third = sdk_sender.sent
    assert isinstance(first, ServiceBusMessage)
    assert first.message_id == "m-1"
    assert first.content_type == "application/json"
    assert b"".join(first.body) == b'{"n": 1}'
    props = text_properties(first)
    assert props["operation"] == "delivery"
    span_context = span.get_span_context()
    assert props["traceparent"].startswith(
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
    )
    assert props["Diagnostic-Id"] == props["traceparent"]
    assert text_properties(second)["traceparent"] == explicit  # the caller's wins
    assert third.message_id == "m-3"
    assert sdk_sender.closed
    assert fake.closed


# -- receiving -------------------------------------------------------------------------------------


async def test_the_receiver_uses_peek_lock_and_completes_what_the_handler_completes() -> None:
    fake = FakeServiceBusClient()
    seen: list[ReceivedMessage] = []

    async def handle(msg: ReceivedMessage) -> None:
        seen.append(msg)
        await msg.complete()

    async with running(fake, handle, prefetch=7, receive_wait=0.05) as (_, sdk):
        sdk.deliver("m-1", b'{"n": 1}', properties={"operation": "delivery"})
        await wait_until(lambda: bool(sdk.settlements))

    assert sdk.options == {
        "receive_mode": ServiceBusReceiveMode.PEEK_LOCK,
        "prefetch_count": 0,  # the SDK buffers nothing: prefetch bounds each receive call
        "max_wait_time": 0.05,
    }
    assert set(sdk.receive_requests) == {7}
    [msg] = seen
    assert msg.message_id == "m-1"
    assert msg.body == b'{"n": 1}'
    assert msg.json() == {"n": 1}
    assert msg.content_type == "application/json"
    assert msg.properties == {"operation": "delivery"}
    assert msg.delivery_count == 1  # the SDK says 0 earlier attempts
    assert msg.enqueued_at is not None
    assert sdk.settlements == [("complete", "m-1", None, None)]
    assert sdk.closed  # run() closed its receiver


async def test_failures_abandon_and_dead_letter_carries_the_reason() -> None:
    fake = FakeServiceBusClient()
    counts: list[int] = []

    async def handle(msg: ReceivedMessage) -> None:
        counts.append(msg.delivery_count)
        if msg.delivery_count == 1:
            raise RuntimeError("transient")
        if msg.delivery_count == 2:
            return  # returns without settling
        await msg.dead_letter("MalformedMessage", "operation is missing")

    async with running(fake, handle) as (_, sdk):
        sdk.deliver("m-1")
        await wait_until(lambda: len(sdk.settlements) == 3)

    assert counts == [1, 2, 3]
    assert sdk.settlements == [
        ("abandon", "m-1", None, None),
        ("abandon", "m-1", None, None),
        ("dead_letter", "m-1", "MalformedMessage", "operation is missing"),
    ]


async def test_a_lost_lock_surfaces_as_message_lock_lost_error() -> None:
    fake = FakeServiceBusClient()
    errors: list[Exception] = []

    async def handle(msg: ReceivedMessage) -> None:
        try:
            await msg.complete()
        except MessageLockLostError as exc:
            errors.append(exc)
            raise

    async with running(fake, handle) as (_, sdk):
        sdk.lose_locks = True
        sdk.deliver("m-1")
        await wait_until(lambda: bool(errors))
    assert isinstance(errors[0], MessageLockLostError)
    assert isinstance(errors[0].__cause__, SdkMessageLockLostError)


async def test_locks_are_renewed_by_the_sdks_auto_lock_renewer_while_the_handler_runs() -> None:
    # The renewer polls once a second and renews short locks when half or less is left; the
    # broker's shortest lock is 5 s, a 3 s lock keeps the test short and still needs a renewal.
    fake = FakeServiceBusClient(lock_seconds=3.0)
    done: list[ReceivedMessage] = []

    async def handle(msg: ReceivedMessage) -> None:
        await asyncio.sleep(2.3)
        await msg.complete()
        done.append(msg)

    async with running(fake, handle) as (_, sdk):
        sdk.deliver("m-long")
        await wait_until(lambda: bool(done), 5)
        renewals = len(sdk.renewals)
    assert renewals >= 1
    assert set(sdk.renewals) == {"m-long"}
    assert done[0].settlement == "complete"
    assert not done[0].lock_lost


async def test_concurrency_is_bounded_and_receives_ask_only_for_free_slots() -> None:
    fake = FakeServiceBusClient()
    in_flight = peak = completed = 0

    async def handle(msg: ReceivedMessage) -> None:
        nonlocal in_flight, peak, completed
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        await msg.complete()
        completed += 1

    async with running(fake, handle, max_concurrency=3) as (_, sdk):
        for i in range(20):
            sdk.deliver(f"m-{i}", sequence_number=i + 1)
        await wait_until(lambda: completed == 20)
    assert peak == 3
    assert max(sdk.receive_requests) <= 3
    assert 0 not in sdk.receive_requests


async def test_stop_lets_fast_handlers_finish_and_abandons_the_slow_one() -> None:
    fake = FakeServiceBusClient()
    started: list[str] = []

    async def handle(msg: ReceivedMessage) -> None:
        started.append(msg.message_id)
        await asyncio.sleep(0.2 if msg.message_id == "m-fast" else 30)
        await msg.complete()

    rx = ServiceBusQueueReceiver(as_client(fake), QUEUE, receive_wait=0.05)
    task = asyncio.create_task(rx.run(handle))
    await wait_until(lambda: bool(fake.receivers))
    sdk = fake.receivers[0]
    sdk.deliver("m-fast", sequence_number=1)
    sdk.deliver("m-slow", sequence_number=2)
    await wait_until(lambda: len(started) == 2)
    began = time.monotonic()
    await rx.stop(grace=0.5)
    took = time.monotonic() - began
    assert task.done()
    await rx.close()

    assert 0.4 <= took < 2.0
    assert ("complete", "m-fast", None, None) in sdk.settlements
    assert ("abandon", "m-slow", None, None) in sdk.settlements
    assert sdk.closed


async def test_the_consumer_span_continues_the_senders_trace(
    span_exporter: InMemorySpanExporter,
) -> None:
    fake = FakeServiceBusClient()
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    async def handle(msg: ReceivedMessage) -> None:
        await msg.complete()

    async with running(fake, handle) as (_, sdk):
        sdk.deliver("m-1", properties={"traceparent": traceparent, "operation": "cancel"})
        await wait_until(lambda: bool(sdk.settlements))

    [span] = [s for s in span_exporter.get_finished_spans() if s.name == f"{QUEUE} process"]
    assert span.kind is SpanKind.CONSUMER
    assert span.parent is not None
    assert span.parent.trace_id == int("4bf92f3577b34da6a3ce929d0e0e4736", 16)
    assert span.parent.span_id == int("00f067aa0ba902b7", 16)
    attributes = span.attributes or {}
    assert attributes["messaging.system"] == "servicebus"
    assert attributes["messaging.destination.name"] == QUEUE
    assert attributes["messaging.message.id"] == "m-1"
    assert attributes["messaging.servicebus.message.delivery_count"] == 1
    assert attributes["messaging.servicebus.disposition_status"] == "complete"


# -- dead letters ----------------------------------------------------------------------------------


async def test_dead_letters_are_peeked_from_the_sub_queue_and_replayed_by_sequence_number() -> None:
    fake = FakeServiceBusClient()
    dlq = fake.dead_letters
    for seq, reason in ((5, "MaxDeliveryCountExceeded"), (6, "MalformedMessage")):
        dlq.deliver(
            f"m-{seq}",
            b'{"n": %d}' % seq,
            previous_deliveries=2,
            sequence_number=seq,
            properties={
                "operation": "delivery",
                "DeadLetterReason": reason,
                "DeadLetterErrorDescription": f"why {seq}",
            },
        )
    store = ServiceBusDeadLetterStore(as_client(fake), QUEUE, receive_wait=0.05)

    letters = await store.list(limit=10)
    assert dlq.options["sub_queue"] == ServiceBusSubQueue.DEAD_LETTER
    assert [(x.id, x.message_id, x.reason, x.description) for x in letters] == [
        ("5", "m-5", "MaxDeliveryCountExceeded", "why 5"),
        ("6", "m-6", "MalformedMessage", "why 6"),
    ]
    assert letters[0].properties == {"operation": "delivery"}
    assert letters[0].delivery_count == 3
    assert letters[0].body == b'{"n": 5}'

    assert await store.replay(["6", "404"]) == ["6"]
    [resent] = fake.senders[-1].sent
    assert resent.message_id == "m-6:replay:6"  # not dropped by duplicate detection
    assert b"".join(resent.body) == b'{"n": 6}'
    assert text_properties(resent) == {"operation": "delivery"}
    assert ("complete", "m-6", None, None) in dlq.settlements
    assert ("abandon", "m-5", None, None) in dlq.settlements  # scanned, left in place
    assert not any(s[1] == "m-6" and s[0] == "abandon" for s in dlq.settlements)
    await store.close()
    assert fake.closed


# -- readiness -------------------------------------------------------------------------------------


async def test_readiness_opens_a_sender_link_and_peeks_for_receivers() -> None:
    fake = FakeServiceBusClient()
    sender = ServiceBusQueueSender(as_client(fake), QUEUE)
    await sender.check_ready()
    assert fake.senders[-1].opened
    assert fake.senders[-1].closed  # the probe link does not linger
    receiver = ServiceBusQueueReceiver(as_client(fake), QUEUE)
    await receiver.check_ready()
    assert fake.receivers[-1].closed
    store = ServiceBusDeadLetterStore(as_client(fake), QUEUE)
    await store.check_ready()


@contextlib.asynccontextmanager
async def listener(*, answer_header: bool) -> AsyncIterator[int]:
    """A port that accepts connections and then says nothing (or only the AMQP header)."""
    writers: list[asyncio.StreamWriter] = []
    tasks: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            if answer_header:
                writer.write(await reader.readexactly(8))
                await writer.drain()
            while await reader.read(65536):
                pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)


def emulator_settings(port: int) -> QueueSettings:
    return QueueSettings(
        transport="servicebus",
        name=QUEUE,
        readiness_timeout=0.5,
        servicebus_connection_string=SecretStr(
            f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
        ),
    )


@pytest.mark.parametrize("target", ["closed port", "silent listener", "header then silence"])
async def test_readiness_fails_fast_against_a_broker_that_does_not_answer(target: str) -> None:
    async with listener(answer_header=target == "header then silence") as listening_port:
        port = free_port() if target == "closed port" else listening_port
        settings = emulator_settings(port)
        took, outcomes = await check_every_client(settings)
        assert took < 2.0
        assert all(isinstance(outcome, QueueNotReadyError) for outcome in outcomes), outcomes
        assert all("service bus" in str(outcome) for outcome in outcomes)
        if target == "closed port":
            assert all("connect call failed" in str(outcome).lower() for outcome in outcomes)
        else:
            assert all("no answer within 0.5s" in str(outcome) for outcome in outcomes)


def test_the_factory_needs_connection_details_for_service_bus() -> None:
    with pytest.raises(ValueError, match="connection string or a namespace"):
        create_sender(QueueSettings(transport="servicebus"))
    with pytest.raises(ValueError, match="credential"):
        create_receiver(
            QueueSettings(transport="servicebus", servicebus_namespace="x.servicebus.windows.net")
        )


async def test_the_factory_builds_service_bus_objects_from_the_settings() -> None:
    settings = emulator_settings(5672).model_copy(
        update={"max_concurrency": 4, "prefetch": 9, "receive_wait": 0.5}
    )
    sender = create_sender(settings)
    receiver = create_receiver(settings)
    store = create_dead_letter_store(settings)
    try:
        assert isinstance(sender, ServiceBusQueueSender)
        assert isinstance(receiver, ServiceBusQueueReceiver)
        assert isinstance(store, ServiceBusDeadLetterStore)
        assert (receiver.max_concurrency, receiver.prefetch, receiver.receive_wait) == (4, 9, 0.5)
    finally:
        for thing in (sender, receiver, store):
            await thing.close()
