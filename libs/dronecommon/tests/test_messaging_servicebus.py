"""The Service Bus queue at the SDK boundary.

There is no Service Bus on these machines, so the SDK's client, sender and receiver are replaced
by fakes (``servicebus_fakes.py``) that record what the transport asks of them; the messages they
hand out are the SDK's own ``ServiceBusReceivedMessage`` objects, and lock renewal runs through
the SDK's real ``AutoLockRenewer``. Readiness against brokers that do not answer, with the real
SDK client, and the factory: ``test_messaging_servicebus_client.py``.
"""

from __future__ import annotations

import asyncio
import time

from azure.servicebus import ServiceBusMessage, ServiceBusReceiveMode, ServiceBusSubQueue
from azure.servicebus.exceptions import MessageLockLostError as SdkMessageLockLostError
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from dronecommon.messaging import MessageLockLostError, ReceivedMessage
from dronecommon.messaging.servicebus import (
    ServiceBusDeadLetterStore,
    ServiceBusQueueReceiver,
    ServiceBusQueueSender,
)

from .servicebus_fakes import (
    QUEUE,
    FakeServiceBusClient,
    as_client,
    outgoing,
    running,
    text_properties,
    wait_until,
)

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
