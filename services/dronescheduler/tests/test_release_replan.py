"""GET, DELETE and PATCH /api/dronedeliveries/{deliveryId}: reading, releasing, re-planning."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
from pymongo.asynchronous.database import AsyncDatabase

from dronecommon.domain import Location, distance_miles
from dronetesting.problems import assert_problem

from .conftest import (
    DOWNTOWN,
    DROPOFF,
    PICKUP,
    STANDARD,
    area,
    delivery,
    fleet,
    place,
    put,
    running,
    scheduler_settings,
    when,
)

Document = dict[str, Any]


async def test_get_reads_the_assignment(client: httpx.AsyncClient) -> None:
    body = delivery(owner="reader")
    answer = (await put(client, body)).json()
    response = await client.get(f"/api/dronedeliveries/{body['deliveryId']}")
    assert response.status_code == 200
    record = response.json()
    assert record["deliveryId"] == body["deliveryId"]
    assert record["ownerId"] == "reader"
    assert record["droneId"] == answer["droneId"]
    assert record["base"] == "downtown"
    assert record["droneClass"] == "standard"
    assert record["pickup"] == PICKUP
    assert record["dropoff"] == DROPOFF
    assert record["pickupETA"] == answer["pickupETA"]
    assert record["deliveryETA"] == answer["deliveryETA"]
    assert record["status"] == "Assigned"
    assert record["releasedAt"] is None
    assert record["speedMph"] == 40.0
    base = Location(latitude=DOWNTOWN.latitude, longitude=DOWNTOWN.longitude)
    pickup, dropoff = Location(**PICKUP), Location(**DROPOFF)
    miles = distance_miles(base, pickup) + distance_miles(pickup, dropoff)
    miles += distance_miles(dropoff, base)
    assert abs(record["routeMiles"] - miles) < 0.001

    missing = assert_problem(await client.get(f"/api/dronedeliveries/{uuid.uuid4()}"), 404)
    assert "No drone assignment" in missing["detail"]
    assert_problem(await client.get("/api/dronedeliveries/not%20an%20id"), 400)


async def test_release_frees_the_drone_and_is_idempotent(
    mongo_url: str, mongo_database: str
) -> None:
    settings = scheduler_settings(mongo_url, mongo_database, fleet(count=1))
    async with running(settings) as client:
        body = delivery()
        drone = (await put(client, body)).json()["droneId"]
        assert_problem(await put(client, delivery()), 503)

        path = f"/api/dronedeliveries/{body['deliveryId']}"
        released = await client.delete(path)
        assert released.status_code == 204
        assert released.content == b""
        record = (await client.get(path)).json()
        assert record["status"] == "Released"
        released_at = when(record["releasedAt"])
        assert abs(released_at - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)

        # Idempotent: again, concurrently, and for deliveries never seen.
        again = await asyncio.gather(*(client.delete(path) for _ in range(5)))
        assert {response.status_code for response in again} == {204}
        assert (await client.get(path)).json()["releasedAt"] == record["releasedAt"]
        assert (await client.delete(f"/api/dronedeliveries/{uuid.uuid4()}")).status_code == 204
        assert_problem(await client.delete("/api/dronedeliveries/bad%20id"), 400)

        # The drone is free for the next delivery; the released one cannot take it back.
        assert (await put(client, delivery())).json()["droneId"] == drone
        conflict = assert_problem(await put(client, body), 409)
        assert conflict["type"] == "urn:dronedelivery:problem:assignment-released"


async def test_put_after_release_is_409_even_with_a_free_fleet(client: httpx.AsyncClient) -> None:
    body = delivery()
    await put(client, body)
    await client.delete(f"/api/dronedeliveries/{body['deliveryId']}")
    assert_problem(await put(client, body), 409)
    patch = {"pickup": place(47.61, -122.33)}
    path = f"/api/dronedeliveries/{body['deliveryId']}"
    assert_problem(await client.patch(path, json=patch), 409)


async def test_replan_recomputes_etas_with_the_same_drone(
    client: httpx.AsyncClient, database: AsyncDatabase[Document]
) -> None:
    body = delivery()
    first = (await put(client, body)).json()
    path = f"/api/dronedeliveries/{body['deliveryId']}"
    before = (await client.get(path)).json()

    farther = place(47.70, -122.30)
    response = await client.patch(path, json={"dropoff": farther})
    assert response.status_code == 200, response.text
    replanned = response.json()
    assert set(replanned) == {"deliveryId", "droneId", "pickupETA", "deliveryETA"}
    assert replanned["droneId"] == first["droneId"]
    assert replanned["pickupETA"] == first["pickupETA"]  # same pickup, same start
    assert when(replanned["deliveryETA"]) > when(first["deliveryETA"])

    after = (await client.get(path)).json()
    assert after["dropoff"] == farther
    assert after["assignedAt"] == before["assignedAt"]
    assert after["deliveryETA"] == replanned["deliveryETA"]
    assert when(after["busyUntil"]) > when(before["busyUntil"])
    assert after["routeMiles"] > before["routeMiles"]

    # The same re-plan again changes nothing (it is planned from the assignment time).
    assert (await client.patch(path, json={"dropoff": farther})).json() == replanned
    # A shorter route shortens the busy time.
    back = await client.patch(path, json={"dropoff": DROPOFF, "pickup": PICKUP})
    assert back.json()["deliveryETA"] == first["deliveryETA"]
    assert (await client.get(path)).json()["busyUntil"] == before["busyUntil"]
    # Each re-plan is a document of its own; the assignment document is never rewritten.
    assert await database["plans"].count_documents({"deliveryId": body["deliveryId"]}) == 2
    stored = await database["assignments"].find_one({"_id": body["deliveryId"]})
    assert stored is not None
    assert stored["dropoff"]["latitude"] == DROPOFF["latitude"]


async def test_replan_extends_the_drones_busy_time(mongo_url: str, mongo_database: str) -> None:
    quick = STANDARD.model_copy(update={"speed_mph": 5e4})
    settings = scheduler_settings(
        mongo_url, mongo_database, fleet(count=1, classes=[quick], stop_seconds=0.4)
    )
    async with running(settings) as client:
        body = delivery()
        assert (await put(client, body)).status_code == 201
        # A drop-off at the edge of the area: some 15 miles there and back, about a second at
        # these drones' speed.
        path = f"/api/dronedeliveries/{body['deliveryId']}"
        response = await client.patch(path, json={"dropoff": place(47.70, -122.40)})
        assert response.status_code == 200
        await asyncio.sleep(1.0)  # the original busy time (0.8 s) has passed
        busy = await put(client, delivery())
        assert_problem(busy, 503)
        # Back to a short route: the drone is free again at once.
        await client.patch(path, json={"dropoff": PICKUP})
        assert (await put(client, delivery())).status_code == 201


async def test_a_replan_keeps_to_the_area_and_the_longest_trip(
    mongo_url: str, mongo_database: str
) -> None:
    settings = scheduler_settings(
        mongo_url, mongo_database, fleet(count=1), service_area=area(max_trip_miles=12)
    )
    async with running(settings) as client:
        body = delivery()
        assert (await put(client, body)).status_code == 201
        path = f"/api/dronedeliveries/{body['deliveryId']}"
        outside = await client.patch(path, json={"dropoff": place(-47.6, 57.6)})
        assert assert_problem(outside, 422)["type"].endswith("outside-service-area")
        too_long = await client.patch(
            path, json={"pickup": place(47.70, -122.40), "dropoff": place(47.55, -122.27)}
        )
        assert assert_problem(too_long, 422)["type"].endswith("trip-too-long")
        # Nothing changed.
        assert (await client.get(path)).json()["dropoff"] == body["dropoff"]


async def test_replan_errors(client: httpx.AsyncClient) -> None:
    unknown = f"/api/dronedeliveries/{uuid.uuid4()}"
    assert_problem(await client.patch(unknown, json={"pickup": PICKUP}), 404)
    body = delivery()
    await put(client, body)
    path = f"/api/dronedeliveries/{body['deliveryId']}"
    problem = assert_problem(await client.patch(path, json={}), 400)
    assert problem["errors"][0]["message"] == "give pickup, dropoff or both"
    bad = assert_problem(await client.patch(path, json={"pickup": {"latitude": 100}}), 400)
    assert {error["field"] for error in bad["errors"]} == {"pickup.latitude", "pickup.longitude"}
    assert_problem(
        await client.patch(path, content=b"{", headers={"content-type": "application/json"}), 400
    )
    # Nothing given that differs: the assignment as it is.
    same = await client.patch(path, json={"pickup": PICKUP})
    assert same.status_code == 200
