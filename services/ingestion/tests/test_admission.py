"""Admission control: a queue holding more work than the front door admits is a 503 overloaded.

Against the real Redis Streams queue: a backlog drained slowly by a stand-in consumer (it deletes
entries, as the workflow's completions do), then drained. Service Bus is reached through its
administration client, which cannot run here: a stand-in for it at the SDK boundary answers the
runtime properties.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from dronecommon.messaging.redis_streams import stream_key
from dronecommon.settings import QueueSettings
from dronetesting.apps import app_client
from dronetesting.problems import assert_problem
from dronetesting.samples import SAMPLE_REQUEST
from dronetesting.tokens import LocalIssuer
from ingestion.admission import (
    Admission,
    Reading,
    RedisBacklog,
    ServiceBusBacklog,
    admission_control,
)
from ingestion.errors import Overloaded
from ingestion.main import create_app
from ingestion.settings import AdmissionSettings, IngestionSettings, LimitSettings

from .conftest import QUEUE, make_settings, owned

URL = "/api/deliveryrequests"
STREAM = stream_key(QUEUE)
# Quick readings, so a test sees the verdict change within a fraction of a second.
QUICK = AdmissionSettings(
    max_backlog_seconds=1.0, min_backlog=20, interval=0.05, window=0.5, retry_after_max=30
)


def quick_settings(redis_url: str, **admission: Any) -> IngestionSettings:
    """The account's own limits out of the way: this is about the queue."""
    limits = LimitSettings(requests_per_minute=1e6, burst=10_000, max_in_progress=10_000)
    return make_settings(redis_url, admission=QUICK.model_copy(update=admission), limits=limits)


async def entries_added(redis: Redis) -> int:
    with contextlib.suppress(Exception):
        return int((await redis.xinfo_stream(STREAM))["entries-added"])
    return 0


async def eventually(
    call: Callable[[], Awaitable[httpx.Response]], status: int, within: float = 10.0
) -> httpx.Response:
    """Repeat ``call`` until it answers ``status``; the last answer."""
    deadline = time.monotonic() + within
    while True:
        response = await call()
        if response.status_code == status or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def slow_consumer(redis: Redis, per_second: float) -> AsyncIterator[dict[str, float]]:
    """Deletes the oldest entries at ``per_second`` (``rate`` may be changed while it runs).

    Stopped by a flag it checks between rounds, and given a few seconds to notice: a stop that
    does not come fails here, not at the test's timeout.
    """
    control = {"rate": per_second}
    stopping = asyncio.Event()

    async def drain() -> None:
        while not stopping.is_set():
            count = round(control["rate"] * 0.1)
            if count:
                entries = await redis.xrange(STREAM, count=count)
                ids = [entry_id for entry_id, _ in entries or [] if entry_id is not None]
                if ids:
                    await redis.xdel(STREAM, *ids)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 0.1)

    task = asyncio.create_task(drain())
    try:
        yield control
    finally:
        stopping.set()
        await asyncio.wait_for(task, 5.0)


async def overload(
    client: httpx.AsyncClient, redis: Redis, headers: dict[str, str] | None = None
) -> httpx.Response:
    """One request admitted, then 600 messages queued: the first refusal that follows."""
    await redis.xadd(STREAM, {"message_id": "warm-up", "body": b"{}"})
    admitted = await client.post(URL, json=SAMPLE_REQUEST, headers=headers)
    assert admitted.status_code == 202, admitted.text
    for n in range(600):
        await redis.xadd(STREAM, {"message_id": f"backlog-{n}", "body": b"{}"})
    return await eventually(lambda: client.post(URL, json=SAMPLE_REQUEST, headers=headers), 503)


