"""GET /api/drones/{droneId} (what a flight needs), and the self-release margin: a drone is freed
by its release when it is back at its base; its computed busy time is only the fallback."""

from __future__ import annotations

import datetime as dt

import httpx

from dronetesting.problems import assert_problem

from .conftest import DOWNTOWN, STANDARD, delivery, fleet, put, running, scheduler_settings, when


async def test_a_drone_is_described_for_its_flight(client: httpx.AsyncClient) -> None:
    answer = (await put(client, delivery())).json()
    response = await client.get(f"/api/drones/{answer['droneId']}")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "droneId": answer["droneId"],
        "base": {
            "name": "downtown",
            "location": {
                "latitude": DOWNTOWN.latitude,
                "longitude": DOWNTOWN.longitude,
                "altitude": 0.0,
            },
        },
        "droneClass": "standard",
        "maxSize": "Medium",
        "maxWeight": 25.0,
        "speedMph": STANDARD.speed_mph,
        "expeditedSpeedMph": STANDARD.speed_mph * 1.25,
        "cruiseAltitude": 120.0,
    }
    assert "No drone" in assert_problem(await client.get("/api/drones/nowhere-01"), 404)["detail"]
    assert_problem(await client.get("/api/drones/Not_An_Id"), 400)


async def test_without_a_release_a_drone_frees_itself_only_after_the_margin(
    mongo_url: str, mongo_database: str
) -> None:
    margin = fleet(
        count=1, self_release_factor=1.0, self_release_seconds=60, retry_after_max=100_000
    )
    async with running(scheduler_settings(mongo_url, mongo_database, margin)) as client:
        first = delivery()
        await put(client, first)
        record = (await client.get(f"/api/dronedeliveries/{first['deliveryId']}")).json()
        trip = when(record["busyUntil"]) - when(record["assignedAt"])
        busy = assert_problem(await put(client, delivery()), 503)
        assert "busy" in busy["detail"]
        response = await put(client, delivery())
        wait = int(response.headers["Retry-After"])
        # Back by busyUntil as planned, but only free by itself a whole trip and a minute later.
        now = dt.datetime.now(dt.UTC)
        free_at = when(record["busyUntil"]) + trip + dt.timedelta(seconds=60)
        assert abs(wait - (free_at - now).total_seconds()) <= 2
        assert record["busyUntil"] < free_at.isoformat()


async def test_the_release_at_the_end_of_the_flight_frees_the_drone_at_once(
    mongo_url: str, mongo_database: str
) -> None:
    margin = fleet(count=1, self_release_factor=0.5, self_release_seconds=300)
    async with running(scheduler_settings(mongo_url, mongo_database, margin)) as client:
        first = delivery()
        drone = (await put(client, first)).json()["droneId"]
        assert_problem(await put(client, delivery()), 503)
        released = await client.delete(f"/api/dronedeliveries/{first['deliveryId']}")
        assert released.status_code == 204
        record = (await client.get(f"/api/dronedeliveries/{first['deliveryId']}")).json()
        assert record["status"] == "Released"
        assert when(record["releasedAt"]) <= dt.datetime.now(dt.UTC)
        second = await put(client, delivery())
        assert second.status_code == 201
        assert second.json()["droneId"] == drone
        # The first delivery's release is final and does not touch the drone's new trip.
        again = await client.delete(f"/api/dronedeliveries/{first['deliveryId']}")
        assert again.status_code == 204
        assert_problem(await put(client, delivery()), 503)
        replan = await client.patch(
            f"/api/dronedeliveries/{first['deliveryId']}",
            json={"dropoff": {"latitude": 47.6, "longitude": -122.3, "altitude": 0}},
        )
        assert_problem(replan, 409)
