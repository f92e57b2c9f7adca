"""Drones fly: a delivery event makes a drone fly, report, confirm, come home and be released;
cancel and reschedule reach it in flight. Real delivery service, drone scheduler, Redis, FerretDB.
"""

from __future__ import annotations

from itertools import groupby

from dronecommon.fixes import Fix, Phase
from simulator.flight import Point, miles_between
from simulator.settings import SimulatorSettings

from .conftest import DROPOFF, PICKUP, World, simulator, wait_for

BASE_POINT = Point(47.6062, -122.3321)


def phases(fixes: list[Fix]) -> list[Phase]:
    return [phase for phase, _ in groupby(f.phase for f in fixes)]


def point(fix: Fix) -> Point:
    return Point(fix.latitude, fix.longitude)


async def test_a_delivery_flies_confirms_comes_home_and_is_released(world: World) -> None:
    async with simulator(world) as sim:
        plan = await world.schedule(confirmation="Picture")
        delivery_id, drone = plan["deliveryId"], plan["droneId"]

        async def flying() -> bool:
            return len(await world.fixes(drone)) >= 3

        await wait_for(flying, within=10, what="the first fixes")
        fleet = (await sim.get("/api/fleet")).json()
        assert fleet["inFlight"] == 1
        (view,) = fleet["drones"]
        assert (view["droneId"], view["deliveryId"]) == (drone, delivery_id)
        detail = (await sim.get(f"/api/fleet/{drone}")).json()
        assert [leg["phase"] for leg in detail["route"]] == [
            "ToPickup",
            "AtPickup",
            "ToDropoff",
            "AtDropoff",
            "Returning",
        ]
        # The phase ends when its leg of the plan does (the view and the detail agree).
        (leg,) = [leg for leg in detail["route"] if leg["start"] <= detail["at"] < leg["end"]]
        assert leg["phase"] == detail["phase"]
        assert detail["phaseEndsAt"] == leg["end"]
        assert view["at"] <= view["phaseEndsAt"]
        assert view["phaseEndsAt"] in [leg["end"] for leg in detail["route"]]

        async def completed() -> bool:
            return await world.stage(delivery_id) == "Completed"

        await wait_for(completed, within=30, what="the delivery to be completed")
        record = (await world.delivery.get(f"/api/deliveries/{delivery_id}")).json()
        confirmation = record["confirmation"]
        assert confirmation["confirmationType"] == "Picture"
        assert confirmation["geoCoordinates"] == DROPOFF
        assert confirmation["confirmationBlob"]

        async def released() -> bool:
            return bool((await world.assignment(delivery_id))["status"] == "Released")

        async def home() -> bool:
            body = (await sim.get("/api/fleet")).json()
            return bool(body["inFlight"] == 0 and body["landed"] == 0)

        await wait_for(released, within=30, what="the drone to be released")
        await wait_for(home, within=10, what="the flight to end")
        assert (await sim.get(f"/api/fleet/{drone}")).status_code == 404
        assignment = await world.assignment(delivery_id)
        assert assignment["releasedAt"] > confirmation["dateTime"]

    fixes = await world.fixes(drone)
    assert phases(fixes) == [
        Phase.TO_PICKUP,
        Phase.AT_PICKUP,
        Phase.TO_DROPOFF,
        Phase.AT_DROPOFF,
        Phase.RETURNING,
    ]
    assert {f.delivery_id for f in fixes} == {delivery_id}
    seqs = [f.seq for f in fixes]
    assert seqs == sorted(set(seqs))
    assert len({(f.latitude, f.longitude) for f in fixes}) > 10  # it moves
    assert max(f.altitude for f in fixes) > 100  # at cruise altitude between the stops
    batteries = [f.battery_pct for f in fixes]
    assert batteries == sorted(batteries, reverse=True)
    assert batteries[-1] < 100
    going = [f for f in fixes if f.phase is Phase.TO_PICKUP and f.speed_mph > 0]
    assert all(abs(f.heading_deg) < 1 or abs(f.heading_deg - 360) < 1 for f in going)  # north
    # 40 mph x 100, times the leg's wind (80 % to 120 %) and a gust of up to 10 % either way.
    wind, gust = (
        SimulatorSettings.model_fields["wind_strength"].default,
        SimulatorSettings.model_fields["gust_strength"].default,
    )
    slowest, fastest = 4000 * (1 - wind) * (1 - gust), 4000 * (1 + wind) * (1 + gust)
    assert going
    assert all(slowest <= f.speed_mph <= fastest for f in going)
    pickup = Point(PICKUP["latitude"], PICKUP["longitude"])
    at_pickup = [f for f in fixes if f.phase is Phase.AT_PICKUP]
    assert all(miles_between(point(f), pickup) < 0.01 for f in at_pickup)


