"""When the queue or the idempotency store fails: 503 + Retry-After, nothing half-done, recovery."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from dronecommon.settings import QueueSettings
from dronetesting.apps import app_client
from dronetesting.problems import assert_problem
from dronetesting.samples import SAMPLE_REQUEST
from dronetesting.servers import RedisServer, free_port, silent_listener
from ingestion.main import create_app
from ingestion.repository import IdempotencyStore, record_key
from ingestion.service import IdempotencyKey

from .conftest import QUEUE, make_settings, owned, queued

URL = "/api/deliveryrequests"


async def record(redis_url: str, key: str) -> dict[bytes, bytes]:
    redis = Redis.from_url(redis_url)
    try:
        fields = await redis.hgetall(record_key("anonymous", key))
        return {bytes(k): bytes(v) for k, v in fields.items()}  # type: ignore[arg-type]
    finally:
        await redis.aclose()


async def test_queue_down_is_503_and_nothing_is_recorded_then_it_recovers(
    redis_url: str, redis_server_factory: Callable[[], RedisServer]
) -> None:
    queue_server = redis_server_factory()
    settings = make_settings(
        redis_url, queue=QueueSettings(name=QUEUE, redis_url=queue_server.url, readiness_timeout=1)
    )
    async with app_client(create_app(settings, configure_logs=False)) as client:
        assert (await client.get("/readyz")).status_code == 200
        queue_server.stop()

        for response in (
            await client.post(URL, json=SAMPLE_REQUEST),
            await client.post(URL, json=SAMPLE_REQUEST, headers={"Idempotency-Key": "retry-me"}),
            await client.patch(f"{URL}/{await owned(redis_url)}", json={"deadline": "soon"}),
            await client.delete(f"{URL}/{await owned(redis_url)}"),
        ):
            body = assert_problem(response, 503)
            assert body["type"] == "urn:dronedelivery:problem:queue-unavailable"
            assert response.headers["retry-after"] == "7"
        failed = await record(redis_url, "retry-me")
        assert failed[b"state"] == b"failed"  # never "done": nothing claims success
        ready = await client.get("/readyz")
        assert_problem(ready, 503)
        assert ready.json()["checks"]["queue"]["status"] == "fail"
        assert ready.json()["checks"]["redis"]["status"] == "ok"

        queue_server.start()
        retried = await client.post(
            URL, json=SAMPLE_REQUEST, headers={"Idempotency-Key": "retry-me"}
        )
        assert retried.status_code == 202, retried.text
        # The retry resends the first attempt's request: same deliveryId, same message id.
        assert retried.content == failed[b"response"]
        assert "idempotent-replayed" not in retried.headers
        assert (await record(redis_url, "retry-me"))[b"state"] == b"done"
        assert (await client.post(URL, json=SAMPLE_REQUEST)).status_code == 202
        assert (await client.get("/readyz")).status_code == 200

    retried_message, _ = await queued(queue_server.url)
    assert retried_message.raw_body == retried.content


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A TCP listener that accepts connections and never answers."""
    async with silent_listener() as port:
        yield port


async def test_a_silent_queue_is_503_within_the_send_timeout(
    redis_url: str, silent_port: int
) -> None:
    settings = make_settings(
        redis_url,
        queue=QueueSettings(
            name=QUEUE, redis_url=f"redis://127.0.0.1:{silent_port}/0", readiness_timeout=0.5
        ),
        send_timeout=0.5,
    )
    async with app_client(create_app(settings, configure_logs=False)) as client:
        started = time.monotonic()
        response = await client.post(URL, json=SAMPLE_REQUEST, headers={"Idempotency-Key": "slow"})
        elapsed = time.monotonic() - started
        assert_problem(response, 503)
        assert elapsed < 3.0  # bounded by the send timeout, not the socket's
        assert (await record(redis_url, "slow"))[b"state"] == b"failed"
        assert (await client.get("/readyz")).status_code == 503


