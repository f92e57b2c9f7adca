"""The Redis Streams queue against a real redis-server: competing consumers, settlement, dead
letters, concurrency and tracing (takeover, shutdown, restarts and readiness:
``test_messaging_redis_ops.py``)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis

from dronecommon.messaging import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    MessageAlreadySettledError,
    ReceivedMessage,
)
from dronecommon.messaging.redis_streams import (
    RedisDeadLetterStore,
    RedisStreamSender,
    dead_letter_key,
    stream_key,
)
from dronecommon.telemetry import instrument_libraries

from .redis_queue import GROUP, QUEUE, eventually, message, receiver, running, wait_until


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
