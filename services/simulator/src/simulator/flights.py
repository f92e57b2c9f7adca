"""A drone's flight: its state, how delivery events change it, and what it must do on the way.

A :class:`Flight` is what the simulator stores per drone in the air (JSON in Redis): the drone
(base, speeds, cruise altitude), the current route, the delivery it is flying for (``mission``),
deliveries assigned to it while it was busy (``queue``), confirmations still to send and
deliveries still to release at the drone scheduler, the id of the last delivery event applied,
and the last fix number. Where the drone is follows from the route (:mod:`simulator.flight`).

The rules (:class:`Rules`), all at a time ``now``:

- **Assigned** to a drone on the ground: a route from its base to the pickup, the handling time
  there, to the drop-off, the handling time there, and back to the base. To a drone returning
  home: the same from where it is (a divert). To a drone busy with another delivery: queued, it
  flies there straight from that delivery's drop-off. Again for the delivery it flies: a
  reschedule.
- **Rescheduled**: a new pickup before the package is aboard re-routes from where the drone is; a
  new drop-off keeps the way to the pickup and changes what follows (or, with the package aboard,
  re-routes from where the drone is). A change of the expedited flag re-routes at the new speed.
- **Cancelled** (or **Completed** by someone else): the drone turns back to its base from where
  it is, or flies on to its next queued delivery.
- **At the end of the drop-off handling** (:meth:`Rules.advance`): the confirmation is due (at
  that moment, at the drop-off, of the type the delivery asked for) and the drone flies home or
  on to its next queued delivery.
- A delivery whose trip has ended is released at the drone scheduler once its drone is back at
  its base, or has moved on to another delivery (:meth:`Flight.releasable`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from dronecommon.fixes import Phase

from .flight import Leg, Point, RouteSpec, Sample, Stop, Weather, build, leg_index, sample

FULL_BATTERY = 100.0
_DELIVERING = frozenset({Phase.TO_DROPOFF, Phase.AT_DROPOFF})


@dataclass(frozen=True, slots=True)
class DroneInfo:
    drone_id: str
    base: Point
    cruise_mph: float
    expedited_mph: float
    cruise_alt: float


@dataclass(frozen=True, slots=True)
class Mission:
    """A delivery as the drone flies it."""

    delivery_id: str
    pickup: Point
    dropoff: Point
    confirmation: str = "None"
    expedited: bool = False


@dataclass(frozen=True, slots=True)
class Confirm:
    """A confirmation to send: the delivery reached at ``at`` (epoch seconds) at ``location``."""

    delivery_id: str
    at: float
    location: Point
    confirmation: str


@dataclass(slots=True, eq=False)
class Flight:
    drone: DroneInfo
    route: RouteSpec
    legs: tuple[Leg, ...]
    trip: str | None = None  # the delivery of this route (kept while flying home after it)
    mission: Mission | None = None
    queue: list[Mission] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    confirms: list[Confirm] = field(default_factory=list)
    applied: str = "0-0"
    seq: int = 0
    cursor: int = 0

    @property
    def drone_id(self) -> str:
        return self.drone.drone_id

    @property
    def arrival(self) -> float:
        """When the route ends (back at the base, unless it goes on to a queued delivery)."""
        return self.legs[-1].end if self.legs else self.route.start

    def at(self, t: float) -> Sample:
        self.cursor = leg_index(self.legs, t, self.cursor)
        return sample(self.legs[min(self.cursor, len(self.legs) - 1)], t)

    def landed(self, now: float) -> bool:
        return self.mission is None and now >= self.arrival

    def leg_ends(self, t: float) -> float | None:
        """When the leg flown at ``t`` ends (the drone reaches its target, or a hold is over);
        None once the route is over."""
        index = leg_index(self.legs, t, self.cursor)
        return self.legs[index].end if index < len(self.legs) else None

    def releasable(self, now: float) -> list[str]:
        """Deliveries to release at the scheduler now: home, or flying for another one."""
        if self.done and (self.mission is not None or self.landed(now)):
            return list(self.done)
        return []

    def has_work(self) -> bool:
        return bool(self.confirms or self.done)

    def knows(self, delivery_id: str) -> bool:
        mission = self.mission
        return (mission is not None and mission.delivery_id == delivery_id) or any(
            queued.delivery_id == delivery_id for queued in self.queue
        )


def later(entry_id: str, than: str) -> bool:
    """Whether stream entry id ``entry_id`` comes after ``than``."""
    a, _, b = entry_id.partition("-")
    c, _, d = than.partition("-")
    return (int(a), int(b or 0)) > (int(c), int(d or 0))


def ground(point: Point) -> Point:
    return Point(point.lat, point.lon, point.alt)


class Rules:
    """How events and time change flights (see the module docstring)."""

    def __init__(self, weather: Weather, *, handling: float, speed_factor: float = 1.0) -> None:
        self.weather = weather
        self.handling = handling
        self.speed_factor = speed_factor

    # --- routes ---------------------------------------------------------------------------------

    def _speed(self, drone: DroneInfo, expedited: bool) -> float:
        return (drone.expedited_mph if expedited else drone.cruise_mph) * self.speed_factor

    def mission_route(
        self,
        drone: DroneInfo,
        mission: Mission,
        start: float,
        origin: Point,
        battery: float,
        *,
        carrying: bool = False,
    ) -> RouteSpec:
        stops: list[Stop] = []
        if not carrying:
            stops += [
                Stop(Phase.TO_PICKUP, mission.pickup),
                Stop(Phase.AT_PICKUP, mission.pickup, self.handling),
            ]
        stops += [
            Stop(Phase.TO_DROPOFF, mission.dropoff),
            Stop(Phase.AT_DROPOFF, mission.dropoff, self.handling),
            Stop(Phase.RETURNING, drone.base),
        ]
        return RouteSpec(
            start,
            origin,
            battery,
            self._speed(drone, mission.expedited),
            drone.cruise_alt,
            f"{drone.drone_id}|{mission.delivery_id}",
            tuple(stops),
        )

    def home_route(
        self, drone: DroneInfo, start: float, origin: Point, battery: float, trip: str | None
    ) -> RouteSpec:
        return RouteSpec(
            start,
            origin,
            battery,
            self._speed(drone, False),
            drone.cruise_alt,
            f"{drone.drone_id}|{trip or '-'}",
            (Stop(Phase.RETURNING, drone.base),),
        )

    def _set(self, flight: Flight, route: RouteSpec) -> None:
        flight.route = route
        flight.legs = build(route, self.weather)
        flight.cursor = 0

    def _fly(
        self,
        flight: Flight,
        mission: Mission,
        start: float,
        origin: Point,
        battery: float,
        *,
        carrying: bool = False,
    ) -> None:
        route = self.mission_route(flight.drone, mission, start, origin, battery, carrying=carrying)
        self._set(flight, route)
        flight.mission = mission
        flight.trip = mission.delivery_id

    def _turn_back(self, flight: Flight, now: float) -> None:
        """From where it is: on to the next queued delivery, or home."""
        here = flight.at(now)
        origin = Point(here.lat, here.lon, here.alt)
        if flight.queue:
            self._fly(flight, flight.queue.pop(0), now, origin, here.battery)
        else:
            flight.mission = None
            self._set(flight, self.home_route(flight.drone, now, origin, here.battery, flight.trip))

    def new_flight(self, drone: DroneInfo, mission: Mission, now: float) -> Flight:
        route = self.mission_route(drone, mission, now, drone.base, FULL_BATTERY)
        flight = Flight(drone, route, build(route, self.weather))
        flight.mission = mission
        flight.trip = mission.delivery_id
        return flight

    # --- events ---------------------------------------------------------------------------------

    def assign(
        self, flight: Flight | None, drone: DroneInfo, mission: Mission, now: float
    ) -> Flight:
        """The drone's flight once ``mission`` is assigned to it (a new one if it was home)."""
        if flight is None:
            return self.new_flight(drone, mission, now)
        flight.drone = drone
        if flight.landed(now):
            self._fly(flight, mission, now, drone.base, FULL_BATTERY)
        elif flight.mission is None:
            here = flight.at(now)
            self._fly(flight, mission, now, Point(here.lat, here.lon, here.alt), here.battery)
        elif flight.mission.delivery_id == mission.delivery_id:
            self.reschedule(flight, mission, now)
        else:
            flight.queue = [q for q in flight.queue if q.delivery_id != mission.delivery_id]
            flight.queue.append(mission)
        return flight

    def reschedule(self, flight: Flight, mission: Mission, now: float) -> bool:
        """Apply a new plan of a delivery this drone flies or has queued; whether it changed."""
        for index, queued in enumerate(flight.queue):
            if queued.delivery_id == mission.delivery_id:
                flight.queue[index] = mission
                return queued != mission
        current = flight.mission
        if current is None or current.delivery_id != mission.delivery_id:
            return False
        flight.mission = mission
        if (current.pickup, current.dropoff, current.expedited) == (
            mission.pickup,
            mission.dropoff,
            mission.expedited,
        ):
            return current != mission
        here = flight.at(now)
        origin = Point(here.lat, here.lon, here.alt)
        carrying = here.phase in _DELIVERING or not any(
            stop.phase is Phase.TO_PICKUP for stop in flight.route.stops
        )
        if carrying:
            if mission.dropoff != current.dropoff or mission.expedited != current.expedited:
                self._fly(flight, mission, now, origin, here.battery, carrying=True)
        elif mission.pickup == current.pickup and mission.expedited == current.expedited:
            stops = tuple(
                Stop(stop.phase, mission.dropoff, stop.hold) if stop.phase in _DELIVERING else stop
                for stop in flight.route.stops
            )
            self._set(flight, flight.route.with_stops(stops))
        else:
            self._fly(flight, mission, now, origin, here.battery)
        return True

    def end(self, flight: Flight, delivery_id: str, now: float, *, release: bool = True) -> bool:
        """The delivery was cancelled (or completed by someone else), or moved to another drone
        (``release=False``): drop it; whether this drone had it."""
        before = len(flight.queue)
        flight.queue = [q for q in flight.queue if q.delivery_id != delivery_id]
        if len(flight.queue) != before:
            return True
        if flight.mission is None or flight.mission.delivery_id != delivery_id:
            return False
        if release:
            flight.done.append(delivery_id)
        flight.mission = None
        self._turn_back(flight, now)
        return True

    # --- time -----------------------------------------------------------------------------------

    def advance(self, flight: Flight, now: float) -> bool:
        """Apply what the clock brought: the end of the drop-off handling (confirmation due, then
        home or the next queued delivery). Whether the flight changed."""
        changed = False
        while flight.mission is not None:
            drop = next(
                (leg for leg in flight.legs if leg.phase is Phase.AT_DROPOFF and leg.mph == 0.0),
                None,
            )
            if drop is None or now < drop.end:
                break
            mission = flight.mission
            flight.confirms.append(
                Confirm(mission.delivery_id, drop.end, mission.dropoff, mission.confirmation)
            )
            flight.done.append(mission.delivery_id)
            flight.mission = None
            changed = True
            if flight.queue:
                battery = sample(drop, drop.end).battery
                self._fly(flight, flight.queue.pop(0), drop.end, mission.dropoff, battery)
        return changed