async def test_its_redis_down_is_503_and_nothing_is_queued(
    redis_url: str, redis_server_factory: Callable[[], RedisServer]
) -> None:
    store = redis_server_factory()
    settings = make_settings(
        store.url, queue=QueueSettings(name=QUEUE, redis_url=redis_url, readiness_timeout=1)
    )
    async with app_client(create_app(settings, configure_logs=False)) as client:
        store.stop()
        keyed = await client.post(URL, json=SAMPLE_REQUEST, headers={"Idempotency-Key": "k"})
        body = assert_problem(keyed, 503)
        assert body["type"] == "urn:dronedelivery:problem:idempotency-store-unavailable"
        assert keyed.headers["retry-after"] == "7"
        assert await queued(redis_url) == []
        # Without a key too: the account's limits and the owner record live there.
        plain = await client.post(URL, json=SAMPLE_REQUEST)
        assert assert_problem(plain, 503)["type"].endswith("dependency-unavailable")
        assert "retry-after" in plain.headers
        ready = await client.get("/readyz")
        assert_problem(ready, 503)
        assert ready.json()["checks"]["redis"]["status"] == "fail"
        store.start()
        assert (await client.post(URL, json=SAMPLE_REQUEST)).status_code == 202
    assert len(await queued(redis_url)) == 1


