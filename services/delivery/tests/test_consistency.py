"""Atomicity under concurrency, summaries across months, and retention of terminal deliveries.

Two app instances (two "replicas", each with its own Redis connection pool) share one real Redis,
so the races below are between independent clients, as in production.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from delivery.repository import DeliveryRepository
from dronetesting.apps import app_client
from dronetesting.clocks import FakeUtcClock

JSON = dict[str, Any]
BASE = "/api/deliveries"
CONFIRMATION: JSON = {
    "dateTime": "2025-05-08T20:30:00Z",
    "geoCoordinates": {"latitude": 47.7, "longitude": -122.2, "altitude": 0},
    "confirmationType": "None",
}


@pytest.fixture
async def replicas(make_app: Callable[..., Any]) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(app_client(make_app()))
        second = await stack.enter_async_context(app_client(make_app()))
        yield first, second


@pytest.mark.parametrize("lockstep", [False, True], ids=["as-is", "lockstep-reads"])
async def test_cancel_and_confirm_at_once_end_in_exactly_one_terminal_stage(
    replicas: tuple[httpx.AsyncClient, ...],
    new_delivery: Callable[..., JSON],
    monkeypatch: pytest.MonkeyPatch,
    lockstep: bool,
) -> None:
    """50 deliveries, each cancelled and confirmed at once through two replicas.

    With ``lockstep-reads`` the first two reads of each delivery wait for each other, so both
    requests decide on the same revision and one compare-and-set write must lose and decide again:
    the worst interleaving, every time.
    """
    outcomes_seen: Counter[str] = Counter()
    reads: Counter[str] = Counter()
    both_read: dict[str, asyncio.Event] = {}
    original_get, original_write = DeliveryRepository.get, DeliveryRepository.write

    async def lockstep_get(self: Any, delivery_id: str) -> Any:
        snapshot = await original_get(self, delivery_id)
        reads[delivery_id] += 1
        gate = both_read.setdefault(delivery_id, asyncio.Event())
        if reads[delivery_id] == 1:
            await asyncio.wait_for(gate.wait(), timeout=10)
        elif reads[delivery_id] == 2:
            gate.set()
        return snapshot

    async def counted_write(self: Any, *args: Any, **kwargs: Any) -> Any:
        outcome = await original_write(self, *args, **kwargs)
        outcomes_seen[outcome.value] += 1
        return outcome

    monkeypatch.setattr(DeliveryRepository, "write", counted_write)

    one, two = replicas
    ids = [f"race-{index}" for index in range(50)]
    await asyncio.gather(*(one.put(f"{BASE}/{i}", json=new_delivery(i)) for i in ids))
    if lockstep:
        monkeypatch.setattr(DeliveryRepository, "get", lockstep_get)

    async def race(delivery_id: str) -> tuple[int, int]:
        cancel, confirm = await asyncio.gather(
            one.delete(f"{BASE}/{delivery_id}"),
            two.post(f"{BASE}/{delivery_id}/confirmations", json=CONFIRMATION),
        )
        return cancel.status_code, confirm.status_code

    outcomes = await asyncio.gather(*(race(i) for i in ids))
    winners: Counter[str] = Counter()
    for delivery_id, (cancel, confirm) in zip(ids, outcomes, strict=True):
        assert sorted((cancel, confirm)) == [204, 409], (delivery_id, cancel, confirm)
        expected = "Cancelled" if cancel == 204 else "Completed"
        winners[expected] += 1
        status = (await one.get(f"{BASE}/{delivery_id}/status")).json()
        assert status["stage"] == expected
        history = (await two.get(f"{BASE}/{delivery_id}/history")).json()
        terminal = [e["stage"] for e in history if e["stage"] in ("Cancelled", "Completed")]
        assert terminal == [expected], (delivery_id, history)
    assert sum(winners.values()) == 50
    assert outcomes_seen["written"] == 50  # one terminal write per delivery, never two
    if lockstep:
        assert outcomes_seen["stale"] == 50  # every loser decided on the old revision, and lost


async def test_concurrent_identical_puts_create_once(
    replicas: tuple[httpx.AsyncClient, ...], new_delivery: Callable[..., JSON]
) -> None:
    body = new_delivery("same")
    responses = await asyncio.gather(
        *(replicas[n % 2].put(f"{BASE}/same", json=body) for n in range(30))
    )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 204: 29}
    history = (await replicas[0].get(f"{BASE}/same/history")).json()
    assert [event["stage"] for event in history] == ["Created"]
    created = (await replicas[0].get(f"{BASE}/same")).json()["createdAt"]
    query = f"ownerId=owner-1&year={created[:4]}&month={int(created[5:7])}"
    assert (await replicas[1].get(f"{BASE}/summary?{query}")).json() == {"count": 1}


async def test_concurrent_different_puts_create_one_and_conflict_the_rest(
    replicas: tuple[httpx.AsyncClient, ...], new_delivery: Callable[..., JSON]
) -> None:
    bodies = [new_delivery("contested", deadline=f"variant {n}") for n in range(10)]
    responses = await asyncio.gather(
        *(replicas[n % 2].put(f"{BASE}/contested", json=b) for n, b in enumerate(bodies))
    )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 409: 9}
    winner = next(b for b, r in zip(bodies, responses, strict=True) if r.status_code == 201)
    stored = (await replicas[0].get(f"{BASE}/contested")).json()
    assert stored["deadline"] == winner["deadline"]


async def test_summary_counts_real_creations_per_utc_month(
    make_app: Callable[..., Any], new_delivery: Callable[..., JSON], redis: Redis
) -> None:
    clock = FakeUtcClock(dt.datetime(2024, 12, 31, 23, 59, 59, tzinfo=dt.UTC))
    async with app_client(make_app(clock=clock)) as client:

        async def create(delivery_id: str, owner: str = "acme") -> int:
            body = new_delivery(delivery_id, owner={"userId": owner, "accountId": "a"})
            return (await client.put(f"{BASE}/{delivery_id}", json=body)).status_code

        async def count(year: int, month: int, owner: str = "acme") -> int:
            query = f"ownerId={owner}&year={year}&month={month}"
            response = await client.get(f"{BASE}/summary?{query}")
            assert response.status_code == 200
            value: int = response.json()["count"]
            return value

        assert await create("dec-1") == 201
        clock.now = dt.datetime(2025, 1, 1, 0, 0, 0, tzinfo=dt.UTC)
        for name in ("jan-1", "jan-2", "jan-3"):
            assert await create(name) == 201
        assert await create("jan-other", owner="globex") == 201
        clock.now = dt.datetime(2025, 1, 31, 23, 59, 59, 999000, tzinfo=dt.UTC)
        assert await create("jan-4") == 201
        clock.now = dt.datetime(2025, 2, 1, tzinfo=dt.UTC)
        assert await create("feb-1") == 201
        assert await create("jan-1") == 204  # a replay in February counts in January, once
        await client.delete(f"{BASE}/jan-2")  # cancelled deliveries were still created

        assert await count(2024, 12) == 1
        assert await count(2025, 1) == 4
        assert await count(2025, 2) == 1
        assert await count(2025, 3) == 0
        assert await count(2025, 1, owner="globex") == 1
        assert await count(2024, 1) == 0

        # The monthly set expires summary_retention_days (730) after its month ends.
        key = "delivery:summary:acme:2025-01"
        expected = int(dt.datetime(2025, 2, 1, tzinfo=dt.UTC).timestamp()) + 730 * 86400
        assert await redis.expiretime(key) == expected

        # A creation whose count was lost (a crash between the two writes) is healed on replay.
        await redis.delete(key)
        assert await count(2025, 1) == 0
        assert await create("jan-1") == 204
        assert await count(2025, 1) == 1


async def test_terminal_deliveries_get_a_ttl_on_every_key_and_not_before(
    make_app: Callable[..., Any], new_delivery: Callable[..., JSON], redis: Redis
) -> None:
    async with app_client(make_app(retention_seconds=1000)) as client:

        async def ttls(delivery_id: str) -> list[int]:
            keys = await redis.keys(f"delivery:{{{delivery_id}}}*")
            assert len(keys) == 3, keys  # the hash, the history and the stage entries
            return [await redis.ttl(key) for key in sorted(keys)]

        for name in ("to-cancel", "to-confirm"):
            await client.put(f"{BASE}/{name}", json=new_delivery(name))
            assert await ttls(name) == [-1, -1, -1]
            await client.patch(f"{BASE}/{name}", json={"deadline": "later"})
            await client.post(f"{BASE}/{name}/notifymerequests", json={"sms": "+14255550100"})
            assert await ttls(name) == [-1, -1, -1]

        await client.delete(f"{BASE}/to-cancel")
        await client.post(f"{BASE}/to-confirm/confirmations", json=CONFIRMATION)
        for name in ("to-cancel", "to-confirm"):
            assert all(990 <= ttl <= 1000 for ttl in await ttls(name))

        # Writes after the terminal one keep the TTL (and a repeated cancel changes nothing).
        await client.post(f"{BASE}/to-cancel/notifymerequests", json={"sms": "+14255550101"})
        await client.delete(f"{BASE}/to-cancel")
        assert all(990 <= ttl <= 1000 for ttl in await ttls("to-cancel"))


async def test_terminal_deliveries_expire_after_the_retention_period(
    make_app: Callable[..., Any], new_delivery: Callable[..., JSON], redis: Redis
) -> None:
    async with app_client(make_app(retention_seconds=1)) as client:
        await client.put(f"{BASE}/brief", json=new_delivery("brief"))
        await client.put(f"{BASE}/lasting", json=new_delivery("lasting"))
        await client.delete(f"{BASE}/brief")
        await asyncio.sleep(1.2)
        assert (await client.get(f"{BASE}/brief")).status_code == 404
        assert (await client.get(f"{BASE}/brief/history")).status_code == 404
        assert await redis.keys("delivery:{brief}*") == []
        assert (await client.get(f"{BASE}/lasting")).status_code == 200
        created = (await client.get(f"{BASE}/lasting")).json()["createdAt"]
        query = f"ownerId=owner-1&year={created[:4]}&month={int(created[5:7])}"
        assert (await client.get(f"{BASE}/summary?{query}")).json() == {"count": 2}
