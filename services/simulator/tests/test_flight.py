"""The flight model and the flight rules: pure functions of the stored route and the clock."""

from __future__ import annotations

import math

import pytest

from dronecommon.fixes import Phase
from simulator.flight import (
    Point,
    RouteSpec,
    Stop,
    Weather,
    build,
    heading_between,
    leg_index,
    miles_between,
    sample,
    where,
    wind,
)
from simulator.flights import DroneInfo, Flight, Mission, Rules, dumps, later, loads

BASE = Point(47.6062, -122.3321)
PICKUP = Point(47.6500, -122.3321)  # due north of the base
DROPOFF = Point(47.6500, -122.2700)  # due east of the pickup
T0 = 1_900_000_000.0
WEATHER = Weather(seed="test", strength=0.2, gust=0.1, climb_miles=0.1, drain_per_mile=2.0)
DRONE = DroneInfo("downtown-standard-00001", BASE, 40.0, 50.0, 120.0)
MISSION = Mission("d-1", PICKUP, DROPOFF, "Picture", False)


def rules(handling: float = 60.0) -> Rules:
    return Rules(WEATHER, handling=handling)


def spec(start: float = T0, stops: tuple[Stop, ...] | None = None) -> RouteSpec:
    return RouteSpec(
        start,
        BASE,
        100.0,
        40.0,
        120.0,
        "drone|d-1",
        stops or (Stop(Phase.TO_PICKUP, PICKUP), Stop(Phase.AT_PICKUP, PICKUP, 60.0)),
    )


def test_a_leg_goes_from_origin_to_target_in_the_time_its_wind_gives() -> None:
    leg = build(spec(), WEATHER)[0]
    assert leg.phase is Phase.TO_PICKUP
    assert leg.miles == pytest.approx(miles_between(BASE, PICKUP))
    start, end = sample(leg, leg.start), sample(leg, leg.end)
    assert (start.lat, start.lon) == pytest.approx(BASE[:2])
    assert (end.lat, end.lon) == pytest.approx(PICKUP[:2], abs=1e-7)
    # Slower or faster than the plan (cruise speed, no wind), within the wind's bounds.
    planned = leg.miles / 40.0 * 3600
    flown = leg.end - leg.start
    assert flown != pytest.approx(planned, rel=1e-3)
    assert planned / 1.2 / 1.1 <= flown <= planned / 0.8 / 0.9
    # Progress only ever goes forward; the speed stays within wind and gust.
    previous = 0.0
    for step in range(1, 60):
        here = sample(leg, leg.start + (leg.end - leg.start) * step / 60)
        assert here.lat > previous
        previous = here.lat
        assert 40 * 0.8 * 0.9 <= here.speed_mph <= 40 * 1.2 * 1.1
    assert heading_between(BASE, PICKUP) == pytest.approx(0.0)
    assert heading_between(PICKUP, DROPOFF) == pytest.approx(90.0)
    assert heading_between(DROPOFF, PICKUP) == pytest.approx(270.0)


def test_the_wind_is_the_same_for_the_same_drone_leg_and_start_only() -> None:
    assert build(spec(), WEATHER) == build(spec(), WEATHER)
    assert wind(WEATHER, "a") == wind(WEATHER, "a")
    assert wind(WEATHER, "a") != wind(WEATHER, "b")
    assert build(spec(T0 + 1), WEATHER)[0].mph != build(spec(), WEATHER)[0].mph
    factors = [wind(WEATHER, str(n))[0] for n in range(500)]
    assert 0.8 <= min(factors) < 0.85
    assert 1.15 < max(factors) <= 1.2
    calm = Weather(seed="test", strength=0.0, gust=0.0)
    leg = build(spec(), calm)[0]
    assert leg.end - leg.start == pytest.approx(leg.miles / 40.0 * 3600)


