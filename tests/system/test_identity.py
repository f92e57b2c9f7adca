"""End to end with tokens on, as `make run` runs: whose deliveries are whose, what a customer
token may not reach, the service area, and the per-account rate (see conftest.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from dronetesting.samples import SAMPLE_REQUEST

from .conftest import QUEUE_STREAM, STACK_ENV, System
from .test_system import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

DELIVERY_PREFIX = "/api/deliveries"
REQUESTS = "/api/deliveryrequests"


def sample(owner: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(SAMPLE_REQUEST))
    body["ownerId"] = owner
    body.update(changes)
    return body


async def scheduled(
    http: httpx.AsyncClient, system: System, headers: dict[str, str], body: dict[str, Any]
) -> str:
    """POST ``body`` with ``headers``, then wait until the delivery has its drone."""
    response = await http.post(system.url("ingestion") + REQUESTS, json=body, headers=headers)
    assert response.status_code == 202, response.text
    delivery_id: str = response.json()["deliveryId"]
    url = system.url("delivery") + f"{DELIVERY_PREFIX}/{delivery_id}"

    async def has_drone() -> bool:
        found = await http.get(url, headers=headers)
        return found.status_code == 200 and bool(found.json().get("droneId"))

    await wait_for(has_drone, 15, f"{delivery_id} scheduled")
    return delivery_id


async def queue_entries(redis: Redis) -> int:
    try:
        info = await redis.xinfo_stream(QUEUE_STREAM)
    except Exception:  # no stream yet
        return 0
    return int(info["entries-added"])


async def test_another_account_finds_no_such_delivery(
    system: System, http: httpx.AsyncClient
) -> None:
    user = f"alice-{uuid.uuid4().hex[:6]}"
    alice = system.customer(user, "contoso")
    delivery_id = await scheduled(http, system, alice, sample(user))
    item = system.url("delivery") + f"{DELIVERY_PREFIX}/{delivery_id}"
    request_item = system.url("ingestion") + f"{REQUESTS}/{delivery_id}"

    for stranger in (system.customer(user, "fabrikam"), system.customer("mallory", "contoso")):
        for path in ("", "/status", "/history", "/owner"):
            response = await http.get(item + path, headers=stranger)
            assert response.status_code == 404, (path, response.text)
        cancel = await http.delete(request_item, headers=stranger)
        assert cancel.status_code == 404, cancel.text
        patch = await http.patch(request_item, json={"deadline": "x"}, headers=stranger)
        assert patch.status_code == 404
    # Nobody else's cancel reached it; an operator of another account sees it.
    operator = system.customer("ops", "fabrikam", "Operator")
    status = await http.get(item + "/status", headers=operator)
    assert status.json()["stage"] != "Cancelled"
    # The public view shows no personal data.
    public = await http.get(system.url("delivery") + f"{DELIVERY_PREFIX}/public/{delivery_id}")
    assert public.status_code == 200
    assert user not in public.text
    assert "owner" not in public.json()
    # The owner cancels it.
    assert (await http.delete(request_item, headers=alice)).status_code == 202

    async def cancelled() -> bool:
        found = await http.get(item + "/status", headers=alice)
        return bool(found.json()["stage"] == "Cancelled")

    await wait_for(cancelled, 15, "the owner's cancel")


async def test_customer_tokens_never_reach_internal_routes(
    system: System, http: httpx.AsyncClient
) -> None:
    customer = system.customer()
    operator = system.customer("ops", "contoso", "Operator")
    delivery_id = str(uuid.uuid4())
    body = {
        "id": delivery_id,
        "owner": {"userId": "myowner", "accountId": "contoso"},
        "pickup": {"latitude": 47.6, "longitude": -122.33, "altitude": 0},
        "dropoff": {"latitude": 47.62, "longitude": -122.35, "altitude": 0},
        "deadline": "",
        "expedited": False,
        "confirmationRequired": "None",
        "droneId": None,
    }
    for headers in (customer, operator):
        put = await http.put(
            system.url("delivery") + f"{DELIVERY_PREFIX}/{delivery_id}", json=body, headers=headers
        )
        assert put.status_code == 403, put.text
        for url in (
            system.url("dronescheduler") + f"/api/dronedeliveries/{delivery_id}",
            system.url("package") + "/api/packages/mypackage",
            system.url("notifier") + f"/api/notifications?deliveryId={delivery_id}",
            system.url("notifier") + "/api/accounts/contoso/webhooksecret",
        ):
            response = await http.get(url, headers=headers)
            assert response.status_code == 403, (url, response.text)
        fleet = await http.get(system.url("simulator") + "/api/fleet", headers=headers)
        assert fleet.status_code == 403
    # A service token for the public API is not a customer's: ingestion refuses it.
    workflow = system.service("delivery", "Deliveries.Write", caller="workflow")
    post = await http.post(
        system.url("ingestion") + REQUESTS, json=sample("myowner"), headers=workflow
    )
    assert post.status_code == 401  # another audience: not a token for the public API


async def test_one_account_never_touches_another_s_package(
    system: System, http: httpx.AsyncClient
) -> None:
    package_id = f"shared-{uuid.uuid4().hex[:8]}"
    for account, weight in (("contoso", 10), ("fabrikam", 20)):
        body = sample(
            "buyer", packageInfo={"packageId": package_id, "size": "Small", "weight": weight}
        )
        await scheduled(http, system, system.customer("buyer", account), body)
    packages = system.service("package", "Packages.Write")
    url = system.url("package") + f"/api/packages/{package_id}"
    for account, weight in (("contoso", 10), ("fabrikam", 20)):
        found = await http.get(url, headers={**packages, "Dronedelivery-Account-Id": account})
        assert found.status_code == 200, found.text
        assert found.json()["weight"] == weight


async def test_places_outside_the_service_area_are_400(
    system: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    before = await queue_entries(redis)
    far = sample("myowner", pickupLocation="-47.6,57.7")
    response = await http.post(
        system.url("ingestion") + REQUESTS, json=far, headers=system.customer()
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "urn:dronedelivery:problem:outside-service-area"
    assert [error["field"] for error in problem["errors"]] == ["pickupLocation"]
    assert await queue_entries(redis) == before


async def test_a_burst_beyond_the_rate_gets_429s_and_nothing_beyond_is_queued(
    system: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    limits: dict[str, str | None] = {
        "INGESTION_LIMITS__REQUESTS_PER_MINUTE": "6",
        "INGESTION_LIMITS__BURST": "5",
    }
    await asyncio.to_thread(system.reconfigure, "ingestion", limits)
    try:
        account = f"burst-{uuid.uuid4().hex[:6]}"
        customer = system.customer("buyer", account)
        before = await queue_entries(redis)
        answers = await asyncio.gather(
            *(
                http.post(
                    system.url("ingestion") + REQUESTS,
                    json=sample("buyer"),
                    headers=customer,
                )
                for _ in range(15)
            )
        )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [202] * 5 + [429] * 10, statuses
        for answer in answers:
            if answer.status_code == 429:
                assert answer.json()["type"] == "urn:dronedelivery:problem:rate-limited"
                assert 1 <= int(answer.headers["retry-after"]) <= 10
        assert await queue_entries(redis) - before == 5
    finally:
        restore: dict[str, str | None] = {name: STACK_ENV[name] for name in limits}
        await asyncio.to_thread(system.reconfigure, "ingestion", restore)
