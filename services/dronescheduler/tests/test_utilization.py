"""GET /api/dronedeliveries/utilization: miles and hours summed from the recorded assignments."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from dronecommon.domain import Location, distance_miles
from dronetesting.problems import assert_problem

from .conftest import DOWNTOWN, delivery, place, put, when

Document = dict[str, Any]
URL = "/api/dronedeliveries/utilization"
BASE = Location(latitude=DOWNTOWN.latitude, longitude=DOWNTOWN.longitude)


def _route(pickup: dict[str, float], dropoff: dict[str, float]) -> float:
    a, b = Location(**pickup), Location(**dropoff)
    return distance_miles(BASE, a) + distance_miles(a, b) + distance_miles(b, BASE)


async def _hours(client: httpx.AsyncClient, delivery_id: str) -> float:
    record = (await client.get(f"/api/dronedeliveries/{delivery_id}")).json()
    end = when(record["releasedAt"] or record["busyUntil"])
    return (end - when(record["assignedAt"])).total_seconds() / 3600


async def test_sums_the_owners_assignments_of_the_month(
    client: httpx.AsyncClient, database: AsyncDatabase[Document]
) -> None:
    trips = [
        (place(47.61, -122.34), place(47.65, -122.30)),
        (place(47.58, -122.31), place(47.70, -122.35)),
        (place(47.62, -122.40), place(47.52, -122.25)),
    ]
    ids = []
    for pickup, dropoff in trips:
        body = delivery(owner="counted", pickup=pickup, dropoff=dropoff)
        assert (await put(client, body)).status_code == 201
        ids.append(body["deliveryId"])
    await put(client, delivery(owner="someone-else"))
    now = dt.datetime.now(dt.UTC)

    response = await client.get(
        URL, params={"ownerId": "counted", "year": now.year, "month": now.month}
    )
    assert response.status_code == 200, response.text
    usage = response.json()
    assert set(usage) == {"traveledMiles", "assignedHours"}
    expected_miles = sum(_route(*trip) for trip in trips)
    expected_hours = sum([await _hours(client, delivery_id) for delivery_id in ids])
    assert math.isclose(usage["traveledMiles"], expected_miles, abs_tol=0.002)
    assert math.isclose(usage["assignedHours"], expected_hours, abs_tol=0.0002)
    # Each trip is some miles at 40 mph plus two one-minute stops.
    assert math.isclose(expected_hours, expected_miles / 40 + 3 * 2 / 60, abs_tol=0.001)

    # A release cuts the hours (and the miles, in proportion) to the time actually assigned.
    await client.delete(f"/api/dronedeliveries/{ids[2]}")
    after = (
        await client.get(URL, params={"ownerId": "counted", "year": now.year, "month": now.month})
    ).json()
    kept = sum(_route(*trip) for trip in trips[:2])
    assert kept - 0.01 < after["traveledMiles"] < kept + 0.05
    kept_hours = sum([await _hours(client, delivery_id) for delivery_id in ids])
    assert math.isclose(after["assignedHours"], kept_hours, abs_tol=0.0002)

    # Only assignments made in that UTC month count.
    previous = await database["assignments"].find_one({"_id": ids[0]})
    assert previous is not None
    previous["_id"] = "in-another-month"
    start = dt.datetime(2021, 3, 31, 23, 30, tzinfo=dt.UTC)
    previous["assignedAt"] = start
    previous["busyUntil"] = start + dt.timedelta(hours=2)
    await database["assignments"].insert_one(previous)
    march = await client.get(URL, params={"ownerId": "counted", "year": 2021, "month": 3})
    assert march.json()["assignedHours"] == 2.0
    assert math.isclose(march.json()["traveledMiles"], _route(*trips[0]), abs_tol=0.002)
    assert_problem(
        await client.get(URL, params={"ownerId": "counted", "year": 2021, "month": 4}), 404
    )


async def test_no_assignment_is_404(client: httpx.AsyncClient) -> None:
    problem = assert_problem(
        await client.get(URL, params={"ownerId": "nobody", "year": 2024, "month": 5}), 404
    )
    assert "nobody" in problem["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"year": 2024, "month": 5}, "ownerId"),
        ({"ownerId": "", "year": 2024, "month": 5}, "ownerId"),
        ({"ownerId": "o", "month": 5}, "year"),
        ({"ownerId": "o", "year": 0, "month": 5}, "year"),
        ({"ownerId": "o", "year": 10000, "month": 5}, "year"),
        ({"ownerId": "o", "year": 2024}, "month"),
        ({"ownerId": "o", "year": 2024, "month": 0}, "month"),
        ({"ownerId": "o", "year": 2024, "month": 13}, "month"),
        ({"ownerId": "o", "year": "x", "month": 5}, "year"),
    ],
)
async def test_bad_parameters_are_400(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    problem = assert_problem(await client.get(URL, params=params), 400)
    assert [error["field"] for error in problem["errors"]] == [field]