def test_the_drone_climbs_to_cruise_and_lands_to_hold() -> None:
    legs = build(spec(), WEATHER)
    fly, hold = legs
    middle = sample(fly, (fly.start + fly.end) / 2)
    assert middle.alt == pytest.approx(120.0)
    assert sample(fly, fly.start).alt == pytest.approx(0.0)
    assert 0 < sample(fly, fly.start + 2).alt < 120
    assert sample(fly, fly.end).alt == pytest.approx(0.0, abs=1e-6)
    assert hold.phase is Phase.AT_PICKUP
    assert hold.end - hold.start == 60.0
    holding = sample(hold, hold.start + 30)
    assert (holding.speed_mph, holding.alt) == (0.0, 0.0)
    assert holding.heading == pytest.approx(0.0)  # the heading of the leg before
    # The battery drains with distance (2 % a mile here), not while holding.
    assert sample(fly, fly.end).battery == pytest.approx(100 - 2 * fly.miles)
    assert holding.battery == pytest.approx(100 - 2 * fly.miles)
    assert leg_index(legs, T0 - 1) == 0
    assert leg_index(legs, hold.start + 1) == 1
    assert leg_index(legs, hold.end + 1) == 2
    assert where(legs, hold.end + 100).lat == pytest.approx(PICKUP.lat)


def test_a_delivery_flies_base_pickup_dropoff_base_and_confirms_after_the_handling() -> None:
    r = rules()
    flight = r.new_flight(DRONE, MISSION, T0)
    assert [leg.phase for leg in flight.legs] == [
        Phase.TO_PICKUP,
        Phase.AT_PICKUP,
        Phase.TO_DROPOFF,
        Phase.AT_DROPOFF,
        Phase.RETURNING,
    ]
    drop = flight.legs[3]
    assert not r.advance(flight, drop.end - 0.001)
    assert flight.confirms == []
    assert r.advance(flight, drop.end + 5)
    (confirm,) = flight.confirms
    assert (confirm.delivery_id, confirm.at, confirm.location) == ("d-1", drop.end, DROPOFF)
    assert confirm.confirmation == "Picture"
    assert flight.mission is None
    assert flight.done == ["d-1"]
    assert flight.releasable(drop.end + 5) == []  # not home yet
    assert not flight.landed(flight.arrival - 1)
    assert flight.landed(flight.arrival)
    assert flight.releasable(flight.arrival) == ["d-1"]
    home = flight.at(flight.arrival)
    assert (home.lat, home.lon) == pytest.approx(BASE[:2], abs=1e-7)
    assert not r.advance(flight, flight.arrival + 10)  # nothing twice


def test_a_cancel_turns_the_drone_back_from_where_it_is() -> None:
    r = rules()
    flight = r.new_flight(DRONE, MISSION, T0)
    midway = (flight.legs[0].start + flight.legs[0].end) / 2
    here = flight.at(midway)
    assert r.end(flight, "d-1", midway)
    assert [leg.phase for leg in flight.legs] == [Phase.RETURNING]
    back = flight.legs[0]
    assert back.start == midway
    assert back.origin.lat == pytest.approx(here.lat)
    assert flight.route.battery == pytest.approx(here.battery)
    assert flight.done == ["d-1"]
    assert flight.mission is None
    assert not r.end(flight, "d-1", midway + 1)  # again: nothing to do


def test_a_drone_assigned_while_returning_diverts_from_where_it_is() -> None:
    r = rules()
    flight = r.new_flight(DRONE, MISSION, T0)
    drop = flight.legs[3]
    r.advance(flight, drop.end)
    later_on = (flight.legs[4].start + flight.legs[4].end) / 2
    here = flight.at(later_on)
    other = Mission("d-2", Point(47.62, -122.30), Point(47.63, -122.31), "None", True)
    assert r.assign(flight, DRONE, other, later_on) is flight
    assert flight.mission == other
    assert flight.trip == "d-2"
    first = flight.legs[0]
    assert (first.phase, first.start) == (Phase.TO_PICKUP, later_on)
    assert (first.origin.lat, first.origin.lon) == pytest.approx((here.lat, here.lon))
    assert first.mph == pytest.approx(50.0 * first.mph / (flight.route.cruise_mph), rel=1e-9)
    assert flight.route.cruise_mph == 50.0  # expedited
    # The first delivery's trip is over: it is released now the drone flies for another.
    assert flight.releasable(later_on) == ["d-1"]


