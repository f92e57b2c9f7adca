"""Each refusal of the delivery service is a named problem type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from dronetesting.apps import app_client

JSON = dict[str, Any]
BASE = "/api/deliveries"
PROBLEM = "urn:dronedelivery:problem:"
Problem = Callable[..., JSON]


def confirmation(kind: str) -> JSON:
    return {
        "dateTime": "2024-05-01T12:00:00Z",
        "geoCoordinates": {"latitude": 47.6, "longitude": -122.3, "altitude": 0},
        "confirmationType": kind,
        "confirmationBlob": "aGVsbG8=",
    }


async def test_the_conflicts_name_what_they_conflict_with(
    client: httpx.AsyncClient, new_delivery: Callable[..., JSON], problem: Problem
) -> None:
    missing = problem(await client.get(f"{BASE}/ghost"), 404)
    assert missing["type"] == PROBLEM + "delivery-not-found"

    assert (await client.put(f"{BASE}/e-1", json=new_delivery("e-1"))).status_code == 201
    other = new_delivery("e-1", deadline="tomorrow")
    exists = problem(await client.put(f"{BASE}/e-1", json=other), 409)
    assert exists["type"] == PROBLEM + "delivery-exists"

    required = new_delivery("e-2", confirmationRequired="FingerPrint")
    assert (await client.put(f"{BASE}/e-2", json=required)).status_code == 201
    url = f"{BASE}/e-2/confirmations"
    rejected = problem(await client.post(url, json=confirmation("Picture")), 409)
    assert rejected["type"] == PROBLEM + "confirmation-rejected"
    assert (await client.post(url, json=confirmation("FingerPrint"))).status_code == 204
    closed = problem(await client.delete(f"{BASE}/e-2"), 409)
    assert closed["type"] == PROBLEM + "delivery-closed"
    assert closed["title"] == "Conflict"


async def test_the_notify_me_cap_is_its_own_conflict(
    make_app: Callable[..., Any], new_delivery: Callable[..., JSON], problem: Problem
) -> None:
    async with app_client(make_app(max_notify_requests=1)) as client:
        assert (await client.put(f"{BASE}/e-3", json=new_delivery("e-3"))).status_code == 201
        url = f"{BASE}/e-3/notifymerequests"
        assert (await client.post(url, json={"sms": "+14255550100"})).status_code == 204
        capped = problem(await client.post(url, json={"sms": "+14255550101"}), 409)
    assert capped["type"] == PROBLEM + "notify-limit-reached"
