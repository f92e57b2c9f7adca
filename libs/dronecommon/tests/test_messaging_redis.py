"""The Redis Streams queue against a real redis-server: competing consumers, settlement, lock
renewal and takeover, dead letters, shutdown, concurrency, tracing and readiness."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis

from dronecommon.messaging import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    DeadLetterStore,
    MessageAlreadySettledError,
    MessageLockLostError,
    MessageReceiver,
    MessageSender,
    OutgoingMessage,
    QueueNotReadyError,
    ReceivedMessage,
    create_dead_letter_store,
    create_receiver,
    create_sender,
)
from dronecommon.messaging.redis_streams import (
    RedisDeadLetterStore,
    RedisStreamReceiver,
    RedisStreamSender,
    dead_letter_key,
    stream_key,
)
from dronecommon.settings import QueueSettings
from dronecommon.telemetry import instrument_libraries
from dronetesting.servers import RedisServer, free_port

QUEUE = "deliveryrequests"
GROUP = "workflow"


def message(n: int | str, **properties: str) -> OutgoingMessage:
    return OutgoingMessage(
        body=json.dumps({"n": n}).encode(), message_id=f"m-{n}", properties=dict(properties)
    )


def receiver(url: str, **options: Any) -> RedisStreamReceiver:
    options.setdefault("receive_wait", 0.1)
    options.setdefault("lock_duration", 5.0)
    options.setdefault("max_concurrency", 8)
    options.setdefault("prefetch", 8)
    options.setdefault("settle_timeout", 2.0)
    return RedisStreamReceiver.from_url(url, QUEUE, **options)


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def eventually(probe: Callable[[], Awaitable[object]], expected: object) -> None:
    deadline = time.monotonic() + 10.0
    while (value := await probe()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r}, expected {expected!r}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(
    rx: RedisStreamReceiver, handler: Callable[[ReceivedMessage], Awaitable[None]]
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``rx`` in the background; stop it (grace 2 s) and close it afterwards."""
    task = asyncio.create_task(rx.run(handler))
    try:
        yield task
    finally:
        if not task.done():
            await rx.stop(2.0)
        await asyncio.gather(task, return_exceptions=True)
        await rx.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def sender(redis_url: str) -> AsyncIterator[RedisStreamSender]:
    tx = RedisStreamSender.from_url(redis_url, QUEUE)
    yield tx
    await tx.close()


async def test_keys_follow_the_documented_layout(
    redis: Redis, sender: RedisStreamSender, redis_url: str
) -> None:
    assert stream_key(QUEUE) == "queue:{deliveryrequests}"
    assert dead_letter_key(QUEUE) == "queue:{deliveryrequests}:deadletter"
    await sender.send(message(1, operation="delivery"))
    [(_, fields)] = await redis.xrange(stream_key(QUEUE)) or []
    assert fields is not None
    assert fields[b"message_id"] == b"m-1"
    assert json.loads(fields[b"body"]) == {"n": 1}
    assert fields[b"content_type"] == b"application/json"
    assert json.loads(fields[b"properties"])["operation"] == "delivery"


async def test_competing_receivers_handle_each_message_exactly_once(
    redis_url: str, redis: Redis, sender: RedisStreamSender
) -> None:
    handled: list[tuple[str, str]] = []

    def handler_for(name: str) -> Callable[[ReceivedMessage], Awaitable[None]]:
        async def handle(msg: ReceivedMessage) -> None:
            await asyncio.sleep(0.002)
            handled.append((name, msg.message_id))
            await msg.complete()

        return handle

    a, b = receiver(redis_url), receiver(redis_url)
    async with running(a, handler_for("a")), running(b, handler_for("b")):
        await asyncio.sleep(0.2)  # both consumers are waiting on the stream
        await sender.send_many([message(i) for i in range(200)])
        await wait_until(lambda: len(handled) >= 200)
        await asyncio.sleep(0.2)  # anything handled twice would show up now

    per_message = Counter(mid for _, mid in handled)
    assert len(per_message) == 200
    assert set(per_message.values()) == {1}
    per_receiver = Counter(name for name, _ in handled)
    assert per_receiver["a"] > 0
    assert per_receiver["b"] > 0
    assert await redis.xlen(stream_key(QUEUE)) == 0  # completed entries are deleted
    assert (await redis.xpending(stream_key(QUEUE), GROUP))["pending"] == 0


