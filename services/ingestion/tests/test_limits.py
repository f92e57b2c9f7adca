"""Per-account limits (a rate and a cap on deliveries in progress) and the service area: what is
refused is refused before anything is queued."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from dronecommon.area import ServiceArea
from dronecommon.events import DeliveryEvent, EventType, append, events_stream
from dronetesting.apps import app_client
from dronetesting.problems import assert_problem
from dronetesting.samples import SAMPLE_REQUEST
from ingestion.accounts import AccountStore, Owner
from ingestion.ended import EndedDeliveries
from ingestion.main import create_app
from ingestion.settings import LimitSettings

from .conftest import make_settings, queued

URL = "/api/deliveryrequests"


def request(owner: str, **changes: Any) -> dict[str, Any]:
    return {**SAMPLE_REQUEST, "ownerId": owner, **changes}


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(10):
        while not await check():  # noqa: ASYNC110 - polling another process's state
            await asyncio.sleep(0.05)


@pytest.fixture
async def limited(redis_url: str) -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """``await limited(**limits)``: a client of an app with these per-account limits."""
    async with AsyncExitStack() as stack:

        async def make(**limits: Any) -> httpx.AsyncClient:
            settings = make_settings(redis_url, limits=LimitSettings(**limits))
            app = create_app(settings, configure_logs=False)
            return await stack.enter_async_context(app_client(app))

        yield make


async def test_a_burst_beyond_the_rate_gets_429_with_retry_after_and_nothing_queued(
    limited: Callable[..., Awaitable[httpx.AsyncClient]], redis_url: str
) -> None:
    client = await limited(requests_per_minute=6, burst=3)
    answers = await asyncio.gather(*(client.post(URL, json=request("acme")) for _ in range(10)))
    accepted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code != 202]
    assert len(accepted) == 3
    assert len(refused) == 7
    for answer in refused:
        body = assert_problem(answer, 429)
        assert body["type"] == "urn:dronedelivery:problem:rate-limited"
        # One request every 10 s: the next one is allowed within 10 s.
        assert 1 <= int(answer.headers["retry-after"]) <= 10
    queued_ids = {m.body["deliveryId"] for m in await queued(redis_url)}
    assert queued_ids == {a.json()["deliveryId"] for a in accepted}
    # Another account has its own rate.
    assert (await client.post(URL, json=request("globex"))).status_code == 202


async def test_the_rate_refills_over_time(
    limited: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    client = await limited(requests_per_minute=600, burst=1)  # one every 100 ms
    assert (await client.post(URL, json=request("acme"))).status_code == 202
    assert (await client.post(URL, json=request("acme"))).status_code == 429
    await asyncio.sleep(0.25)
    assert (await client.post(URL, json=request("acme"))).status_code == 202


async def test_the_rate_holds_across_replicas(
    limited: Callable[..., Awaitable[httpx.AsyncClient]], redis_url: str
) -> None:
    replicas = [await limited(requests_per_minute=1, burst=4) for _ in range(3)]
    answers = await asyncio.gather(
        *(replicas[n % 3].post(URL, json=request("acme")) for n in range(12))
    )
    assert sorted(a.status_code for a in answers) == [202] * 4 + [429] * 8
    assert len(await queued(redis_url)) == 4


async def test_deliveries_in_progress_are_capped_until_one_ends(
    limited: Callable[..., Awaitable[httpx.AsyncClient]], redis_url: str
) -> None:
    client = await limited(max_in_progress=2, burst=100)
    first = await client.post(URL, json=request("acme"))
    assert (await client.post(URL, json=request("acme"))).status_code == 202
    capped = await client.post(URL, json=request("acme"))
    body = assert_problem(capped, 429)
    assert body["type"] == "urn:dronedelivery:problem:too-many-deliveries-in-progress"
    assert capped.headers["retry-after"] == "60"
    assert len(await queued(redis_url)) == 2

    # The delivery service reports the first one completed: the account may send another.
    redis = Redis.from_url(redis_url)
    try:
        await until(lambda: _group_exists(redis, "ingestion"))
        event = DeliveryEvent(
            EventType.COMPLETED, first.json()["deliveryId"], dt.datetime.now(dt.UTC)
        )
        await append(redis, event)

        async def accepted() -> bool:
            return (await client.post(URL, json=request("acme"))).status_code == 202

        await until(accepted)
    finally:
        await redis.aclose()
    assert len(await queued(redis_url)) == 3


async def test_a_delivery_never_reported_ended_stops_counting_in_time(
    limited: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    client = await limited(max_in_progress=1, burst=100, in_progress_seconds=0.5)
    assert (await client.post(URL, json=request("acme"))).status_code == 202
    assert (await client.post(URL, json=request("acme"))).status_code == 429
    await asyncio.sleep(0.6)
    assert (await client.post(URL, json=request("acme"))).status_code == 202


async def test_a_replay_counts_against_no_limit(
    limited: Callable[..., Awaitable[httpx.AsyncClient]], redis_url: str
) -> None:
    client = await limited(max_in_progress=1, burst=1, requests_per_minute=1)
    key = {"Idempotency-Key": "once"}
    first = await client.post(URL, json=request("acme"), headers=key)
    replay = await client.post(URL, json=request("acme"), headers=key)
    assert first.status_code == replay.status_code == 202
    assert replay.headers["idempotent-replayed"] == "true"
    assert (await client.post(URL, json=request("acme"))).status_code == 429
    assert len(await queued(redis_url)) == 1


async def _group_exists(redis: Redis, group: str) -> bool:
    try:
        groups = await redis.xinfo_groups(events_stream())
    except Exception:
        return False
    return any(_name(g) == group for g in groups)


def _name(group: Any) -> str:
    name = group.get("name") or group.get(b"name")
    return name.decode() if isinstance(name, bytes) else str(name)


# --- the service area ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"pickupLocation": "-47.6,57.7"}, ["pickupLocation"]),
        ({"dropOffLocation": "40.7128,-74.0060"}, ["dropOffLocation"]),
        (
            {"pickupLocation": "-47.6,57.7", "dropOffLocation": "47.25,-122.44"},
            ["pickupLocation", "dropOffLocation"],
        ),
    ],
    ids=["pickup", "drop-off", "both"],
)
async def test_places_outside_the_service_area_are_400_naming_which(
    client: httpx.AsyncClient, redis_url: str, changes: dict[str, str], fields: list[str]
) -> None:
    response = await client.post(URL, json=request("acme", **changes))
    body = assert_problem(response, 400)
    assert body["type"] == "urn:dronedelivery:problem:outside-service-area"
    assert [error["field"] for error in body["errors"]] == fields
    for name in fields:
        assert name in body["detail"]
    assert "miles from the nearest drone base" in body["errors"][0]["message"]
    assert await queued(redis_url) == []


async def test_free_text_and_places_near_a_base_are_accepted(client: httpx.AsyncClient) -> None:
    for pickup, dropoff in (("my pickup", "drop off"), ("47.6,-122.33", "47.7,-122.3")):
        response = await client.post(
            URL, json=request("acme", pickupLocation=pickup, dropOffLocation=dropoff)
        )
        assert response.status_code == 202, response.text


async def test_a_trip_longer_than_the_maximum_is_400(redis_url: str) -> None:
    settings = make_settings(redis_url, service_area=ServiceArea(max_trip_miles=8))
    async with app_client(create_app(settings, configure_logs=False)) as client:
        far = request("acme", pickupLocation="47.70,-122.33", dropOffLocation="47.55,-122.28")
        body = assert_problem(await client.post(URL, json=far), 400)
        assert body["type"] == "urn:dronedelivery:problem:trip-too-long"
        assert "8 miles" in body["detail"]
        near = request("acme", pickupLocation="47.61,-122.34", dropOffLocation="47.62,-122.35")
        assert (await client.post(URL, json=near)).status_code == 202
    assert len(await queued(redis_url)) == 1


async def test_a_batch_of_events_ends_each_ended_delivery_of_its_own_account_once(
    redis_url: str,
) -> None:
    """Endings of two accounts, one repeated, one never accepted here, among other events."""
    redis = Redis.from_url(redis_url)
    try:
        accounts = AccountStore(redis, limits=LimitSettings(burst=100), ownership_ttl=60)
        acme, globex = Owner("u1", "batch-acme"), Owner("u2", "batch-globex")
        for delivery_id, owner in [("b-1", acme), ("b-2", acme), ("b-3", globex)]:
            assert (await accounts.admit(owner, delivery_id)).state == "ok"
            await accounts.record_owner(delivery_id, owner)
        now = dt.datetime.now(dt.UTC)
        batch = [
            DeliveryEvent(EventType.COMPLETED, "b-1", now),
            DeliveryEvent(EventType.ASSIGNED, "b-2", now),
            DeliveryEvent(EventType.CANCELLED, "b-3", now),
            DeliveryEvent(EventType.COMPLETED, "b-unknown", now),
            DeliveryEvent(EventType.COMPLETED, "b-1", now),
        ]
        await EndedDeliveries(accounts).handle(batch)
        assert await accounts.in_progress("batch-acme") == 1  # b-2 is still under way
        assert await accounts.in_progress("batch-globex") == 0
        await EndedDeliveries(accounts).handle(batch)  # handled again: nothing changes
        assert await accounts.in_progress("batch-acme") == 1
        await EndedDeliveries(accounts).handle([])
    finally:
        await redis.aclose()
