"""The live status: fixes published on the real stream (as the simulator publishes them) reach
the delivery through the app's own consumer, on real Redis.

Status live / stale / none with the ETAs recomputed from the fix, the drone's phases in the
history and ``PickedUp`` once, a reschedule in flight, Completed with telemetry, a stored
tracking state that does not parse. The consumer's own rules: ``test_consumer.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from redis.asyncio import Redis

from dronecommon.domain import format_utc
from dronecommon.events import EventType, PickedUpData, read_range
from dronecommon.fixes import Phase

from .conftest import (
    BASE,
    DROPOFF,
    HOME,
    PICKUP,
    PLAN,
    Clock,
    Fleet,
    Flying,
    create,
    get,
    loc,
    miles,
    t,
)


async def listed_status(client: httpx.AsyncClient, delivery_id: str) -> dict[str, Any]:
    """The status the owner's list (``GET /api/deliveries``) shows for ``delivery_id``."""
    page = await get(client, "?ownerId=owner-1")
    item = next(item for item in page["items"] if item["id"] == delivery_id)
    assert (item["drone"], item["telemetry"]) == (
        item["status"]["drone"],
        item["status"]["telemetry"],
    )
    found: dict[str, Any] = item["status"]
    return found


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def close_to(text: str, expected: dt.datetime) -> bool:
    return abs((when(text) - expected).total_seconds()) < 0.002


async def test_a_fix_makes_the_status_live_then_stale(
    flying: Flying,
    clock: Clock,
    fleet: Fleet,
) -> None:
    async with flying() as client:
        await create(client, "l-1")
        before = await get(client, "/l-1/status")
        assert (before["telemetry"], before["drone"]) == ("none", None)

        await fleet.publish(fleet.fix("l-1", t(5), Phase.TO_PICKUP, *HOME, speed_mph=40))
        clock.at(10)
        status = await get(client, "/l-1/status")
        assert status["telemetry"] == "live"
        assert status["stage"] == "HeadedToPickup"
        assert status["lastKnownLocation"] == PICKUP  # the package waits at the pickup
        assert status["drone"] == {
            "location": {"latitude": HOME[0], "longitude": HOME[1], "altitude": 100.0},
            "at": format_utc(t(5)),
            "phase": "ToPickup",
            "speedMph": 40.0,
            "droneId": "drone-7",
        }
        # The remaining path through the pickup at the drone's speed, plus the handling time.
        pickup_eta = t(5) + dt.timedelta(hours=miles(HOME, PICKUP) / 40)
        delivery_eta = (
            pickup_eta + dt.timedelta(seconds=60) + dt.timedelta(hours=miles(PICKUP, DROPOFF) / 40)
        )
        assert close_to(status["pickupETA"], pickup_eta)
        assert close_to(status["deliveryETA"], delivery_eta)
        assert status["pickupETA"] != PLAN["pickupETA"]

        # The owner's views carry the drone's id; the public one does not.
        full = await get(client, "/l-1")
        assert full["drone"] == status["drone"]
        assert full["telemetry"] == "live"
        public = await get(client, "/public/l-1")
        assert public["drone"] == {k: v for k, v in status["drone"].items() if k != "droneId"}
        assert public["telemetry"] == "live"
        # The owner's list answers the same status, from the drone's report too.
        assert await listed_status(client, "l-1") == status

        clock.at(5 + 30)  # the staleness limit: still live
        assert (await get(client, "/l-1/status"))["telemetry"] == "live"
        clock.at(5 + 30.5)
        stale = await get(client, "/l-1/status")
        assert stale["telemetry"] == "stale"
        assert (stale["pickupETA"], stale["deliveryETA"]) == (
            PLAN["pickupETA"],
            PLAN["deliveryETA"],
        )
        assert stale["drone"] == status["drone"]  # the latest fix is still the latest known
        assert stale["stage"] == "HeadedToPickup"
        assert await listed_status(client, "l-1") == stale


