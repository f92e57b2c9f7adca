"""Telemetry fixes: the model, and the Redis Streams transport against a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from dronecommon.fixes import (
    Fix,
    FixConsumer,
    FixDecodeError,
    FixPublishError,
    FixStreamNotReadyError,
    Phase,
    create_fix_consumer,
    create_fix_publisher,
    decode_fix,
    encode_fix,
    encode_fixes,
)
from dronecommon.fixes.redis_streams import RedisFixConsumer, RedisFixPublisher
from dronecommon.settings import TelemetryStreamSettings
from dronetesting.servers import RedisServer

T0 = dt.datetime(2030, 1, 1, 10, 0, tzinfo=dt.UTC)
STREAM = "telemetry:fixes"


def fix(drone: str, seq: int, *, phase: Phase = Phase.TO_PICKUP, delivery: str = "d-1") -> Fix:
    return Fix(
        drone_id=drone,
        delivery_id=delivery,
        at=T0 + dt.timedelta(seconds=seq),
        seq=seq,
        latitude=47.6 + seq / 1000,
        longitude=-122.3,
        altitude=120.0,
        speed_mph=40.5,
        heading_deg=90.0,
        battery_pct=99.5,
        phase=phase,
    )


# --- the model ------------------------------------------------------------------------------


def test_a_fix_round_trips_through_its_json() -> None:
    original = fix("drone-1", 7, phase=Phase.AT_DROPOFF)
    wire = orjson.loads(encode_fix(original))
    assert wire == {
        "droneId": "drone-1",
        "deliveryId": "d-1",
        "at": "2030-01-01T10:00:07.000Z",
        "seq": 7,
        "location": {"latitude": 47.607, "longitude": -122.3, "altitude": 120.0},
        "speedMph": 40.5,
        "headingDeg": 90.0,
        "batteryPct": 99.5,
        "phase": "AtDropoff",
    }
    assert decode_fix(encode_fix(original)) == original
    batch = orjson.loads(encode_fixes([fix("a", 1), fix("b", 2)]))
    assert [item["droneId"] for item in batch] == ["a", "b"]
    assert original.location.latitude == 47.607
    assert fix("a", 2).newer_than(fix("a", 1))
    assert not fix("a", 1).newer_than(fix("a", 1))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("droneId", ""),
        ("droneId", 5),
        ("deliveryId", 5),
        ("seq", "1"),
        ("seq", True),
        ("at", "yesterday"),
        ("phase", "Hovering"),
        ("speedMph", -1),
        ("headingDeg", 361),
        ("batteryPct", 101),
        ("batteryPct", "full"),
        ("location", {"latitude": 91, "longitude": 0}),
        ("location", "here"),
    ],
)
def test_malformed_fixes_are_refused(field: str, value: object) -> None:
    wire = fix("drone-1", 1).wire()
    wire[field] = value
    with pytest.raises(FixDecodeError):
        decode_fix(orjson.dumps(wire))
    with pytest.raises(FixDecodeError):
        decode_fix(b"{not json")


# --- the Redis transport --------------------------------------------------------------------


def settings(**values: object) -> TelemetryStreamSettings:
    base: dict[str, object] = {"receive_wait": 0.05, "fixes_per_entry": 10, "max_batch": 50}
    return TelemetryStreamSettings.model_validate({**base, **values})


class Collector:
    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[Fix]] = []
        self.failures = failures

    async def __call__(self, fixes: Sequence[Fix]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the durable write failed")
        self.batches.append(list(fixes))

    @property
    def fixes(self) -> list[Fix]:
        return [f for batch in self.batches for f in batch]


@contextlib.asynccontextmanager
async def consuming(consumer: FixConsumer, handler: Collector) -> AsyncIterator[None]:
    task = asyncio.create_task(consumer.run(handler))
    try:
        yield
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, timeout=5)


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_publish_is_batched_into_entries_and_trimmed(redis: Redis) -> None:
    publisher = create_fix_publisher(settings(maxlen=100), redis=redis)
    assert isinstance(publisher, RedisFixPublisher)
    await publisher.publish([fix(f"drone-{n}", n) for n in range(95)])
    assert await redis.xlen(STREAM) == 10  # 9 entries of 10 and one of 5
    entries: Any = await redis.xrange(STREAM, count=1)
    first = entries[0][1]
    assert first[b"n"] == b"10"
    assert [item["droneId"] for item in orjson.loads(first[b"fixes"])][:2] == ["drone-0", "drone-1"]
    assert publisher.published == 95
    await publisher.publish([])
    for round_ in range(30):
        await publisher.publish([fix("drone-x", round_ * 100 + n) for n in range(100)])
    # MAXLEN ~ keeps about maxlen entries (whole macro nodes are trimmed, never below maxlen).
    assert 100 <= await redis.xlen(STREAM) < 300
    await publisher.check_ready()


async def test_each_drone_s_fixes_arrive_in_order_and_every_group_gets_all(redis: Redis) -> None:
    publisher = create_fix_publisher(settings(), redis=redis)
    delivery = create_fix_consumer(settings(consumer_group="delivery"), consumer="d1", redis=redis)
    ops = create_fix_consumer(settings(consumer_group="ops"), consumer="o1", redis=redis)
    await delivery.check_ready()  # creates the groups at the stream's end
    await ops.check_ready()
    got_delivery, got_ops = Collector(), Collector()
    async with consuming(delivery, got_delivery), consuming(ops, got_ops):
        for tick in range(20):
            await publisher.publish([fix(f"drone-{n}", tick) for n in range(7)])
        await wait_for(lambda: len(got_delivery.fixes) == 140 and len(got_ops.fixes) == 140)
    for collected in (got_delivery, got_ops):
        for n in range(7):
            seqs = [f.seq for f in collected.fixes if f.drone_id == f"drone-{n}"]
            assert seqs == list(range(20))
        assert max(len(batch) for batch in collected.batches) <= 50


async def test_consumers_of_one_group_share_the_fixes(redis: Redis) -> None:
    publisher = create_fix_publisher(settings(), redis=redis)
    one = create_fix_consumer(settings(consumer_group="delivery"), consumer="a", redis=redis)
    two = create_fix_consumer(settings(consumer_group="delivery"), consumer="b", redis=redis)
    await one.check_ready()
    first, second = Collector(), Collector()
    async with consuming(one, first), consuming(two, second):
        for tick in range(40):
            await publisher.publish([fix(f"drone-{n}", tick) for n in range(10)])
            await asyncio.sleep(0.005)
        await wait_for(lambda: len(first.fixes) + len(second.fixes) == 400)
    seen = [(f.drone_id, f.seq) for f in first.fixes + second.fixes]
    assert len(set(seen)) == 400  # each fix went to one consumer
    assert first.fixes
    assert second.fixes


async def test_a_group_starts_at_the_newest_fix_unless_told_otherwise(redis: Redis) -> None:
    publisher = create_fix_publisher(settings(), redis=redis)
    await publisher.publish([fix("old", 1)])
    latest = create_fix_consumer(settings(consumer_group="live"), consumer="l", redis=redis)
    everything = create_fix_consumer(
        settings(consumer_group="replay", start_at_latest=False), consumer="r", redis=redis
    )
    await latest.check_ready()
    await everything.check_ready()
    await publisher.publish([fix("new", 2)])
    live, replay = Collector(), Collector()
    async with consuming(latest, live), consuming(everything, replay):
        await wait_for(lambda: len(live.fixes) == 1 and len(replay.fixes) == 2)
    assert [f.drone_id for f in live.fixes] == ["new"]
    assert [f.drone_id for f in replay.fixes] == ["old", "new"]


async def test_a_failed_handler_gets_the_same_fixes_again_before_newer_ones(redis: Redis) -> None:
    publisher = create_fix_publisher(settings(), redis=redis)
    consumer = create_fix_consumer(settings(consumer_group="g"), consumer="c", redis=redis)
    assert isinstance(consumer, RedisFixConsumer)
    consumer.reader.retry_base = 0.01
    await consumer.check_ready()
    await publisher.publish([fix("drone-1", n) for n in range(5)])
    handler = Collector(failures=3)
    async with consuming(consumer, handler):
        await wait_for(lambda: len(handler.fixes) == 5)
        await publisher.publish([fix("drone-1", 5)])
        await wait_for(lambda: len(handler.fixes) == 6)
    assert [f.seq for f in handler.fixes] == [0, 1, 2, 3, 4, 5]
    assert await consumer.reader.pending_count() == 0


async def test_fixes_a_dead_consumer_never_acknowledged_are_redelivered(redis: Redis) -> None:
    publisher = create_fix_publisher(settings(), redis=redis)
    dead = create_fix_consumer(settings(consumer_group="g"), consumer="pod-a", redis=redis)
    assert isinstance(dead, RedisFixConsumer)
    await dead.check_ready()
    await publisher.publish([fix("drone-1", n) for n in range(3)])
    assert len(await dead.reader.read()) == 1  # read, and the process dies before its ack
    survivor = create_fix_consumer(
        settings(consumer_group="g", claim_idle=0.2), consumer="pod-b", redis=redis
    )
    assert isinstance(survivor, RedisFixConsumer)
    survivor.reader.claim_interval = 0.05
    handler = Collector()
    async with consuming(survivor, handler):
        await wait_for(lambda: len(handler.fixes) == 3)
    assert sorted(f.seq for f in handler.fixes) == [0, 1, 2]
    assert await survivor.reader.pending_count() == 0


async def test_malformed_entries_and_fixes_are_skipped(redis: Redis) -> None:
    consumer = create_fix_consumer(settings(consumer_group="g"), consumer="c", redis=redis)
    await consumer.check_ready()
    good = fix("drone-1", 1).wire()
    bad = {**good, "phase": "Hovering"}
    await redis.xadd(STREAM, {"fixes": orjson.dumps([bad, good]), "n": 2})
    await redis.xadd(STREAM, {"fixes": b"not json"})
    await redis.xadd(STREAM, {"fixes": b'{"a": 1}'})
    await redis.xadd(STREAM, {"fixes": orjson.dumps([fix("drone-1", 2).wire()]), "n": 1})
    handler = Collector()
    async with consuming(consumer, handler):
        await wait_for(lambda: len(handler.fixes) == 2)
    assert [f.seq for f in handler.fixes] == [1, 2]


async def test_an_outage_fails_publishing_and_readiness_fast(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    client = Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        publisher = create_fix_publisher(settings(readiness_timeout=0.5), redis=client)
        consumer = create_fix_consumer(settings(readiness_timeout=0.5), consumer="c", redis=client)
        await publisher.check_ready()
        await consumer.check_ready()
        server.stop()
        with pytest.raises(FixPublishError):
            await publisher.publish([fix("drone-1", 1)])
        assert publisher.failed == 1
        with pytest.raises(FixStreamNotReadyError):
            await publisher.check_ready()
        with pytest.raises(FixStreamNotReadyError):
            await consumer.check_ready()
    finally:
        await client.aclose()


def test_the_redis_transport_needs_a_client() -> None:
    with pytest.raises(ValueError, match="Redis client"):
        create_fix_publisher(settings())
