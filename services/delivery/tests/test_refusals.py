"""``POST /api/deliveries/{id}/refusals``: a change of places the drone scheduler refused after
ingestion accepted it. The delivery keeps its plan; the owner's status (and owner's stream)
carries ``refusedChange`` until a later reschedule succeeds; a ``ChangeRefused`` event tells the
recipients; nothing of it reaches the public views. Real Redis, the app over real sockets for
the streams.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from dronecommon.events import ChangeRefusedData, EventType, read_range
from dronetesting.apps import running_server

from .conftest import BASE, CONFIRMATION, JSON, NewDelivery, Problem, put
from .test_stream import Reader, count

FAR_SOUTH = {"latitude": 47.412, "longitude": -122.274, "altitude": 0.0}
REFUSAL: JSON = {
    "requestedAt": "2030-01-01T09:00:00.000Z",
    "reason": "trip-too-long",
    "detail": "The trip would be at least 60.8 miles; no trip may be longer than 50 miles.",
    "dropoff": FAR_SOUTH,
    "dropoffPlace": "Pier 9, Tukwila",
}


async def test_a_refusal_shows_on_the_owners_status_once_and_a_reschedule_clears_it(
    client: httpx.AsyncClient, new_delivery: NewDelivery, redis: Redis
) -> None:
    await put(client, new_delivery("r-1", dropoffPlace="Gas Works Park"))
    before = (await client.get(f"{BASE}/r-1")).json()
    response = await client.post(f"{BASE}/r-1/refusals", json=REFUSAL)
    assert response.status_code == 204, response.text

    status = (await client.get(f"{BASE}/r-1/status")).json()
    refused = status["refusedChange"]
    assert {k: refused[k] for k in REFUSAL} == REFUSAL
    assert (refused["pickup"], refused["pickupPlace"]) == (None, None)
    # The delivery itself did not change: same places, same plan, same stage, no history entry.
    after = (await client.get(f"{BASE}/r-1")).json()
    for name in ("stage", "pickup", "dropoff", "dropoffPlace", "pickupETA", "deliveryETA"):
        assert after[name] == before[name], name
    assert [e["stage"] for e in (await client.get(f"{BASE}/r-1/history")).json()] == ["Created"]
    # Nothing of it is public.
    public = (await client.get(f"{BASE}/public/r-1")).json()
    assert "refusedChange" not in json.dumps(public)

    # One ChangeRefused event, with who to tell and the delivery's current drop-off name.
    events = [e for e in await read_range(redis) if e.type is EventType.CHANGE_REFUSED]
    assert len(events) == 1
    data = events[0].data_as(ChangeRefusedData)
    assert data.dropoff_place == "Gas Works Park"
    assert data.refused.dropoff_place == "Pier 9, Tukwila"
    assert data.refused.reason == "trip-too-long"
    assert data.notify is not None
    assert data.notify.account_id == "account-1"

    # A repeat (a redelivered message) records nothing new.
    assert (await client.post(f"{BASE}/r-1/refusals", json=REFUSAL)).status_code == 204
    events = [e for e in await read_range(redis) if e.type is EventType.CHANGE_REFUSED]
    assert len(events) == 1
    assert (await client.get(f"{BASE}/r-1/status")).json()["refusedChange"] == refused

    # A later change that succeeds is the latest word: the refusal goes.
    place = {"latitude": 47.65, "longitude": -122.30, "altitude": 0.0}
    assert (await client.patch(f"{BASE}/r-1", json={"dropoff": place})).status_code == 204
    assert "refusedChange" not in (await client.get(f"{BASE}/r-1/status")).json()


async def test_another_refusal_replaces_the_last(
    client: httpx.AsyncClient, new_delivery: NewDelivery, redis: Redis
) -> None:
    await put(client, new_delivery("r-2"))
    await client.post(f"{BASE}/r-2/refusals", json=REFUSAL)
    later = REFUSAL | {"requestedAt": "2030-01-01T09:05:00.000Z", "dropoffPlace": "Kent"}
    assert (await client.post(f"{BASE}/r-2/refusals", json=later)).status_code == 204
    refused = (await client.get(f"{BASE}/r-2/status")).json()["refusedChange"]
    assert (refused["requestedAt"], refused["dropoffPlace"]) == (later["requestedAt"], "Kent")
    events = [e for e in await read_range(redis) if e.type is EventType.CHANGE_REFUSED]
    assert len(events) == 2


async def test_refusals_are_404_unknown_409_once_ended_and_gone_from_an_ended_status(
    client: httpx.AsyncClient, new_delivery: NewDelivery, problem: Problem
) -> None:
    problem(await client.post(f"{BASE}/ghost/refusals", json=REFUSAL), 404)
    await put(client, new_delivery("r-3"))
    await client.post(f"{BASE}/r-3/refusals", json=REFUSAL)
    await client.post(f"{BASE}/r-3/confirmations", json=CONFIRMATION)
    assert "refusedChange" not in (await client.get(f"{BASE}/r-3/status")).json()
    problem(await client.post(f"{BASE}/r-3/refusals", json=REFUSAL), 409)
    await put(client, new_delivery("r-4"))
    await client.delete(f"{BASE}/r-4")
    problem(await client.post(f"{BASE}/r-4/refusals", json=REFUSAL), 409)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({k: v for k, v in REFUSAL.items() if k != "requestedAt"}, {"requestedAt"}),
        (REFUSAL | {"reason": ""}, {"reason"}),
        ({k: v for k, v in REFUSAL.items() if k not in ("dropoff", "dropoffPlace")}, {"body"}),
        ({k: v for k, v in REFUSAL.items() if k != "dropoff"}, {"body"}),
        (REFUSAL | {"dropoff": {"latitude": 91, "longitude": 0}}, {"dropoff.latitude"}),
    ],
)
async def test_refusals_are_validated(
    client: httpx.AsyncClient,
    new_delivery: NewDelivery,
    problem: Problem,
    body: JSON,
    fields: set[str],
) -> None:
    await put(client, new_delivery("r-5"))
    problem(await client.post(f"{BASE}/r-5/refusals", json=body), 400, fields=fields)
    assert "refusedChange" not in (await client.get(f"{BASE}/r-5/status")).json()


async def test_the_owners_stream_brings_the_refusal_and_the_public_one_does_not(
    make_app: Callable[..., Any], new_delivery: NewDelivery
) -> None:
    async with (
        running_server(make_app()) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        await put(client, new_delivery("r-6"))
        async with (
            Reader(client, f"{BASE}/r-6/tracking") as owner,
            Reader(client, f"{BASE}/public/r-6/tracking") as anyone,
        ):
            await owner.until(count(1))
            await anyone.until(count(1))
            assert (await client.post(f"{BASE}/r-6/refusals", json=REFUSAL)).status_code == 204
            await owner.until(lambda _: "refusedChange" in owner.statuses()[-1])
            assert owner.statuses()[-1]["refusedChange"]["dropoffPlace"] == "Pier 9, Tukwila"
            # The public stream has nothing new to say; a stage change it does say shows no refusal.
            await client.delete(f"{BASE}/r-6")
            events = await anyone.until(lambda events: events[-1].event == "end")
            assert all("refusedChange" not in e.data for e in events)