# --- storage --------------------------------------------------------------------------------------


def _point(value: Any) -> Point:
    return Point(float(value[0]), float(value[1]), float(value[2]))


def _mission(doc: dict[str, Any]) -> Mission:
    return Mission(
        doc["id"], _point(doc["pickup"]), _point(doc["dropoff"]), doc["conf"], doc["exp"]
    )


def _mission_doc(mission: Mission) -> dict[str, Any]:
    return {
        "id": mission.delivery_id,
        "pickup": list(mission.pickup),
        "dropoff": list(mission.dropoff),
        "conf": mission.confirmation,
        "exp": mission.expedited,
    }


def dumps(flight: Flight) -> bytes:
    route, drone = flight.route, flight.drone
    return orjson.dumps(
        {
            "drone": [
                drone.drone_id,
                list(drone.base),
                drone.cruise_mph,
                drone.expedited_mph,
                drone.cruise_alt,
            ],
            "route": {
                "start": route.start,
                "origin": list(route.origin),
                "battery": route.battery,
                "mph": route.cruise_mph,
                "alt": route.cruise_alt,
                "key": route.key,
                "stops": [[s.phase.value, list(s.target), s.hold] for s in route.stops],
            },
            "trip": flight.trip,
            "mission": _mission_doc(flight.mission) if flight.mission else None,
            "queue": [_mission_doc(m) for m in flight.queue],
            "done": flight.done,
            "confirms": [
                [c.delivery_id, c.at, list(c.location), c.confirmation] for c in flight.confirms
            ],
            "applied": flight.applied,
            "seq": flight.seq,
        }
    )


def loads(raw: bytes | str, weather: Weather) -> Flight:
    doc = orjson.loads(raw)
    d = doc["drone"]
    drone = DroneInfo(d[0], _point(d[1]), float(d[2]), float(d[3]), float(d[4]))
    r = doc["route"]
    route = RouteSpec(
        float(r["start"]),
        _point(r["origin"]),
        float(r["battery"]),
        float(r["mph"]),
        float(r["alt"]),
        r["key"],
        tuple(Stop(Phase(s[0]), _point(s[1]), float(s[2])) for s in r["stops"]),
    )
    return Flight(
        drone,
        route,
        build(route, weather),
        trip=doc.get("trip"),
        mission=_mission(doc["mission"]) if doc.get("mission") else None,
        queue=[_mission(m) for m in doc.get("queue", [])],
        done=list(doc.get("done", [])),
        confirms=[Confirm(c[0], float(c[1]), _point(c[2]), c[3]) for c in doc.get("confirms", [])],
        applied=doc.get("applied", "0-0"),
        seq=int(doc.get("seq", 0)),
    )