async def test_a_backlog_beyond_the_limit_is_503_with_retry_after_and_nothing_queued(
    redis_url: str,
) -> None:
    redis = Redis.from_url(redis_url)
    try:
        async with (
            app_client(create_app(quick_settings(redis_url), configure_logs=False)) as client,
            slow_consumer(redis, per_second=100) as consumer,
        ):
            # Drained at 100/s with a limit of 1 s: 100 messages. 600 are waiting: 6 s of work.
            refused = await overload(client, redis)
            body = assert_problem(refused, 503, type="overloaded")
            assert 1 <= int(refused.headers["retry-after"]) <= 30
            assert "nothing was queued" in body["detail"].lower()
            added = await entries_added(redis)
            for _ in range(5):
                assert_problem(await client.post(URL, json=SAMPLE_REQUEST), 503, type="overloaded")
            assert await entries_added(redis) == added  # nothing reached the queue

            # Refused before the body is validated: even an invalid one.
            assert_problem(await client.post(URL, json={}), 503, type="overloaded")
            # Readiness is not affected; reschedules and cancels still go through.
            assert (await client.get("/readyz")).status_code == 200
            reschedule = await client.patch(
                f"{URL}/{await owned(redis_url)}", json={"deadline": "soon"}
            )
            assert reschedule.status_code == 202, reschedule.text
            assert (await client.delete(f"{URL}/{await owned(redis_url)}")).status_code == 202

            # The workflow catches up: the backlog drains and new requests are admitted again.
            consumer["rate"] = 5000
            admitted = await eventually(lambda: client.post(URL, json=SAMPLE_REQUEST), 202)
            assert admitted.status_code == 202, admitted.text
            assert await entries_added(redis) > added
    finally:
        await redis.aclose()


