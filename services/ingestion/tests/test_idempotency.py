"""Idempotency-Key on POST: replays, reuse with another body, concurrency, the stored records."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from redis.asyncio import Redis

from dronetesting.problems import assert_problem, field_errors
from dronetesting.samples import SAMPLE_REQUEST
from ingestion.repository import record_key

from .conftest import queued

URL = "/api/deliveryrequests"


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def test_a_retry_gets_the_same_answer_and_enqueues_nothing(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    first = await client.post(URL, json=SAMPLE_REQUEST, headers=keyed("order-1"))
    # The same parsed JSON: other key order, other spacing.
    same_body = json.dumps(dict(reversed(list(SAMPLE_REQUEST.items()))), indent=4).encode()
    second = await client.post(
        URL,
        content=same_body,
        headers={**keyed("order-1"), "content-type": "application/json"},
    )

    assert first.status_code == second.status_code == 202
    assert second.content == first.content
    assert second.headers["location"] == first.headers["location"]
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    [message] = await queued(redis_url)
    assert message.body == first.json()


async def test_the_answer_replays_even_without_a_pickup_time(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    body = {k: v for k, v in SAMPLE_REQUEST.items() if k != "pickupTime"}
    body["packageInfo"] = {"size": "Small", "weight": 1}
    first = await client.post(URL, json=body, headers=keyed("k"))
    await asyncio.sleep(0.01)
    second = await client.post(URL, json=body, headers=keyed("k"))
    assert second.json() == first.json()  # same default pickupTime and packageId
    assert len(await queued(redis_url)) == 1


async def test_the_same_key_with_another_body_is_422(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    first = await client.post(URL, json=SAMPLE_REQUEST, headers=keyed("order-2"))
    assert first.status_code == 202
    other = {**SAMPLE_REQUEST, "ownerId": "someone-else"}
    response = await client.post(URL, json=other, headers=keyed("order-2"))

    body = assert_problem(response, 422)
    assert body["type"] == "urn:dronedelivery:problem:idempotency-key-reused"
    assert len(await queued(redis_url)) == 1
    # The first answer still stands.
    again = await client.post(URL, json=SAMPLE_REQUEST, headers=keyed("order-2"))
    assert again.content == first.content


async def test_different_keys_are_different_deliveries(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    first = await client.post(URL, json=SAMPLE_REQUEST, headers=keyed("a"))
    second = await client.post(URL, json=SAMPLE_REQUEST, headers=keyed("b"))
    assert first.json()["deliveryId"] != second.json()["deliveryId"]
    assert len(await queued(redis_url)) == 2


async def test_an_invalid_body_with_a_key_records_nothing(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    bad = {**SAMPLE_REQUEST, "ownerId": ""}
    assert field_errors(await client.post(URL, json=bad, headers=keyed("k1"))) == {"ownerId"}
    redis = Redis.from_url(redis_url)
    try:
        assert await redis.exists(record_key("anonymous", "k1")) == 0
    finally:
        await redis.aclose()
    # The key is still free for a valid body.
    assert (await client.post(URL, json=SAMPLE_REQUEST, headers=keyed("k1"))).status_code == 202


async def test_concurrent_requests_with_one_key_enqueue_once(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    responses = await asyncio.gather(
        *(client.post(URL, json=SAMPLE_REQUEST, headers=keyed("burst")) for _ in range(20))
    )

    assert {r.status_code for r in responses} == {202}
    assert len({r.content for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 19
    assert len(await queued(redis_url)) == 1


async def test_the_record_is_kept_for_the_ttl(client: httpx.AsyncClient, redis_url: str) -> None:
    response = await client.post(URL, json=SAMPLE_REQUEST, headers=keyed("stored"))
    redis = Redis.from_url(redis_url)
    try:
        key = record_key("anonymous", "stored")
        record = await redis.hgetall(key)
        ttl = await redis.ttl(key)
    finally:
        await redis.aclose()
    assert record[b"state"] == b"done"
    assert record[b"response"] == response.content
    assert b"token" not in record
    assert 86_000 < ttl <= 86_400


@pytest.mark.parametrize(
    "key",
    [b"", b"k" * 256, b"tab\tinside", "clé".encode(), b"\x7f"],
    ids=["empty", "too long", "tab", "not ASCII", "DEL"],
)
async def test_a_bad_key_is_400(client: httpx.AsyncClient, redis_url: str, key: bytes) -> None:
    response = await client.post(URL, json=SAMPLE_REQUEST, headers={b"Idempotency-Key": key})
    assert field_errors(response) == {"Idempotency-Key"}
    assert await queued(redis_url) == []


async def test_the_longest_key_and_inner_spaces_are_fine(client: httpx.AsyncClient) -> None:
    for key in ("k" * 255, "an order / 42", str(uuid.uuid4())):
        response = await client.post(URL, json=SAMPLE_REQUEST, headers=keyed(key))
        assert response.status_code == 202, (key, response.text)
