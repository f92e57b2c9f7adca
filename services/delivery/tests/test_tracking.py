"""Status, ETAs and history follow the delivery's real state and move with the clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from delivery.tracking import interpolate
from dronecommon.domain import Location, distance_miles, format_utc
from dronetesting.apps import app_client

from .conftest import START, Clock

JSON = dict[str, Any]
BASE = "/api/deliveries"
PICKUP = {"latitude": 47.60, "longitude": -122.33, "altitude": 0.0}
DROPOFF = {"latitude": 47.70, "longitude": -122.20, "altitude": 100.0}


def iso(minutes: float) -> str:
    return format_utc(START + dt.timedelta(minutes=minutes))


@pytest.fixture
async def timed_client(
    make_app: Callable[..., Any], clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_app(clock=clock)) as client:
        yield client


def body(delivery_id: str, new_delivery: Callable[..., JSON], **changes: Any) -> JSON:
    return new_delivery(delivery_id, pickup=PICKUP, dropoff=DROPOFF, **changes)


async def status_of(client: httpx.AsyncClient, delivery_id: str) -> JSON:
    response = await client.get(f"{BASE}/{delivery_id}/status")
    assert response.status_code == 200
    result: JSON = response.json()
    return result


async def test_without_drone_timing_etas_are_estimated_from_the_distance(
    timed_client: httpx.AsyncClient, clock: Clock, new_delivery: Callable[..., JSON]
) -> None:
    await timed_client.put(f"{BASE}/t-1", json=body("t-1", new_delivery))
    miles = distance_miles(Location.model_validate(PICKUP), Location.model_validate(DROPOFF))
    flight_minutes = miles / 30.0 * 60  # the default estimate speed, 30 mph
    expected = {
        "stage": "Created",
        "lastKnownLocation": PICKUP,
        "pickupETA": iso(10),  # the default dispatch allowance
        "deliveryETA": iso(10 + flight_minutes),
        "telemetry": "none",  # no drone reported (the live fields: test_live.py)
        "drone": None,
    }
    assert await status_of(timed_client, "t-1") == expected
    clock.at(minutes=500)  # estimates do not drift with the clock, the stage waits for a drone
    assert await status_of(timed_client, "t-1") == expected

    # A reschedule restarts the estimate from its own time.
    await timed_client.patch(f"{BASE}/t-1", json={"deadline": "later"})
    status = await status_of(timed_client, "t-1")
    assert status["stage"] == "Rescheduled"
    assert status["pickupETA"] == iso(510)
    assert status["deliveryETA"] == iso(510 + flight_minutes)


async def test_estimates_follow_the_configured_speed(
    make_app: Callable[..., Any], clock: Clock, new_delivery: Callable[..., JSON]
) -> None:
    app = make_app(clock=clock, estimate_speed_mph=60, estimate_dispatch_minutes=0)
    async with app_client(app) as client:
        await client.put(f"{BASE}/t-2", json=body("t-2", new_delivery))
        status = await status_of(client, "t-2")
    miles = distance_miles(Location.model_validate(PICKUP), Location.model_validate(DROPOFF))
    assert status["pickupETA"] == iso(0)
    assert status["deliveryETA"] == iso(miles)  # a mile a minute


async def test_stage_and_location_move_with_the_drone_timing(
    timed_client: httpx.AsyncClient, clock: Clock, new_delivery: Callable[..., JSON]
) -> None:
    timing = {"pickupETA": iso(10), "deliveryETA": iso(30)}
    await timed_client.put(f"{BASE}/t-3", json=body("t-3", new_delivery, **timing))

    seen = []
    for minute in (0, 9.99, 10, 15, 20, 25, 30, 90):
        clock.at(minutes=minute)
        status = await status_of(timed_client, "t-3")
        assert (status["pickupETA"], status["deliveryETA"]) == (iso(10), iso(30))
        seen.append((status["stage"], status["lastKnownLocation"]))

    stages = [stage for stage, _ in seen]
    assert stages == ["HeadedToPickup"] * 2 + ["HeadedToDropoff"] * 6  # until confirmed
    assert [location for _, location in seen[:3]] == [PICKUP] * 3
    assert seen[-2][1] == seen[-1][1] == DROPOFF
    # In flight the package moves monotonically from pickup towards drop-off.
    latitudes = [location["latitude"] for _, location in seen[2:7]]
    assert latitudes == sorted(latitudes)
    assert len(set(latitudes)) == 5
    middle = seen[4][1]
    assert middle["altitude"] == pytest.approx(50.0)
    assert middle["latitude"] == pytest.approx(47.65, abs=1e-3)
    assert middle["longitude"] == pytest.approx(-122.265, abs=1e-3)

    # The delivery resource shows the same stage.
    clock.at(minutes=15)
    assert (await timed_client.get(f"{BASE}/t-3")).json()["stage"] == "HeadedToDropoff"
    assert (await timed_client.get(f"{BASE}/public/t-3")).json()["stage"] == "HeadedToDropoff"


async def test_etas_in_the_past_and_future_without_a_fake_clock(
    client: httpx.AsyncClient, new_delivery: Callable[..., JSON]
) -> None:
    now = dt.datetime.now(dt.UTC)
    cases = {
        "future": (now + dt.timedelta(hours=1), now + dt.timedelta(hours=2), "HeadedToPickup"),
        "flying": (now - dt.timedelta(hours=1), now + dt.timedelta(hours=1), "HeadedToDropoff"),
        "past": (now - dt.timedelta(hours=2), now - dt.timedelta(hours=1), "HeadedToDropoff"),
    }
    for name, (pickup_eta, delivery_eta, _) in cases.items():
        timing = {"pickupETA": format_utc(pickup_eta), "deliveryETA": format_utc(delivery_eta)}
        await client.put(f"{BASE}/{name}", json=body(name, new_delivery, **timing))
    future, flying, past = [await status_of(client, name) for name in cases]
    assert [future["stage"], flying["stage"], past["stage"]] == [case[2] for case in cases.values()]
    assert future["lastKnownLocation"] == PICKUP
    assert past["lastKnownLocation"] == DROPOFF
    assert PICKUP["latitude"] < flying["lastKnownLocation"]["latitude"] < DROPOFF["latitude"]


async def test_cancelled_in_flight_stays_where_it_was(
    timed_client: httpx.AsyncClient, clock: Clock, new_delivery: Callable[..., JSON]
) -> None:
    timing = {"pickupETA": iso(10), "deliveryETA": iso(30)}
    await timed_client.put(f"{BASE}/t-4", json=body("t-4", new_delivery, **timing))
    clock.at(minutes=20)
    in_flight = (await status_of(timed_client, "t-4"))["lastKnownLocation"]
    assert (await timed_client.delete(f"{BASE}/t-4")).status_code == 204
    clock.at(minutes=60)
    status = await status_of(timed_client, "t-4")
    assert status == {
        "stage": "Cancelled",
        "lastKnownLocation": in_flight,
        "pickupETA": iso(10),
        "deliveryETA": iso(30),
        "telemetry": "none",
        "drone": None,
    }
    history = (await timed_client.get(f"{BASE}/t-4/history")).json()
    assert history[-1] == {"at": iso(20), "stage": "Cancelled", "location": in_flight}


async def test_history_is_oldest_first_with_the_passages_the_clock_implies(
    timed_client: httpx.AsyncClient, clock: Clock, new_delivery: Callable[..., JSON]
) -> None:
    timing = {"pickupETA": iso(10), "deliveryETA": iso(30)}
    await timed_client.put(f"{BASE}/t-5", json=body("t-5", new_delivery, **timing))

    async def history() -> list[JSON]:
        response = await timed_client.get(f"{BASE}/t-5/history")
        assert response.status_code == 200
        events: list[JSON] = response.json()
        return events

    assert [(e["at"], e["stage"]) for e in await history()] == [
        (iso(0), "Created"),
        (iso(0), "HeadedToPickup"),
    ]
    clock.at(minutes=5)  # a reschedule before pickup, no drone timing yet
    await timed_client.patch(f"{BASE}/t-5", json={"pickup": DROPOFF, "dropoff": PICKUP})
    clock.at(minutes=12)  # the drone scheduler's new plan
    await timed_client.patch(f"{BASE}/t-5", json={"pickupETA": iso(14), "deliveryETA": iso(40)})
    clock.at(minutes=20)
    confirmation = {
        "dateTime": iso(20),
        "geoCoordinates": PICKUP,
        "confirmationType": "None",
    }
    clock.at(minutes=41)
    assert (
        await timed_client.post(f"{BASE}/t-5/confirmations", json=confirmation)
    ).status_code == 204
    clock.at(minutes=90)
    events = await history()
    assert [(e["at"], e["stage"]) for e in events] == [
        (iso(0), "Created"),
        (iso(0), "HeadedToPickup"),
        (iso(5), "Rescheduled"),
        (iso(12), "Rescheduled"),
        (iso(12), "HeadedToPickup"),
        (iso(14), "HeadedToDropoff"),
        (iso(41), "Completed"),
    ]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert events[2]["location"] == DROPOFF  # the new pickup
    assert events[-1]["location"] == PICKUP  # where the confirmation was made
    assert (await status_of(timed_client, "t-5"))["stage"] == events[-1]["stage"]


def test_interpolation_follows_the_great_circle() -> None:
    a = Location(latitude=0, longitude=0, altitude=0)
    b = Location(latitude=10, longitude=0, altitude=20)
    assert interpolate(a, b, 0) == a
    assert interpolate(a, b, 1) == b
    middle = interpolate(a, b, 0.5)
    assert (middle.latitude, middle.longitude, middle.altitude) == (5.0, 0.0, 10.0)
    # Across the antimeridian the short way round, not through Greenwich.
    east = Location(latitude=0, longitude=179, altitude=0)
    west = Location(latitude=0, longitude=-179, altitude=0)
    assert abs(interpolate(east, west, 0.5).longitude) == 180.0
    # The same point stays put.
    assert interpolate(a, a, 0.3) == Location(latitude=0, longitude=0, altitude=0)
