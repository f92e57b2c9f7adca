"""The Redis Streams queue when things go wrong, against a real redis-server: a killed
consumer's messages taken over, lock renewal, graceful stop, a Redis restart, readiness and the
factory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from dronecommon.messaging import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    MessageLockLostError,
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
    stream_key,
)
from dronecommon.settings import QueueSettings
from dronetesting.servers import RedisServer, free_port, silent_listener

from .queue_readiness import check_every_client
from .redis_queue import GROUP, QUEUE, eventually, message, receiver, running, wait_until


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
        took, outcomes = await check_every_client(settings)
        assert took < 1.5
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