async def test_abandon_redelivers_with_a_higher_delivery_count(
    redis_url: str, sender: RedisStreamSender
) -> None:
    seen: list[ReceivedMessage] = []

    async def handle(msg: ReceivedMessage) -> None:
        seen.append(msg)
        if msg.delivery_count < 3:
            await msg.abandon()
        else:
            await msg.complete()

    async with running(receiver(redis_url), handle):
        await sender.send(message("x", operation="delivery"))
        await wait_until(lambda: any(m.settlement == "complete" for m in seen))

    assert [m.delivery_count for m in seen] == [1, 2, 3]
    assert [m.settlement for m in seen] == ["abandon", "abandon", "complete"]
    assert {m.message_id for m in seen} == {"m-x"}
    assert {m.body for m in seen} == {b'{"n": "x"}'}
    assert {m.enqueued_at for m in seen} == {seen[0].enqueued_at}
    assert all(m.properties["operation"] == "delivery" for m in seen)


async def test_handler_that_returns_or_raises_without_settling_gets_its_message_abandoned(
    redis_url: str, sender: RedisStreamSender
) -> None:
    seen: list[ReceivedMessage] = []

    async def handle(msg: ReceivedMessage) -> None:
        seen.append(msg)
        if msg.delivery_count == 1:
            return  # forgot to settle
        if msg.delivery_count == 2:
            raise RuntimeError("boom")
        await msg.complete()

    async with running(receiver(redis_url), handle):
        await sender.send(message(1))
        await wait_until(lambda: any(m.settlement == "complete" for m in seen))

    assert [(m.delivery_count, m.settlement) for m in seen] == [
        (1, "abandon"),
        (2, "abandon"),
        (3, "complete"),
    ]


async def test_settling_twice_raises(redis_url: str, sender: RedisStreamSender) -> None:
    errors: list[Exception] = []

    async def handle(msg: ReceivedMessage) -> None:
        await msg.complete()
        for settle in (msg.complete, msg.abandon):
            try:
                await settle()
            except MessageAlreadySettledError as exc:
                errors.append(exc)

    async with running(receiver(redis_url), handle):
        await sender.send(message(1))
        await wait_until(lambda: len(errors) == 2)
    assert all(isinstance(e, MessageAlreadySettledError) for e in errors)


async def test_max_delivery_count_dead_letters_then_replay_brings_the_message_back(
    redis_url: str, redis: Redis, sender: RedisStreamSender
) -> None:
    attempts: list[int] = []

    async def failing(msg: ReceivedMessage) -> None:
        attempts.append(msg.delivery_count)
        raise RuntimeError("downstream keeps failing")

    store = RedisDeadLetterStore.from_url(redis_url, QUEUE)
    try:
        async with running(receiver(redis_url, max_delivery_count=3), failing):
            await sender.send(message("poison", operation="delivery"))
            await eventually(lambda: store.count(), 1)

        assert attempts == [1, 2, 3]
        assert await redis.xlen(stream_key(QUEUE)) == 0
        [letter] = await store.list()
        assert letter.message_id == "m-poison"
        assert letter.reason == MAX_DELIVERY_COUNT_EXCEEDED
        assert "3" in letter.description
        assert letter.delivery_count == 3
        assert letter.body == b'{"n": "poison"}'
        assert letter.properties["operation"] == "delivery"
        assert letter.enqueued_at is not None
        assert letter.dead_lettered_at is not None

        assert await store.replay([letter.id, "0-1", "not-an-id"]) == [letter.id]
        assert await store.list() == []
        assert await store.replay([letter.id]) == []  # gone: nothing to replay twice

        handled: list[ReceivedMessage] = []

        async def healthy(msg: ReceivedMessage) -> None:
            handled.append(msg)
            await msg.complete()

        async with running(receiver(redis_url, max_delivery_count=3), healthy):
            await wait_until(lambda: len(handled) == 1)
        assert handled[0].message_id == "m-poison"
        assert handled[0].delivery_count == 1  # a replay starts afresh
        assert handled[0].properties["operation"] == "delivery"
    finally:
        await store.close()


async def test_explicit_dead_letter_keeps_reason_and_description(
    redis_url: str, redis: Redis, sender: RedisStreamSender
) -> None:
    async def handle(msg: ReceivedMessage) -> None:
        await msg.dead_letter("MalformedMessage", "operation is missing")

    store = RedisDeadLetterStore.from_url(redis_url, QUEUE)
    try:
        async with running(receiver(redis_url), handle):
            await sender.send_many([message(1), message(2)])
            await eventually(lambda: store.count(), 2)
        letters = await store.list()
        assert sorted(letter.message_id for letter in letters) == ["m-1", "m-2"]
        assert {(letter.reason, letter.description) for letter in letters} == {
            ("MalformedMessage", "operation is missing")
        }
        assert [letter.delivery_count for letter in letters] == [1, 1]
        assert len(await store.list(limit=1)) == 1
        assert await redis.xlen(stream_key(QUEUE)) == 0
    finally:
        await store.close()


