"""Delivery events and the consumer-group reader, against a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from dronecommon.domain import ConfirmationType, Location
from dronecommon.events import (
    AssignedData,
    ClosedData,
    DeliveryEvent,
    EtaChangedData,
    EventDecodeError,
    EventReader,
    EventType,
    append,
    decode,
    encode,
    events_stream,
)
from dronecommon.streams import StreamEntry, StreamGroupReader
from dronecommon.telemetry import instrument_libraries
from dronetesting.servers import RedisServer

AT = dt.datetime(2030, 1, 1, 10, 0, tzinfo=dt.UTC)
HERE = Location(latitude=47.6, longitude=-122.3, altitude=0)


def assigned(delivery_id: str) -> DeliveryEvent:
    data = AssignedData(
        drone_id="drone-1",
        pickup=HERE,
        dropoff=HERE,
        pickupETA=AT,
        deliveryETA=AT + dt.timedelta(minutes=20),
        confirmation_required=ConfirmationType.VOICE,
        expedited=True,
    )
    return DeliveryEvent.of(EventType.ASSIGNED, delivery_id, AT, data)


def test_events_round_trip_through_their_entry_fields() -> None:
    event = assigned("d-1")
    fields = encode(event)
    assert fields[0::2] == ["type", "deliveryId", "at", "data"]
    assert fields[5] == "2030-01-01T10:00:00.000Z"
    back = decode(StreamEntry("1-0", dict(zip(fields[0::2], fields[1::2], strict=True))))
    assert back.id == "1-0"
    assert (back.type, back.delivery_id, back.at) == (event.type, event.delivery_id, event.at)
    data = back.data_as(AssignedData)
    assert data.confirmation_required is ConfirmationType.VOICE
    assert data.delivery_eta == AT + dt.timedelta(minutes=20)
    assert back.data["pickupETA"] == "2030-01-01T10:00:00.000Z"  # camelCase on the wire

    eta = DeliveryEvent.of(
        EventType.ETA_CHANGED, "d-1", AT, EtaChangedData(deliveryETA=AT, previousETA=AT)
    )
    assert isinstance(
        decode(StreamEntry("2-0", dict(_pairs(encode(eta))))).parsed(), EtaChangedData
    )


def _pairs(fields: list[str]) -> list[tuple[str, str]]:
    return list(zip(fields[0::2], fields[1::2], strict=True))


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "Teleported", "deliveryId": "d", "at": "2030-01-01T00:00:00Z", "data": "{}"},
        {"type": "Assigned", "at": "2030-01-01T00:00:00Z", "data": "{}"},
        {"type": "Assigned", "deliveryId": "d", "at": "yesterday", "data": "{}"},
        {"type": "Assigned", "deliveryId": "d", "at": "2030-01-01T00:00:00Z", "data": "[1]"},
        {"type": "Assigned", "deliveryId": "d", "at": "2030-01-01T00:00:00Z", "data": "{"},
    ],
)
def test_malformed_entries_are_refused(fields: dict[str, str]) -> None:
    with pytest.raises(EventDecodeError):
        decode(StreamEntry("1-0", fields))


def test_data_of_the_wrong_shape_is_refused() -> None:
    event = DeliveryEvent(EventType.CANCELLED, "d", AT, {"at": "never"})
    with pytest.raises(EventDecodeError):
        event.data_as(ClosedData)


class Collector:
    """A handler that records what it got, and can be told to fail."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.failures = 0
        self.got = asyncio.Event()

    async def __call__(self, events: Sequence[DeliveryEvent]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the durable write failed")
        self.batches.append([e.delivery_id for e in events])
        self.got.set()

    @property
    def seen(self) -> list[str]:
        return [d for batch in self.batches for d in batch]


@contextlib.asynccontextmanager
async def reading(reader: EventReader, handler: Collector) -> AsyncIterator[None]:
    task = asyncio.create_task(reader.run(handler))
    try:
        yield
    finally:
        reader.stop()
        await asyncio.wait_for(task, timeout=5)


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_group_reads_every_event_once_in_order_and_acknowledges(redis: Redis) -> None:
    for n in range(25):
        await append(redis, assigned(f"d-{n}"))
    reader = EventReader(redis, "simulator", "sim-1", batch_size=10, block=0.05)
    handler = Collector()
    async with reading(reader, handler):
        await wait_for(lambda: len(handler.seen) == 25)
    assert handler.seen == [f"d-{n}" for n in range(25)]
    assert max(len(batch) for batch in handler.batches) == 10
    assert await reader.reader.pending_count() == 0
    # Another group reads the same events for itself.
    other = Collector()
    notifier = EventReader(redis, "notifier", "n-1", block=0.05)
    async with reading(notifier, other):
        await wait_for(lambda: len(other.seen) == 25)
    # Entries stay in the stream for the other groups (the producers trim it).
    assert await redis.xlen(events_stream()) == 25


async def test_a_failed_batch_comes_back_in_order_before_anything_newer(redis: Redis) -> None:
    for n in range(3):
        await append(redis, assigned(f"d-{n}"))
    reader = EventReader(redis, "simulator", "sim-1", batch_size=2, block=0.05)
    reader.reader.retry_base = 0.01
    handler = Collector()
    handler.failures = 2
    async with reading(reader, handler):
        await wait_for(lambda: len(handler.seen) == 3)
        await append(redis, assigned("d-3"))
        await wait_for(lambda: len(handler.seen) == 4)
    assert handler.seen == ["d-0", "d-1", "d-2", "d-3"]


async def test_a_consumer_that_crashed_before_its_ack_gets_the_events_again(redis: Redis) -> None:
    for n in range(4):
        await append(redis, assigned(f"d-{n}"))
    crashed = StreamGroupReader(redis, events_stream(), "simulator", "sim-1", block=0.05)
    await crashed.ensure_group()
    read = await crashed.read()
    assert [decode(e).delivery_id for e in read] == ["d-0", "d-1", "d-2", "d-3"]
    # ... and the process dies before acknowledging. Its successor under the same name:
    await append(redis, assigned("d-4"))
    restarted = EventReader(redis, "simulator", "sim-1", block=0.05)
    handler = Collector()
    async with reading(restarted, handler):
        await wait_for(lambda: len(handler.seen) == 5)
    assert handler.seen == ["d-0", "d-1", "d-2", "d-3", "d-4"]
    assert await restarted.reader.pending_count() == 0


async def test_entries_a_dead_consumer_left_pending_are_reclaimed(redis: Redis) -> None:
    for n in range(3):
        await append(redis, assigned(f"d-{n}"))
    dead = StreamGroupReader(redis, events_stream(), "notifier", "pod-a", block=0.05)
    await dead.ensure_group()
    assert len(await dead.read()) == 3
    other = EventReader(redis, "notifier", "pod-b", block=0.05, claim_idle=0.2)
    other.reader.claim_interval = 0.05
    handler = Collector()
    async with reading(other, handler):
        await wait_for(lambda: len(handler.seen) == 3)
    assert sorted(handler.seen) == ["d-0", "d-1", "d-2"]
    assert await other.reader.pending_count() == 0


async def test_trimmed_and_malformed_entries_never_block_the_group(redis: Redis) -> None:
    stream = events_stream()
    await append(redis, assigned("d-0"))
    reader = StreamGroupReader(redis, stream, "simulator", "sim-1", block=0.05)
    await reader.ensure_group()
    pending = await reader.read()
    assert len(pending) == 1
    await redis.xdel(stream, pending[0].id)  # trimmed while pending
    await redis.xadd(stream, {"type": "Nonsense"})
    await append(redis, assigned("d-1"))
    events = EventReader(redis, "simulator", "sim-1", block=0.05)
    handler = Collector()
    async with reading(events, handler):
        await wait_for(lambda: handler.seen == ["d-1"])
    assert await events.reader.pending_count() == 0


async def test_readiness_creates_the_group_and_fails_when_redis_is_gone(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    client = Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        reader = EventReader(client, "simulator", "sim-1")
        await reader.check_ready()
        groups = await client.xinfo_groups(events_stream())
        assert [g["name"] for g in groups] == [b"simulator"]
        server.stop()
        with pytest.raises(Exception):  # noqa: B017, PT011 - any connection error
            await reader.check_ready()
    finally:
        await client.aclose()


async def test_reading_and_handling_events_start_no_traces(
    redis: Redis, span_exporter: InMemorySpanExporter
) -> None:
    """Polls, acks and the handler's own Redis calls are untraced; the test's own are not."""
    instrument_libraries()
    await append(redis, assigned("d-traced"))
    handler = Collector()

    async def handle(events: Sequence[DeliveryEvent]) -> None:
        await redis.set("handled", len(events))
        await handler(events)

    reader = EventReader(redis, "simulator", "sim-1", block=0.05)
    task = asyncio.create_task(reader.run(handle))
    try:
        await wait_for(lambda: handler.seen == ["d-traced"])
        await asyncio.sleep(0.2)  # a few empty polls more
    finally:
        reader.stop()
        await asyncio.wait_for(task, timeout=5)
    assert await redis.get("handled") is not None  # traced: the test's own call
    names = [span.name for span in span_exporter.get_finished_spans()]
    assert "GET" in names
    assert not {"XREADGROUP", "XACK", "XGROUP", "SET"} & set(names), names