def test_a_delivery_assigned_to_a_busy_drone_is_flown_from_the_previous_drop_off() -> None:
    r = rules()
    flight = r.new_flight(DRONE, MISSION, T0)
    other = Mission("d-2", Point(47.62, -122.30), Point(47.63, -122.31))
    r.assign(flight, DRONE, other, T0 + 10)
    assert flight.mission == MISSION
    assert flight.queue == [other]
    drop = flight.legs[3]
    assert r.advance(flight, drop.end + 1)
    assert flight.mission == other
    assert flight.queue == []
    first = flight.legs[0]
    assert (first.phase, first.start, first.origin) == (Phase.TO_PICKUP, drop.end, DROPOFF)
    assert [c.delivery_id for c in flight.confirms] == ["d-1"]


def test_a_reschedule_changes_what_is_still_ahead() -> None:
    r = rules()
    flight = r.new_flight(DRONE, MISSION, T0)
    to_pickup = flight.legs[0]
    new_dropoff = Point(47.66, -122.25)
    # Before the pickup, a new drop-off keeps the way to the pickup as it was.
    r.reschedule(flight, Mission("d-1", PICKUP, new_dropoff, "Picture"), T0 + 30)
    assert flight.legs[0] == to_pickup
    assert flight.legs[2].target == new_dropoff
    # A new pickup re-routes from where the drone is.
    new_pickup = Point(47.64, -122.35)
    here = flight.at(T0 + 60)
    r.reschedule(flight, Mission("d-1", new_pickup, new_dropoff, "Picture"), T0 + 60)
    assert flight.legs[0].start == T0 + 60
    assert flight.legs[0].origin.lat == pytest.approx(here.lat)
    assert flight.legs[0].target == new_pickup
    # With the package aboard, a new drop-off re-routes there from where the drone is.
    on_board = (flight.legs[2].start + flight.legs[2].end) / 2
    r.reschedule(flight, Mission("d-1", new_pickup, DROPOFF, "Picture"), on_board)
    assert [leg.phase for leg in flight.legs] == [
        Phase.TO_DROPOFF,
        Phase.AT_DROPOFF,
        Phase.RETURNING,
    ]
    assert flight.legs[0].target == DROPOFF
    # The same plan again changes nothing.
    legs = flight.legs
    assert not r.reschedule(flight, Mission("d-1", new_pickup, DROPOFF, "Picture"), on_board + 5)
    assert flight.legs == legs


def test_a_stored_flight_is_recomputed_exactly() -> None:
    r = rules()
    flight = r.new_flight(DRONE, MISSION, T0)
    flight.queue.append(Mission("d-2", PICKUP, DROPOFF))
    flight.applied = "1700000000000-3"
    flight.seq = 42
    again = loads(dumps(flight), WEATHER)
    assert again.legs == flight.legs
    for t in (T0, T0 + 100, T0 + 1000, flight.arrival):
        assert again.at(t) == flight.at(t)
    assert (again.mission, again.queue, again.applied, again.seq) == (
        flight.mission,
        flight.queue,
        flight.applied,
        flight.seq,
    )
    assert isinstance(again, Flight)


def test_stream_ids_are_compared_as_numbers() -> None:
    assert later("10-0", "9-5")
    assert later("9-10", "9-9")
    assert not later("9-9", "9-9")
    assert later("1-0", "0-0")


def test_headings_follow_the_compass() -> None:
    east = Point(BASE.lat, BASE.lon + 0.01)
    south = Point(BASE.lat - 0.01, BASE.lon)
    assert heading_between(BASE, east) == pytest.approx(90.0)
    assert heading_between(BASE, south) == pytest.approx(180.0)
    assert heading_between(BASE, BASE) == 0.0
    assert math.isclose(miles_between(BASE, BASE), 0.0)