async def test_a_cancel_in_flight_turns_the_drone_back(world: World) -> None:
    async with simulator(world, speed_factor=40) as sim:
        plan = await world.schedule()
        delivery_id, drone = plan["deliveryId"], plan["droneId"]

        async def on_its_way() -> bool:
            fixes = await world.fixes(drone)
            return any(f.latitude > BASE_POINT.lat + 0.01 for f in fixes)

        await wait_for(on_its_way, within=15, what="the drone to be on its way")
        await world.cancel(delivery_id)

        async def returning() -> bool:
            return (await world.fixes(drone))[-1].phase is Phase.RETURNING

        await wait_for(returning, within=10, what="the drone to turn back")

        async def home() -> bool:
            return bool((await sim.get("/api/fleet")).json()["inFlight"] == 0)

        await wait_for(home, within=30, what="the drone to be home")

    fixes = await world.fixes(drone)
    assert phases(fixes) == [Phase.TO_PICKUP, Phase.RETURNING]
    turned = next(i for i, f in enumerate(fixes) if f.phase is Phase.RETURNING)
    before, after = fixes[turned - 1], fixes[turned]
    # It turned back from where it was, not from the pickup, heading south to its base.
    assert miles_between(point(before), point(after)) < 0.5
    assert after.latitude < PICKUP["latitude"] - 0.005
    assert abs(after.heading_deg - 180) < 1
    assert await world.stage(delivery_id) == "Cancelled"
    assert (await world.assignment(delivery_id))["status"] == "Released"


async def test_a_reschedule_in_flight_reroutes_the_drone(world: World) -> None:
    elsewhere = {"latitude": 47.6200, "longitude": -122.2900, "altitude": 0.0}
    async with simulator(world, speed_factor=40) as sim:
        plan = await world.schedule(confirmation="None")
        delivery_id, drone = plan["deliveryId"], plan["droneId"]

        async def on_its_way() -> bool:
            return len(await world.fixes(drone)) >= 2

        await wait_for(on_its_way, within=15, what="the drone to be on its way")
        await world.reschedule(delivery_id, elsewhere)

        async def rerouted() -> bool:
            detail = (await sim.get(f"/api/fleet/{drone}")).json()
            targets = [leg["target"] for leg in detail["route"] if leg["phase"] == "ToDropoff"]
            return bool(targets == [elsewhere])

        await wait_for(rerouted, within=10, what="the drone to be re-routed")

        async def completed() -> bool:
            return await world.stage(delivery_id) == "Completed"

        await wait_for(completed, within=40, what="the delivery to be completed")
    record = (await world.delivery.get(f"/api/deliveries/{delivery_id}")).json()
    assert record["confirmation"]["geoCoordinates"] == elsewhere
    assert record["confirmation"]["confirmationType"] == "None"
    dropped = [f for f in await world.fixes(drone) if f.phase is Phase.AT_DROPOFF]
    target = Point(elsewhere["latitude"], elsewhere["longitude"])
    assert dropped
    assert all(miles_between(point(f), target) < 0.01 for f in dropped)