class TcpProxy:
    """A loopback TCP proxy whose death looks like a crashed consumer's network going away."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.append(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def kill(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)


async def test_a_killed_receivers_message_is_taken_over_after_the_lock_duration(
    redis_url: str, redis_server: RedisServer, redis: Redis, sender: RedisStreamSender
) -> None:
    proxy = TcpProxy(redis_server.port)
    await proxy.start()
    taken = asyncio.Event()
    taken_at = 0.0

    async def stuck(msg: ReceivedMessage) -> None:
        nonlocal taken_at
        taken_at = time.monotonic()
        taken.set()
        await asyncio.Event().wait()  # never settles

    doomed = receiver(f"redis://127.0.0.1:{proxy.port}/0", lock_duration=1.0, settle_timeout=0.3)
    doomed_task = asyncio.create_task(doomed.run(stuck))
    await sender.send(message("orphan"))
    await asyncio.wait_for(taken.wait(), 5)
    # The consumer "dies": its connections drop and its task is gone, nothing is settled.
    await proxy.kill()
    doomed_task.cancel()
    await asyncio.gather(doomed_task, return_exceptions=True)
    await doomed.close()
    pending = await redis.xpending(stream_key(QUEUE), GROUP)
    assert pending["pending"] == 1  # still locked to the dead consumer

    rescued: list[tuple[ReceivedMessage, float]] = []

    async def handle(msg: ReceivedMessage) -> None:
        rescued.append((msg, time.monotonic()))
        await msg.complete()

    async with running(receiver(redis_url, lock_duration=1.0), handle):
        await wait_until(lambda: bool(rescued), 5)
    msg, at = rescued[0]
    assert msg.message_id == "m-orphan"
    assert msg.delivery_count == 2
    assert at - taken_at >= 1.0  # only once the lock had expired
    assert await redis.xlen(stream_key(QUEUE)) == 0


async def test_a_message_that_keeps_killing_its_consumers_is_dead_lettered_on_takeover(
    redis_url: str, redis: Redis, sender: RedisStreamSender
) -> None:
    rx = receiver(redis_url, lock_duration=0.3, max_delivery_count=1)
    await rx.ensure_group()
    await sender.send(message("killer"))
    # A consumer reads it and dies without a word (no settlement, no renewal).
    await redis.xreadgroup(GROUP, "crashed-pod", {stream_key(QUEUE): ">"}, count=1)
    handled: list[ReceivedMessage] = []

    async def handle(msg: ReceivedMessage) -> None:
        handled.append(msg)
        await msg.complete()

    store = RedisDeadLetterStore.from_url(redis_url, QUEUE)
    try:
        async with running(rx, handle):
            await eventually(lambda: store.count(), 1)
        [letter] = await store.list()
    finally:
        await store.close()
    assert handled == []
    assert letter.message_id == "m-killer"
    assert letter.reason == MAX_DELIVERY_COUNT_EXCEEDED
    assert letter.delivery_count == 2
    assert await redis.xlen(stream_key(QUEUE)) == 0


async def test_lock_renewal_keeps_a_long_handlers_message_from_other_receivers(
    redis_url: str, redis: Redis, sender: RedisStreamSender
) -> None:
    deliveries: list[tuple[str, ReceivedMessage]] = []

    def slow(name: str) -> Callable[[ReceivedMessage], Awaitable[None]]:
        async def handle(msg: ReceivedMessage) -> None:
            deliveries.append((name, msg))
            await asyncio.sleep(1.3)  # more than three lock durations
            await msg.complete()

        return handle

    a = receiver(redis_url, lock_duration=0.4)
    b = receiver(redis_url, lock_duration=0.4)
    async with running(a, slow("a")):
        await sender.send(message("long"))
        await wait_until(lambda: bool(deliveries))
        async with running(b, slow("b")):
            await wait_until(lambda: deliveries[0][1].settled, 5)
            await asyncio.sleep(0.3)
    assert len(deliveries) == 1
    name, msg = deliveries[0]
    assert name == "a"
    assert msg.settlement == "complete"
    assert not msg.lock_lost
    assert await redis.xlen(stream_key(QUEUE)) == 0


async def test_settling_a_message_whose_lock_was_taken_over_fails(
    redis_url: str, redis: Redis, sender: RedisStreamSender
) -> None:
    outcomes: list[BaseException] = []

    async def handle(msg: ReceivedMessage) -> None:
        entry_id = getattr(msg, "entry_id")  # noqa: B009 - the Redis message's stream id
        await redis.xclaim(stream_key(QUEUE), GROUP, "someone-else", 0, [entry_id])
        try:
            await msg.complete()
        except MessageLockLostError as exc:
            outcomes.append(exc)
            raise

    async with running(receiver(redis_url), handle):
        await sender.send(message(1))
        await wait_until(lambda: bool(outcomes))
    assert isinstance(outcomes[0], MessageLockLostError)
    # Not deleted: it still belongs to the consumer that took it over.
    assert await redis.xlen(stream_key(QUEUE)) == 1


async def test_graceful_stop_finishes_in_flight_work_and_abandons_what_exceeds_the_grace(
    redis_url: str, redis: Redis, sender: RedisStreamSender
) -> None:
    started: list[str] = []
    finished: list[str] = []

    async def handle(msg: ReceivedMessage) -> None:
        started.append(msg.message_id)
        await asyncio.sleep(0.3 if msg.message_id != "m-slow" else 30)
        await msg.complete()
        finished.append(msg.message_id)

    rx = receiver(redis_url, max_concurrency=4)
    task = asyncio.create_task(rx.run(handle))
    await sender.send_many([message("fast1"), message("fast2"), message("slow")])
    await wait_until(lambda: len(started) == 3)
    began = time.monotonic()
    stopping = asyncio.create_task(rx.stop(grace=1.0))
    await asyncio.sleep(0.05)
    await sender.send(message("late"))  # arrives after stop: not handled by this receiver
    await stopping
    took = time.monotonic() - began
    await task  # run() has returned
    await rx.close()

    assert 0.9 <= took < 3.0
    assert sorted(finished) == ["m-fast1", "m-fast2"]
    assert started.count("m-late") == 0

    after: dict[str, int] = {}

    async def record(msg: ReceivedMessage) -> None:
        after[msg.message_id] = msg.delivery_count
        await msg.complete()

    async with running(receiver(redis_url), record):
        await wait_until(lambda: len(after) == 2)
    assert after == {"m-slow": 2, "m-late": 1}


async def test_concurrency_is_bounded_by_max_concurrency(
    redis_url: str, sender: RedisStreamSender
) -> None:
    in_flight = 0
    peak = 0
    done = 0

    async def handle(msg: ReceivedMessage) -> None:
        nonlocal in_flight, peak, done
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        await msg.complete()
        done += 1

    await sender.send_many([message(i) for i in range(40)])
    async with running(receiver(redis_url, max_concurrency=5, prefetch=3), handle):
        await wait_until(lambda: done == 40)
    assert peak == 5


async def test_the_send_time_span_is_the_parent_of_the_consumer_span(
    redis_url: str, sender: RedisStreamSender, span_exporter: InMemorySpanExporter
) -> None:
    instrument_libraries()
    tracer = trace.get_tracer("test")
    handled: list[ReceivedMessage] = []

    async def handle(msg: ReceivedMessage) -> None:
        handled.append(msg)
        await msg.complete()

    explicit = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with tracer.start_as_current_span("ingest request") as producer:
        await sender.send(message("traced", operation="delivery"))
        await sender.send(message("explicit", traceparent=explicit))
    async with running(receiver(redis_url), handle):
        await wait_until(lambda: len(handled) == 2)

    by_id = {m.message_id: m for m in handled}
    assert (
        by_id["m-traced"].properties["traceparent"] == by_id["m-traced"].properties["Diagnostic-Id"]
    )
    assert by_id["m-explicit"].properties["traceparent"] == explicit  # not overwritten
    assert by_id["m-explicit"].properties["Diagnostic-Id"] == explicit

    spans = {
        span.attributes["messaging.message.id"]: span
        for span in span_exporter.get_finished_spans()
        if span.name == f"{QUEUE} process" and span.attributes is not None
    }
    consumer = spans["m-traced"]
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.get_span_context().span_id
    assert consumer.context is not None
    assert consumer.context.trace_id == producer.get_span_context().trace_id
    attributes = consumer.attributes or {}
    assert attributes["messaging.system"] == "redis"
    assert attributes["messaging.destination.name"] == QUEUE
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.consumer.group.name"] == GROUP
    assert attributes["messaging.redis.message.delivery_count"] == 1
    assert attributes["messaging.redis.disposition_status"] == "complete"
    other = spans["m-explicit"]
    assert other.context is not None
    assert other.context.trace_id == int("0af7651916cd43dd8448eb211c80319c", 16)
    # The receiver's polls are no traces; the handler's Redis calls are spans of the message's.
    finished = span_exporter.get_finished_spans()
    assert "XREADGROUP" not in {span.name for span in finished}
    assert [
        span
        for span in finished
        if span.kind is SpanKind.CLIENT
        and span.parent is not None
        and span.parent.span_id == consumer.context.span_id
    ]


async def test_a_failing_handler_marks_its_span_as_an_error(
    redis_url: str, sender: RedisStreamSender, span_exporter: InMemorySpanExporter
) -> None:
    seen: list[ReceivedMessage] = []

    async def handle(msg: ReceivedMessage) -> None:
        seen.append(msg)
        if msg.delivery_count == 1:
            raise ValueError("bad input")
        await msg.complete()

    async with running(receiver(redis_url), handle):
        await sender.send(message(1))
        await wait_until(lambda: len(seen) == 2 and seen[1].settled)
    [failed] = [
        s
        for s in span_exporter.get_finished_spans()
        if s.attributes and s.attributes.get("messaging.redis.message.delivery_count") == 1
    ]
    assert not failed.status.is_ok
    assert failed.events[0].name == "exception"
    assert (failed.attributes or {})["messaging.redis.disposition_status"] == "abandon"


async def test_receiving_survives_a_redis_restart(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    handled: list[str] = []

    async def handle(msg: ReceivedMessage) -> None:
        handled.append(msg.message_id)
        await msg.complete()

    tx = RedisStreamSender.from_url(server.url, QUEUE)
    try:
        async with running(receiver(server.url), handle):
            await tx.send(message(1))
            await wait_until(lambda: handled == ["m-1"])
            server.stop()  # no persistence: the group is gone too after the restart
            await asyncio.sleep(0.3)
            server.start()
            await tx.send(message(2))
            await wait_until(lambda: handled == ["m-1", "m-2"], 10)
    finally:
        await tx.close()


# -- readiness ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def silent_listener() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never says a word."""
    writers: list[asyncio.StreamWriter] = []
    tasks: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.append(writer)
        with contextlib.suppress(ConnectionError):
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


