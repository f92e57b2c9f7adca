"""PUT /api/dronedeliveries/{deliveryId}: assignment, replay, payload limits, busy fleet."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import uuid
from collections import Counter

import httpx

from dronecommon.domain import Location, distance_miles
from dronescheduler.settings import DroneSchedulerSettings
from dronetesting.problems import assert_problem

from .conftest import (
    DOWNTOWN,
    DROPOFF,
    HEAVY,
    LIGHT,
    NORTHGATE,
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


def _location(point: dict[str, float]) -> Location:
    return Location(latitude=point["latitude"], longitude=point["longitude"])


async def test_assigns_a_drone_with_real_etas(client: httpx.AsyncClient) -> None:
    body = delivery()
    before = dt.datetime.now(dt.UTC)
    response = await put(client, body)
    after = dt.datetime.now(dt.UTC)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"deliveryId", "droneId", "pickupETA", "deliveryETA"}
    assert answer["deliveryId"] == body["deliveryId"]
    assert answer["droneId"].startswith("downtown-standard-")
    assert answer["pickupETA"].endswith("Z")

    # ETAs: base → pickup, then pickup → drop-off, at 40 mph, with a 60 s stop at the pickup.
    base = Location(latitude=DOWNTOWN.latitude, longitude=DOWNTOWN.longitude)
    to_pickup = dt.timedelta(hours=distance_miles(base, _location(PICKUP)) / 40)
    to_dropoff = dt.timedelta(hours=distance_miles(_location(PICKUP), _location(DROPOFF)) / 40)
    pickup_eta, delivery_eta = when(answer["pickupETA"]), when(answer["deliveryETA"])
    slack = dt.timedelta(milliseconds=2)
    assert before + to_pickup - slack <= pickup_eta <= after + to_pickup + slack
    expected_leg = to_dropoff + dt.timedelta(seconds=60)
    assert abs((delivery_eta - pickup_eta) - expected_leg) < slack

    record = (await client.get(f"/api/dronedeliveries/{body['deliveryId']}")).json()
    back = dt.timedelta(hours=distance_miles(_location(DROPOFF), base) / 40)
    busy_until = when(record["busyUntil"])
    assert abs(busy_until - (delivery_eta + dt.timedelta(seconds=60) + back)) < slack
    assert record["status"] == "Assigned"
    assert record["packageDetail"] == {"id": "mypackage", "size": "Small", "weight": 10.0}


async def test_expedited_flies_faster(client: httpx.AsyncClient) -> None:
    far = place(47.70, -122.40)
    normal = (await put(client, delivery(pickup=far))).json()
    fast = (await put(client, delivery(pickup=far, expedited=True))).json()
    normal_start = (await client.get(f"/api/dronedeliveries/{normal['deliveryId']}")).json()
    fast_start = (await client.get(f"/api/dronedeliveries/{fast['deliveryId']}")).json()
    normal_flight = when(normal["pickupETA"]) - when(normal_start["assignedAt"])
    fast_flight = when(fast["pickupETA"]) - when(fast_start["assignedAt"])
    assert math.isclose(normal_flight / fast_flight, 1.25, rel_tol=1e-3), (
        f"{normal_flight} vs {fast_flight}"
    )
    assert fast_start["speedMph"] == 50.0


async def test_replay_answers_200_with_the_same_body(client: httpx.AsyncClient) -> None:
    body = delivery()
    first = await put(client, body)
    assert first.status_code == 201
    again = await put(client, body)
    assert again.status_code == 200
    assert again.json() == first.json()
    # A replay needs no free drone: the fleet being busy does not turn it into a 503.
    for _ in range(19):
        assert (await put(client, delivery())).status_code == 201
    assert_problem(await put(client, delivery()), 503)
    assert (await put(client, body)).json() == first.json()


async def test_concurrent_duplicates_get_one_drone(client: httpx.AsyncClient) -> None:
    body = delivery()
    answers = await asyncio.gather(*(put(client, body) for _ in range(10)))
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {201: 1, 200: 9}
    assert len({answer.json()["droneId"] for answer in answers}) == 1
    # Exactly one drone was used: the other 19 are still free.
    others = await asyncio.gather(*(put(client, delivery()) for _ in range(20)))
    assert Counter(answer.status_code for answer in others) == {201: 19, 503: 1}


async def test_fifty_concurrent_requests_over_twenty_drones(client: httpx.AsyncClient) -> None:
    bodies = [delivery() for _ in range(50)]
    answers = await asyncio.gather(*(put(client, body) for body in bodies))
    won = [answer for answer in answers if answer.status_code == 201]
    busy = [answer for answer in answers if answer.status_code != 201]
    assert len(won) == 20
    assert len({answer.json()["droneId"] for answer in won}) == 20
    assert len(busy) == 30
    for answer in busy:
        problem = assert_problem(answer, 503)
        assert problem["type"] == "urn:dronedelivery:problem:no-drone-available"
        assert 1 <= int(answer.headers["retry-after"]) <= 300

    # Release every assigned drone: new deliveries get drones again.
    releases = await asyncio.gather(
        *(client.delete(f"/api/dronedeliveries/{a.json()['deliveryId']}") for a in won)
    )
    assert {release.status_code for release in releases} == {204}
    again = await asyncio.gather(*(put(client, delivery()) for _ in range(25)))
    assert Counter(answer.status_code for answer in again) == {201: 20, 503: 5}
    assert len({a.json()["droneId"] for a in again if a.status_code == 201}) == 20


async def test_retry_after_is_the_time_until_the_soonest_drone_is_back(
    mongo_url: str, mongo_database: str
) -> None:
    settings = scheduler_settings(mongo_url, mongo_database, fleet(count=2, retry_after_max=3600))
    async with running(settings) as client:
        near = await put(client, delivery(pickup=PICKUP, dropoff=DROPOFF))
        far = await put(client, delivery(pickup=place(47.70, -122.40), dropoff=DROPOFF))
        assert {near.status_code, far.status_code} == {201}
        busy = await put(client, delivery())
        assert_problem(busy, 503)
        record = (await client.get(f"/api/dronedeliveries/{near.json()['deliveryId']}")).json()
        back_in = (when(record["busyUntil"]) - dt.datetime.now(dt.UTC)).total_seconds()
        assert abs(int(busy.headers["retry-after"]) - math.ceil(back_in)) <= 1

    capped = scheduler_settings(mongo_url, mongo_database + "c", fleet(count=1, retry_after_max=5))
    async with running(capped) as client:
        assert (await put(client, delivery(pickup=place(47.70, -122.40)))).status_code == 201
        assert (await put(client, delivery())).headers["retry-after"] == "5"


async def test_capacity_frees_itself_when_busy_time_ends(
    mongo_url: str, mongo_database: str
) -> None:
    # Drones that fly (almost) instantly and stop 0.5 s at each end: busy about one second.
    quick = STANDARD.model_copy(update={"speed_mph": 1e7})
    settings = scheduler_settings(
        mongo_url, mongo_database, fleet(count=3, classes=[quick], stop_seconds=0.5)
    )
    async with running(settings) as client:
        first = await asyncio.gather(*(put(client, delivery()) for _ in range(3)))
        assert {answer.status_code for answer in first} == {201}
        busy = await put(client, delivery())
        assert_problem(busy, 503)
        assert busy.headers["retry-after"] == "1"
        await asyncio.sleep(1.1)
        later = await asyncio.gather(*(put(client, delivery()) for _ in range(3)))
        assert {answer.status_code for answer in later} == {201}
        assert {a.json()["droneId"] for a in later} == {a.json()["droneId"] for a in first}


async def test_nearest_base_first_then_the_next_nearest(
    mongo_url: str, mongo_database: str
) -> None:
    settings = scheduler_settings(
        mongo_url, mongo_database, fleet(count=4), bases=[DOWNTOWN, NORTHGATE]
    )
    north = place(47.70, -122.33)
    south = place(47.60, -122.33)
    async with running(settings) as client:
        answers = [(await put(client, delivery(pickup=north))).json() for _ in range(3)]
        bases = [answer["droneId"].split("-")[0] for answer in answers]
        assert bases == ["northgate", "northgate", "downtown"]
        assert (await put(client, delivery(pickup=south))).json()["droneId"].startswith("downtown-")
        assert_problem(await put(client, delivery(pickup=south)), 503)


async def test_payload_limits_pick_a_capable_drone(mongo_url: str, mongo_database: str) -> None:
    settings = scheduler_settings(mongo_url, mongo_database, fleet(count=4, classes=[LIGHT, HEAVY]))
    async with running(settings) as client:
        # The least capable class that carries the package is used first.
        light = await put(client, delivery(size="Small", weight=4))
        assert light.json()["droneId"].startswith("downtown-light-")
        heavy = await put(client, delivery(size="Large", weight=80))
        assert heavy.json()["droneId"].startswith("downtown-heavy-")
        small_but_heavy = await put(client, delivery(size="Small", weight=10))
        assert small_but_heavy.json()["droneId"].startswith("downtown-heavy-")
        # Both heavy drones are out: a heavy package waits even though a light drone is free.
        busy = await put(client, delivery(size="Medium", weight=6))
        assert_problem(busy, 503)
        assert (await put(client, delivery(size="Small", weight=2))).status_code == 201


async def test_package_no_drone_can_carry_is_422(mongo_url: str, mongo_database: str) -> None:
    settings = scheduler_settings(mongo_url, mongo_database, fleet(count=2, classes=[LIGHT]))
    async with running(settings) as client:
        for size, weight in (("Small", 6), ("Medium", 1), ("Large", 100)):
            problem = assert_problem(await put(client, delivery(size=size, weight=weight)), 422)
            assert problem["type"] == "urn:dronedelivery:problem:no-capable-drone"


async def test_the_sample_package_fits_the_default_fleet(
    mongo_url: str, mongo_database: str
) -> None:
    settings = DroneSchedulerSettings.model_validate(
        {
            "mongo": {"url": mongo_url, "database": mongo_database},
            "fleet": {"count": 60},
            "log_json": False,
            "auth": {"enabled": False},
        }
    )
    async with running(settings) as client:
        response = await put(client, delivery(size="Small", weight=10))
        assert response.status_code == 201
        assert "-standard-" in response.json()["droneId"]


# --- the service area ---------------------------------------------------------------------------


async def test_places_outside_the_area_are_422(client: httpx.AsyncClient) -> None:
    for body in (delivery(pickup=place(-47.6, 57.7)), delivery(dropoff=place(47.25, -122.44))):
        problem = assert_problem(await put(client, body), 422)
        assert problem["type"].endswith("outside-service-area")
        assert "miles from the nearest drone base" in problem["detail"]


async def test_no_drone_flies_beyond_the_longest_trip(mongo_url: str, mongo_database: str) -> None:
    settings = scheduler_settings(
        mongo_url,
        mongo_database,
        fleet(count=2),
        bases=[DOWNTOWN, NORTHGATE],
        service_area=area([DOWNTOWN, NORTHGATE], max_trip_miles=8),
    )
    north = place(47.70, -122.33)
    async with running(settings) as client:
        # No base could fly this one: refused at once, not queued behind busy drones.
        far = await put(client, delivery(pickup=north, dropoff=place(47.56, -122.33)))
        problem = assert_problem(far, 422)
        assert problem["type"].endswith("trip-too-long")
        assert "8 miles" in problem["detail"]
        # Only northgate is near enough for a trip around the north: its one drone takes it...
        near = delivery(pickup=north, dropoff=place(47.71, -122.32))
        assert (await put(client, near)).json()["droneId"].startswith("northgate-")
        # ... and with it busy, downtown's free drone may not fly so far: no drone available.
        busy = await put(client, delivery(pickup=north, dropoff=place(47.71, -122.32)))
        assert_problem(busy, 503)


# --- invalid requests ---------------------------------------------------------------------------


def _fields(response: httpx.Response) -> set[str]:
    problem = assert_problem(response, 400)
    assert problem["type"] == "urn:dronedelivery:problem:validation-error"
    return {error["field"] for error in problem["errors"]}


async def test_invalid_bodies_are_400_naming_the_field(client: httpx.AsyncClient) -> None:
    delivery_id = str(uuid.uuid4())
    path = f"/api/dronedeliveries/{delivery_id}"

    async def fields(**changes: object) -> set[str]:
        body = delivery(delivery_id)
        for key, value in changes.items():
            if value is None:
                body.pop(key)
            else:
                body[key] = value
        return _fields(await client.put(path, json=body))

    assert await fields(packageDetail={"id": "p", "size": "Huge", "weight": 1}) == {
        "packageDetail.size"
    }
    assert await fields(packageDetail={"id": "p", "size": "Small", "weight": 0}) == {
        "packageDetail.weight"
    }
    assert await fields(packageDetail={"id": "p", "size": "Small", "weight": 100.5}) == {
        "packageDetail.weight"
    }
    assert await fields(pickup={"latitude": 91, "longitude": 0}) == {"pickup.latitude"}
    assert await fields(dropoff={"latitude": 0, "longitude": -181}) == {"dropoff.longitude"}
    assert await fields(ownerId="") == {"ownerId"}
    assert await fields(ownerId=None) == {"ownerId"}
    assert await fields(pickup=None, dropoff=None) == {"pickup", "dropoff"}
    assert await fields(expedited="maybe") == {"expedited"}
    # The body's id must be the path's.
    assert await fields(deliveryId="someone-else") == {"deliveryId"}
    # Enum values match whatever their case.
    body = delivery(delivery_id, size="sMaLL")
    assert (await client.put(path, json=body)).status_code == 201


async def test_malformed_requests(client: httpx.AsyncClient) -> None:
    path = f"/api/dronedeliveries/{uuid.uuid4()}"
    headers = {"content-type": "application/json"}
    problem = assert_problem(await client.put(path, content=b"{not json", headers=headers), 400)
    assert problem["errors"][0]["field"] == "body"
    assert _fields(await client.put(path, content=b"[]", headers=headers)) == {"body"}
    assert_problem(
        await client.put(path, content=b"x=1", headers={"content-type": "text/plain"}), 415
    )
    assert_problem(await client.put(path, content=b"{}" + b" " * 70_000, headers=headers), 413)
    assert _fields(await client.put("/api/dronedeliveries/bad%20id", json=delivery("bad id"))) == {
        "deliveryId"
    }
    too_long = "d" * 129
    assert _fields(await client.put(f"/api/dronedeliveries/{too_long}", json=delivery(too_long)))
    assert_problem(await client.post(path, json=delivery()), 405)
    assert_problem(await client.get("/api/nowhere"), 404)
    # A charset and +json types are JSON.
    body = delivery()
    charset = await client.put(
        f"/api/dronedeliveries/{body['deliveryId']}",
        content=httpx.Request("PUT", "/", json=body).content,
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 201