async def test_readiness_names_each_dependency(redis_url: str) -> None:
    async with app_client(create_app(make_settings(redis_url), configure_logs=False)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert set(response.json()["checks"]) == {"redis", "queue"}


async def test_readiness_is_503_on_a_closed_port() -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(closed)
    async with app_client(create_app(settings, configure_logs=False)) as client:
        assert (await client.get("/healthz")).status_code == 200
        response = await client.get("/readyz")
    body = assert_problem(response, 503)
    assert body["checks"]["redis"]["status"] == "fail"
    assert body["checks"]["queue"]["status"] == "fail"
    assert "redis" in body["detail"]
    assert "queue" in body["detail"]


# --- a request that holds the key while another one comes ------------------------------------


async def hold_key(redis_url: str, key: str, *, lease: float) -> bytes:
    """Claim ``key`` as a request that is still sending (and may never finish)."""
    redis = Redis.from_url(redis_url)
    try:
        store = IdempotencyStore(redis, ttl=60, lease=lease)
        fingerprint = IdempotencyKey(caller="anonymous", key=key, body=SAMPLE_REQUEST).fingerprint
        body = b'{"deliveryId":"%s","ownerId":"held"}' % str(uuid.uuid4()).encode()
        claim = await store.claim(
            record_key("anonymous", key), fingerprint=fingerprint, token="other", response=body
        )
        assert claim.state == "claimed"
        return body
    finally:
        await redis.aclose()


async def test_a_key_in_flight_is_409_after_the_wait(redis_url: str) -> None:
    await hold_key(redis_url, "busy", lease=60)
    settings = make_settings(redis_url, idempotency_wait=0.2)
    async with app_client(create_app(settings, configure_logs=False)) as client:
        response = await client.post(URL, json=SAMPLE_REQUEST, headers={"Idempotency-Key": "busy"})
        other_body = await client.post(
            URL, json={**SAMPLE_REQUEST, "ownerId": "x"}, headers={"Idempotency-Key": "busy"}
        )
    body = assert_problem(response, 409)
    assert body["type"] == "urn:dronedelivery:problem:request-in-progress"
    assert response.headers["retry-after"] == "1"
    assert_problem(other_body, 422)
    assert await queued(redis_url) == []


async def test_a_key_whose_owner_died_is_taken_over_with_its_body(redis_url: str) -> None:
    held = await hold_key(redis_url, "orphan", lease=0.05)
    await asyncio.sleep(0.1)  # the lease runs out: the holder is gone
    async with app_client(create_app(make_settings(redis_url), configure_logs=False)) as client:
        response = await client.post(
            URL, json=SAMPLE_REQUEST, headers={"Idempotency-Key": "orphan"}
        )
    assert response.status_code == 202, response.text
    assert response.content == held
    [message] = await queued(redis_url)
    assert message.raw_body == held


async def test_everything_down_is_503_not_500() -> None:
    settings = make_settings(f"redis://127.0.0.1:{free_port()}/0")
    async with app_client(create_app(settings, configure_logs=False)) as client:
        response = await client.post(URL, json=SAMPLE_REQUEST)
    assert_problem(response, 503)


async def test_service_bus_unreachable_is_503_within_the_send_timeout(redis_url: str) -> None:
    # The Service Bus transport with the real SDK, pointed at a closed port (no emulator here).
    connection = (
        f"Endpoint=sb://127.0.0.1:{free_port()};SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
    )
    settings = make_settings(
        redis_url,
        queue=QueueSettings(
            transport="servicebus",
            name=QUEUE,
            servicebus_connection_string=SecretStr(connection),
            readiness_timeout=0.5,
        ),
        send_timeout=0.5,
    )
    async with app_client(create_app(settings, configure_logs=False)) as client:
        started = time.monotonic()
        response = await client.post(URL, json=SAMPLE_REQUEST, headers={"Idempotency-Key": "sb"})
        elapsed = time.monotonic() - started
        ready = await client.get("/readyz")
    assert_problem(response, 503)
    assert elapsed < 3.0
    assert (await record(redis_url, "sb"))[b"state"] == b"failed"
    assert_problem(ready, 503)
    assert ready.json()["checks"]["queue"]["status"] == "fail"
    assert ready.json()["checks"]["redis"]["status"] == "ok"


async def test_a_send_that_times_out_may_have_been_queued_and_says_so(
    redis_url: str, redis_server_factory: Callable[[], RedisServer]
) -> None:
    # The queue takes the message but answers too late: the 503 must not claim that nothing was
    # scheduled, and a retry with the same Idempotency-Key must be (and is) safe.
    queue_server = redis_server_factory()
    settings = make_settings(
        redis_url,
        queue=QueueSettings(name=QUEUE, redis_url=queue_server.url, readiness_timeout=0.5),
        send_timeout=0.5,
    )
    async with app_client(create_app(settings, configure_logs=False)) as client:
        assert (await client.get("/readyz")).status_code == 200  # connections are open
        accepted = await owned(redis_url)
        queue_server.pause()
        try:
            keyed = await client.post(URL, json=SAMPLE_REQUEST, headers={"Idempotency-Key": "late"})
            unkeyed = await client.post(URL, json=SAMPLE_REQUEST)
            patched = await client.patch(f"{URL}/{accepted}", json={"deadline": "soon"})
        finally:
            queue_server.resume()
        for response in (keyed, unkeyed, patched):
            body = assert_problem(response, 503)
            assert body["type"] == "urn:dronedelivery:problem:queue-outcome-unknown"
            assert "may have been queued" in body["detail"]
            assert "nothing was scheduled" not in body["detail"]
            assert response.headers["retry-after"] == "7"
        keyed_body = keyed.json()
        assert "same Idempotency-Key" in keyed_body["detail"]
        assert "is safe" in keyed_body["detail"]
        unkeyed_body = unkeyed.json()
        assert "Idempotency-Key" in unkeyed_body["detail"]
        assert "second delivery" in unkeyed_body["detail"]
        assert uuid.UUID(unkeyed_body["deliveryId"]).version == 4
        assert "is safe" in patched.json()["detail"]

        # The first send went out on an open connection: the queue took it once resumed. (The
        # others waited for new connections, which the paused server never answered.)
        deadline = time.monotonic() + 5
        while not await queued(queue_server.url):
            assert time.monotonic() < deadline, "the late send never arrived"
            await asyncio.sleep(0.05)
        retried = await client.post(URL, json=SAMPLE_REQUEST, headers={"Idempotency-Key": "late"})
    assert retried.status_code == 202, retried.text
    late, *_, again = await queued(queue_server.url)
    assert late.raw_body == retried.content
    # The same message twice: Service Bus drops the repeat by its id; on Redis Streams the
    # workflow handles it once (idempotent per delivery).
    assert (again.message_id, again.raw_body) == (late.message_id, late.raw_body)
