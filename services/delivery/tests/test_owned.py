"""The owner's list: ``GET /api/deliveries`` (newest first, pages, the caller's own, operators)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import httpx
from redis.asyncio import Redis

from dronetesting.apps import app_client
from dronetesting.tokens import LocalIssuer

JSON = dict[str, Any]
BASE = "/api/deliveries"
START = dt.datetime(2030, 5, 8, 12, 0, tzinfo=dt.UTC)


def ticking_clock() -> Callable[[], dt.datetime]:
    """A clock one second later at each reading, so creations have distinct times."""
    counter = itertools.count()
    return lambda: START + dt.timedelta(seconds=next(counter))


async def create(
    client: httpx.AsyncClient,
    new_delivery: Callable[..., JSON],
    delivery_id: str,
    user: str,
    account: str = "account-1",
    headers: dict[str, str] | None = None,
) -> None:
    body = new_delivery(delivery_id, owner={"userId": user, "accountId": account})
    response = await client.put(f"{BASE}/{delivery_id}", json=body, headers=headers)
    assert response.status_code == 201, response.text


async def ids(
    client: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None
) -> list[str]:
    response = await client.get(f"{BASE}?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_an_owners_deliveries_newest_first_in_pages(
    make_app: Callable[..., Any], new_delivery: Callable[..., JSON]
) -> None:
    async with app_client(make_app(clock=ticking_clock())) as client:
        for number in range(5):
            await create(client, new_delivery, f"a-{number}", "alice")
        await create(client, new_delivery, "b-0", "bob")

        first = await client.get(f"{BASE}?ownerId=alice&limit=2")
        assert first.status_code == 200
        page = first.json()
        assert [item["id"] for item in page["items"]] == ["a-4", "a-3"]
        item = page["items"][0]
        assert item["owner"] == {"userId": "alice", "accountId": "account-1"}
        assert item["status"]["stage"] == item["stage"]
        assert item["status"]["deliveryETA"]

        seen = [i["id"] for i in page["items"]]
        cursor = page["nextCursor"]
        while cursor:
            following = (await client.get(f"{BASE}?ownerId=alice&limit=2&cursor={cursor}")).json()
            seen += [i["id"] for i in following["items"]]
            cursor = following["nextCursor"]
        assert seen == ["a-4", "a-3", "a-2", "a-1", "a-0"]
        assert await ids(client, "ownerId=bob") == ["b-0"]
        assert await ids(client, "ownerId=nobody") == []


async def test_same_millisecond_creations_are_each_listed_once(
    make_app: Callable[..., Any], new_delivery: Callable[..., JSON]
) -> None:
    async with app_client(make_app(clock=lambda: START)) as client:
        for number in range(7):
            await create(client, new_delivery, f"t-{number}", "carol")
        seen: list[str] = []
        cursor = ""
        for _ in range(10):
            page = (await client.get(f"{BASE}?ownerId=carol&limit=3{cursor}")).json()
            seen += [i["id"] for i in page["items"]]
            if not page["nextCursor"]:
                break
            cursor = f"&cursor={page['nextCursor']}"
        assert sorted(seen) == [f"t-{n}" for n in range(7)]
        assert len(seen) == 7


async def test_expired_deliveries_leave_the_list(
    make_app: Callable[..., Any], new_delivery: Callable[..., JSON], redis: Redis
) -> None:
    async with app_client(make_app(clock=ticking_clock())) as client:
        for number in range(3):
            await create(client, new_delivery, f"e-{number}", "dave")
        await redis.delete("delivery:{e-1}", "delivery:{e-1}:history")  # as if it expired
        assert await ids(client, "ownerId=dave") == ["e-2", "e-0"]
        assert await redis.zrange("delivery:owned:dave", 0, -1) == ["e-0", "e-2"]


async def test_bad_parameters_are_400(
    client: httpx.AsyncClient, problem: Callable[..., JSON]
) -> None:
    body = problem(await client.get(BASE), 400)
    assert body["type"].endswith("owner-required")
    body = problem(await client.get(f"{BASE}?ownerId=x&cursor=%%%"), 400)
    assert body["type"].endswith("bad-cursor")
    problem(await client.get(f"{BASE}?ownerId=x&limit=0"), 400)
    problem(await client.get(f"{BASE}?ownerId=x&limit=101"), 400)


async def test_with_tokens_the_owner_is_the_customer(
    make_app: Callable[..., Any],
    dev_issuer: LocalIssuer,
    new_delivery: Callable[..., JSON],
    problem: Callable[..., JSON],
) -> None:
    writer = dev_issuer.service("Deliveries.Write", caller="workflow")
    reader = dev_issuer.service("Deliveries.Read", caller="notifier")
    confirmer = dev_issuer.service("Deliveries.Confirm", caller="simulator")
    alice = dev_issuer.customer("contoso", "alice")
    operator = dev_issuer.customer("fabrikam", "olga", roles=("Operator",))
    async with app_client(make_app(auth=dev_issuer.settings, clock=ticking_clock())) as client:
        await create(client, new_delivery, "c-1", "alice", "contoso", headers=writer)
        await create(client, new_delivery, "c-2", "alice", "other-account", headers=writer)
        await create(client, new_delivery, "c-3", "bob", "contoso", headers=writer)

        problem(await client.get(BASE), 401)
        assert await ids(client, "", headers=alice) == ["c-1"]  # her account only
        assert await ids(client, "ownerId=alice", headers=alice) == ["c-1"]
        refused = problem(await client.get(f"{BASE}?ownerId=bob", headers=alice), 403)
        assert refused["type"].endswith("not-your-deliveries")
        assert await ids(client, "ownerId=alice", headers=operator) == ["c-2", "c-1"]
        assert await ids(client, "ownerId=bob", headers=operator) == ["c-3"]
        assert await ids(client, "", headers=operator) == []  # her own: none
        # Services name the owner; a service without a reading role is refused.
        assert await ids(client, "ownerId=bob", headers=reader) == ["c-3"]
        needs_owner = problem(await client.get(BASE, headers=writer), 400)
        assert needs_owner["type"].endswith("owner-required")
        problem(await client.get(f"{BASE}?ownerId=bob", headers=confirmer), 403)