def queue_settings(**overrides: Any) -> QueueSettings:
    return QueueSettings(name=QUEUE, readiness_timeout=0.5, receive_wait=0.1, **overrides)


async def test_readiness_passes_against_a_live_redis(redis_url: str) -> None:
    settings = queue_settings()
    for thing in (
        create_sender(settings, redis_url=redis_url),
        create_receiver(settings, redis_url=redis_url),
        create_dead_letter_store(settings, redis_url=redis_url),
    ):
        try:
            await thing.check_ready()
        finally:
            await thing.close()


@pytest.mark.parametrize("target", ["closed port", "silent listener"])
async def test_readiness_fails_fast_when_redis_does_not_answer(target: str) -> None:
    async with silent_listener() as silent_port:
        port = free_port() if target == "closed port" else silent_port
        settings = queue_settings(redis_url=f"redis://127.0.0.1:{port}/0")
        things: list[MessageSender | MessageReceiver | DeadLetterStore] = [
            create_sender(settings),
            create_receiver(settings),
            create_dead_letter_store(settings),
        ]
        began = time.monotonic()
        try:
            outcomes = await asyncio.gather(
                *(thing.check_ready() for thing in things), return_exceptions=True
            )
        finally:
            for thing in things:
                await thing.close()
        assert time.monotonic() - began < 1.5
        assert all(isinstance(outcome, QueueNotReadyError) for outcome in outcomes), outcomes
        assert all("redis" in str(outcome) for outcome in outcomes)


def test_the_factory_needs_a_redis_url() -> None:
    with pytest.raises(ValueError, match="redis_url"):
        create_sender(queue_settings())


async def test_the_factory_honours_the_settings(redis_url: str) -> None:
    settings = queue_settings(
        consumer_group="g1", max_concurrency=3, prefetch=2, lock_duration=7, max_delivery_count=4
    )
    rx = create_receiver(settings, redis_url=redis_url, consumer_name="me")
    assert isinstance(rx, RedisStreamReceiver)
    assert (rx.group, rx.consumer_name, rx.max_concurrency, rx.prefetch) == ("g1", "me", 3, 2)
    assert (rx.lock_duration, rx.max_delivery_count, rx.queue_name) == (7, 4, QUEUE)
    await rx.close()