async def test_phases_become_history_and_pickedup_is_emitted_once(
    flying: Flying,
    clock: Clock,
    fleet: Fleet,
    redis: Redis,
) -> None:
    middle = (47.65, -122.265)
    async with flying() as client:
        await create(client, "l-2")
        fix = fleet.fix
        # Late: still flying to the pickup after the plan's pickupETA (10 min).
        await fleet.publish(
            fix("l-2", t(5), Phase.TO_PICKUP, *HOME),
            fix("l-2", t(660), Phase.TO_PICKUP, 47.58, -122.33),
        )
        clock.at(661)
        status = await get(client, "/l-2/status")
        assert status["stage"] == "HeadedToPickup"  # the drone says so, whatever the clock
        stages = [e["stage"] for e in await get(client, "/l-2/history")]
        assert "HeadedToDropoff" not in stages

        await fleet.publish(
            fix("l-2", t(720), Phase.AT_PICKUP, 47.60, -122.33, speed_mph=0),
            fix("l-2", t(750), Phase.AT_PICKUP, 47.60, -122.33, speed_mph=0),
            fix("l-2", t(780), Phase.TO_DROPOFF, 47.60, -122.33, speed_mph=50),
        )
        await fleet.publish(fix("l-2", t(900), Phase.TO_DROPOFF, *middle, speed_mph=50))
        clock.at(901)
        status = await get(client, "/l-2/status")
        assert status["stage"] == "HeadedToDropoff"
        assert status["lastKnownLocation"] == {
            "latitude": middle[0],
            "longitude": middle[1],
            "altitude": 100.0,
        }  # aboard the drone
        assert close_to(status["pickupETA"], t(720))  # when it reached the pickup
        speed = (40 + 40 + 50 + 50) / 4  # the mean of the airborne fixes
        assert close_to(
            status["deliveryETA"], t(900) + dt.timedelta(hours=miles(middle, DROPOFF) / speed)
        )

        await fleet.publish(
            fix("l-2", t(1100), Phase.AT_DROPOFF, 47.70, -122.20, speed_mph=0),
            fix("l-2", t(1170), Phase.RETURNING, 47.69, -122.21, speed_mph=40),
        )
        clock.at(1171)
        status = await get(client, "/l-2/status")
        assert status["stage"] == "HeadedToDropoff"  # until the confirmation
        assert status["lastKnownLocation"] == DROPOFF
        assert close_to(status["deliveryETA"], t(1100))  # it arrived then

        history = await get(client, "/l-2/history")
        reported = [(e["at"], e["stage"], e.get("phase")) for e in history if "phase" in e]
        assert reported == [
            (format_utc(t(5)), "HeadedToPickup", "ToPickup"),
            (format_utc(t(720)), "HeadedToPickup", "AtPickup"),
            (format_utc(t(780)), "HeadedToDropoff", "ToDropoff"),
            (format_utc(t(1100)), "HeadedToDropoff", "AtDropoff"),
            (format_utc(t(1170)), "HeadedToDropoff", "Returning"),
        ]
        assert history[3]["location"] == {"latitude": 47.6, "longitude": -122.33, "altitude": 100.0}
        assert [e["stage"] for e in history[:2]] == ["Created", "HeadedToPickup"]
        # Anyone holding the id sees the same stages and phases, without their places.
        public = await get(client, "/public/l-2/history")
        assert public == [{k: v for k, v in e.items() if k != "location"} for e in history]
        assert "phase" not in history[0]  # only the drone's reports carry one
        assert history[-1]["stage"] == status["stage"]

        # The same fixes delivered again add nothing.
        await fleet.publish(fix("l-2", t(780), Phase.TO_DROPOFF, 47.60, -122.33, seq=5))
        assert await get(client, "/l-2/history") == history
        picked = [e for e in await read_range(redis) if e.type is EventType.PICKED_UP]
        assert len(picked) == 1
        data = picked[0].data_as(PickedUpData)
        assert (picked[0].delivery_id, data.drone_id, data.at) == ("l-2", "drone-7", t(780))
        assert data.location == loc(47.60, -122.33, 100.0)


async def test_a_reschedule_in_flight_keeps_the_reported_stage(
    flying: Flying,
    clock: Clock,
    fleet: Fleet,
) -> None:
    async with flying() as client:
        await create(client, "l-8")
        await fleet.publish(fleet.fix("l-8", t(60), Phase.TO_DROPOFF, 47.62, -122.30))
        clock.at(61)
        new_dropoff = {"latitude": 47.66, "longitude": -122.25, "altitude": 0.0}
        replan = {"dropoff": new_dropoff, **PLAN}
        assert (await client.patch(f"{BASE}/l-8", json=replan)).status_code == 204
        status = await get(client, "/l-8/status")
        assert status["stage"] == "HeadedToDropoff"
        assert close_to(
            status["deliveryETA"],
            t(60) + dt.timedelta(hours=miles((47.62, -122.30), new_dropoff) / 40),
        )
        history = await get(client, "/l-8/history")
        assert [(e["stage"], e.get("phase")) for e in history[-3:]] == [
            ("HeadedToDropoff", "ToDropoff"),
            ("Rescheduled", None),
            ("HeadedToDropoff", None),  # the drone goes on: the stage it reported
        ]


async def test_completed_with_telemetry(
    flying: Flying,
    clock: Clock,
    fleet: Fleet,
    redis: Redis,
) -> None:
    async with flying(retention_seconds=500) as client:
        await create(client, "l-9")
        await fleet.publish(fleet.fix("l-9", t(60), Phase.AT_DROPOFF, 47.70, -122.20, speed_mph=0))
        clock.at(90)
        confirmation = {
            "dateTime": format_utc(t(90)),
            "geoCoordinates": DROPOFF,
            "confirmationType": "None",
        }
        assert (
            await client.post(f"{BASE}/l-9/confirmations", json=confirmation)
        ).status_code == 204
        await fleet.publish(fleet.fix("l-9", t(95), Phase.RETURNING, 47.69, -122.21))
        status = await get(client, "/l-9/status")
        assert status["stage"] == "Completed"
        assert status["deliveryETA"] == format_utc(t(90))
        assert status["pickupETA"] == format_utc(t(60))  # the drone had the package by then
        assert status["drone"]["phase"] == "AtDropoff"  # nothing after the confirmation
        # Every key of the delivery expires with it.
        for suffix in ("", ":history", ":stages", ":trail"):
            assert 0 < await redis.ttl(f"delivery:{{l-9}}{suffix}") <= 500


async def test_a_tracking_state_that_does_not_parse_is_started_again(
    flying: Flying,
    clock: Clock,
    fleet: Fleet,
    redis: Redis,
) -> None:
    async with flying() as client:
        await create(client, "l-11")
        await redis.hset("delivery:{l-11}", "live", '{"from": "another version"}')
        clock.at(5)
        assert (await get(client, "/l-11/status"))["telemetry"] == "none"
        await fleet.publish(fleet.fix("l-11", t(5), Phase.TO_PICKUP, *HOME))
        status = await get(client, "/l-11/status")
        assert (status["telemetry"], status["drone"]["phase"]) == ("live", "ToPickup")