async def test_the_refusal_comes_before_the_route_the_token_and_the_body(
    redis_url: str, dev_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """Tokens on: while overloaded, a new delivery request is refused whatever its token or body
    (the gate runs first, so a refusal costs the front door least), with the same answer the
    handlers give, logged like any other; every other route keeps its order."""
    settings = quick_settings(redis_url).model_copy(update={"auth": dev_issuer.settings})
    customer = dev_issuer.customer("contoso", SAMPLE_REQUEST["ownerId"])
    redis = Redis.from_url(redis_url)
    try:
        async with (
            app_client(create_app(settings, configure_logs=False)) as client,
            slow_consumer(redis, per_second=100),
        ):
            refused = await overload(client, redis, customer)
            assert_problem(refused, 503, type="overloaded")
            added = await entries_added(redis)

            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
            json_type = {"Content-Type": "application/json"}  # the request guard's 415 comes first
            traceparent = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
            with caplog.at_level(logging.INFO, "dronecommon.access"):
                caplog.clear()  # the lines of the four requests below only
                for headers in (
                    {},  # no token at all
                    {"Authorization": "Bearer not-a-token"},
                    dev_issuer.service("Deliveries.Write", caller="workflow"),  # not a customer
                ):
                    answer = await client.post(URL, json=SAMPLE_REQUEST, headers=headers)
                    assert_problem(answer, 503, type="overloaded")
                    assert 1 <= int(answer.headers["retry-after"]) <= 30
                answer = await client.post(
                    URL, content=b"{not json", headers=customer | traceparent | json_type
                )
                body = assert_problem(answer, 503, type="overloaded")
                assert body["traceId"] == trace_id
                lines = [r.getMessage() for r in caplog.records if r.name == "dronecommon.access"]
            assert lines == [f"POST {URL} 503"] * 4, lines  # logged like any other answer
            assert await entries_added(redis) == added  # nothing reached the queue

            # Only new delivery requests meet the gate: the others keep their token check first.
            assert (await client.patch(f"{URL}/{uuid.uuid4()}", json={})).status_code == 401
            assert (await client.delete(f"{URL}/{uuid.uuid4()}")).status_code == 401
            assert (await client.post(f"{URL}/{uuid.uuid4()}", json={})).status_code == 405
    finally:
        await redis.aclose()


async def test_a_small_backlog_is_always_admitted_and_a_stalled_queue_is_not(
    redis_url: str,
) -> None:
    """Below ``min_backlog`` nothing is refused, drained or not; above it, a queue nobody
    drains holds unbounded work."""
    redis = Redis.from_url(redis_url)
    try:
        settings = quick_settings(redis_url, min_backlog=50)
        async with app_client(create_app(settings, configure_logs=False)) as client:
            for _ in range(30):
                assert (await client.post(URL, json=SAMPLE_REQUEST)).status_code == 202
            await asyncio.sleep(0.3)  # several readings, no drain at all
            assert (await client.post(URL, json=SAMPLE_REQUEST)).status_code == 202
            for n in range(100):
                await redis.xadd(STREAM, {"message_id": f"stalled-{n}", "body": b"{}"})
            refused = await eventually(lambda: client.post(URL, json=SAMPLE_REQUEST), 503)
            body = assert_problem(refused, 503, type="overloaded")
            assert "is not draining" in body["detail"]
            assert refused.headers["retry-after"] == "30"
    finally:
        await redis.aclose()


class CountingProbe:
    """The real Redis probe, counting its reads."""

    def __init__(self, probe: RedisBacklog) -> None:
        self.probe = probe
        self.reads = 0

    async def read(self) -> Reading:
        self.reads += 1
        return await self.probe.read()


async def test_the_queue_is_read_once_per_interval_not_per_request(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        probe = CountingProbe(RedisBacklog(redis, QUEUE))
        quiet = {"interval": 0.2, "window": 1.0, "min_backlog": 1_000_000}
        admission = Admission(probe, QUICK.model_copy(update=quiet))
        task = asyncio.create_task(admission.run())
        started = time.monotonic()
        checks = 0
        while time.monotonic() - started < 0.5:
            for _ in range(200):
                admission.check()
                checks += 1
            await asyncio.sleep(0.01)
        admission.stop()
        await task
        assert checks >= 1000
        assert probe.reads <= 1 + (time.monotonic() - started) / 0.2 + 1
    finally:
        await redis.aclose()


async def test_switched_off_it_admits_whatever_the_backlog(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        async with app_client(
            create_app(quick_settings(redis_url, enabled=False), configure_logs=False)
        ) as client:
            for n in range(500):
                await redis.xadd(STREAM, {"message_id": f"backlog-{n}", "body": b"{}"})
            await asyncio.sleep(0.3)
            assert (await client.post(URL, json=SAMPLE_REQUEST)).status_code == 202
    finally:
        await redis.aclose()


class RuntimeProperties:
    """Stand-in for ``azure.servicebus.aio.management.ServiceBusAdministrationClient`` at the SDK
    boundary (no Service Bus runs here): ``get_queue_runtime_properties`` answers what the
    test sets, or fails like an unreachable namespace."""

    def __init__(self, active: int) -> None:
        self.active = active
        self.failing = False
        self.asked: list[str] = []

    async def get_queue_runtime_properties(self, queue_name: str) -> SimpleNamespace:
        self.asked.append(queue_name)
        if self.failing:
            raise ConnectionError("namespace unreachable")
        return SimpleNamespace(active_message_count=self.active, total_message_count=0)


async def test_service_bus_active_messages_against_the_configured_drain_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = RuntimeProperties(active=150)
    settings = AdmissionSettings(max_backlog_seconds=2.0, min_backlog=10, interval=0.05)
    admission = Admission(ServiceBusBacklog(admin, QUEUE), settings, drain_rate=50.0)

    await admission.sample()  # 150 messages at 50/s: 3 s of work, the limit is 2 s
    assert admin.asked == [QUEUE]
    with pytest.raises(Overloaded) as refused:
        admission.check()
    assert refused.value.headers["Retry-After"] == "1"  # 50 messages over the limit, at 50/s
    assert "about 3.0 s of work (150 messages)" in refused.value.detail

    admin.active = 60
    await admission.sample()
    for _ in range(41):  # 60 + 40 admitted since the reading reach the limit (100 messages)
        admission.check()
    with pytest.raises(Overloaded):
        admission.check()

    # An administration call that fails admits every request (the send reports queue outages).
    admin.failing = True
    with caplog.at_level(logging.WARNING, "ingestion.admission"):
        await admission.sample()
    assert "cannot read the queue" in caplog.text
    for _ in range(1000):
        admission.check()


async def test_service_bus_without_a_drain_rate_is_off(caplog: pytest.LogCaptureFixture) -> None:
    queue = QueueSettings(
        transport="servicebus",
        servicebus_connection_string=SecretStr(
            "Endpoint=sb://127.0.0.1/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0"
        ),
    )
    with caplog.at_level(logging.WARNING, "ingestion.admission"):
        async with admission_control(
            AdmissionSettings(), queue, redis=Redis(), credential=None
        ) as admission:
            for _ in range(10_000):
                admission.check()
    assert "INGESTION_ADMISSION__SERVICEBUS_DRAIN_RATE" in caplog.text
