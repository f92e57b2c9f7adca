"""The flight model: where a drone is at any time, as a pure function of its stored route.

A *route* (:class:`RouteSpec`) is what is stored: its start time, where it starts, the battery
then, the drone's cruise speed and altitude, and a list of stops (fly to a place, or hold at one
for the handling time). :func:`build` turns it into *legs* (:class:`Leg`) with their start and end
times; :func:`sample` gives the position, altitude, speed, heading and battery at any time within
a leg. Nothing depends on process memory or on when the process started, so a restarted process
recomputes the very same flight.

**Flying a leg.** Straight from its origin to its target (linear in latitude and longitude,
which at the scale of a city is the great circle within metres), over the great-circle distance.
The ground speed is the cruise speed times the leg's *wind factor*, plus a gust::

    v(τ) = cruise · wind · (1 + gust · sin(ω τ + φ))        τ = time since the leg started

so the distance flown is ``d(τ) = cruise · wind · (τ + gust/ω · (cos φ - cos(ω τ + φ)))`` and the
leg ends when ``d`` reaches its length (solved by Newton's method when the leg is built).

**The wind rule.** Each leg draws four numbers from SHA-256 of ``"<seed>|<drone>|<delivery>|
<leg number>|<phase>|<route start in ms>"``: ``wind = 1 + strength · (2u₀ - 1)`` (default strength
0.2: 80 % to 120 % of cruise speed), ``gust = gust_strength · u₁`` (default up to ±10 %), a gust
period of 60 to 180 s (``u₂``) and its phase (``u₃``). The same drone, delivery, leg and route
start always get the same wind; a re-route starts new legs and so draws new wind.

**Altitude.** A flight leg climbs from the origin's altitude to the cruise altitude over its
first ``climb_miles`` of distance and descends to the target's altitude over its last ones (less
high on a leg too short for both). Holds are on the ground at their place.

**Battery.** Drains in proportion to the distance flown (``drain_per_mile`` percent a mile, by
default 100 % over 60 miles), never below zero; holding costs nothing.

**Heading.** Degrees clockwise from north of the leg's direction; a hold keeps the heading of
the leg before it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import NamedTuple

from dronecommon.fixes import Phase

EARTH_RADIUS_MILES = 3958.7613
FLYING = frozenset({Phase.TO_PICKUP, Phase.TO_DROPOFF, Phase.RETURNING})
TWO_PI = 2 * math.pi


class Point(NamedTuple):
    lat: float
    lon: float
    alt: float = 0.0


def miles_between(a: Point, b: Point) -> float:
    """Great-circle (haversine) distance in statute miles, as the drone scheduler plans it."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(h)))


def heading_between(a: Point, b: Point) -> float:
    """Degrees clockwise from north, from ``a`` towards ``b`` (0 when they coincide)."""
    dx = (b.lon - a.lon) * math.cos(math.radians((a.lat + b.lat) / 2))
    dy = b.lat - a.lat
    if dx == 0 and dy == 0:
        return 0.0
    return math.degrees(math.atan2(dx, dy)) % 360.0


@dataclass(frozen=True, slots=True)
class Weather:
    """The wind rule's and the airframe's parameters (the simulator's settings)."""

    seed: str = "fabrikam"
    strength: float = 0.2
    gust: float = 0.1
    climb_miles: float = 0.1
    drain_per_mile: float = 100 / 60


@dataclass(frozen=True, slots=True)
class Stop:
    """Fly to ``target`` (phase ToPickup, ToDropoff, Returning) or hold there ``hold`` seconds
    (AtPickup, AtDropoff)."""

    phase: Phase
    target: Point
    hold: float = 0.0


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """What is stored of a route; ``key`` names the drone and delivery for the wind seed."""

    start: float
    origin: Point
    battery: float
    cruise_mph: float
    cruise_alt: float
    key: str
    stops: tuple[Stop, ...]

    def with_stops(self, stops: tuple[Stop, ...]) -> RouteSpec:
        return replace(self, stops=stops)


@dataclass(frozen=True, slots=True)
class Leg:
    phase: Phase
    start: float
    end: float
    origin: Point
    target: Point
    miles: float
    mph: float  # cruise x wind; 0 on a hold
    gust: float
    omega: float
    phi: float
    heading: float
    battery: float  # at the start of the leg
    drain: float  # percent per mile
    cruise_alt: float
    climb: float


class Sample(NamedTuple):
    lat: float
    lon: float
    alt: float
    speed_mph: float
    heading: float
    battery: float
    phase: Phase


def wind(weather: Weather, key: str) -> tuple[float, float, float, float]:
    """``(wind factor, gust, ω, φ)`` for the leg named ``key`` (see the module docstring)."""
    digest = hashlib.sha256(f"{weather.seed}|{key}".encode()).digest()
    u = [int.from_bytes(digest[8 * i : 8 * i + 8], "big") / 2**64 for i in range(4)]
    factor = 1.0 + weather.strength * (2 * u[0] - 1)
    period = 60.0 + 120.0 * u[2]
    return factor, weather.gust * u[1], TWO_PI / period, TWO_PI * u[3]


def _distance(leg: Leg, tau: float) -> float:
    v = leg.mph / 3600.0
    return v * (
        tau + leg.gust / leg.omega * (math.cos(leg.phi) - math.cos(leg.omega * tau + leg.phi))
    )


def _duration(leg: Leg) -> float:
    """Seconds to fly the leg: the root of d(τ) = miles (d is increasing: gust < 1)."""
    if leg.miles <= 0:
        return 0.0
    v = leg.mph / 3600.0
    tau = leg.miles / v
    for _ in range(30):
        error = _distance(leg, tau) - leg.miles
        speed = v * (1 + leg.gust * math.sin(leg.omega * tau + leg.phi))
        step = error / speed
        tau -= step
        if abs(step) < 1e-6:
            break
    return max(tau, 0.0)


def build(spec: RouteSpec, weather: Weather) -> tuple[Leg, ...]:
    """The legs of a route, each starting where and when the one before ended."""
    legs: list[Leg] = []
    at, origin, battery, heading = spec.start, spec.origin, spec.battery, 0.0
    for number, stop in enumerate(spec.stops):
        if stop.phase in FLYING:
            miles = miles_between(origin, stop.target)
            factor, gust, omega, phi = wind(
                weather, f"{spec.key}|{number}|{stop.phase.value}|{round(spec.start * 1000)}"
            )
            heading = heading_between(origin, stop.target) if miles > 0 else heading
            leg = Leg(
                stop.phase,
                at,
                at,
                origin,
                stop.target,
                miles,
                spec.cruise_mph * factor,
                gust,
                omega,
                phi,
                heading,
                battery,
                weather.drain_per_mile,
                spec.cruise_alt,
                weather.climb_miles,
            )
            leg = replace(leg, end=at + _duration(leg))
            battery = max(0.0, battery - miles * weather.drain_per_mile)
        else:
            leg = Leg(
                stop.phase,
                at,
                at + stop.hold,
                stop.target,
                stop.target,
                0.0,
                0.0,
                0.0,
                1.0,
                0.0,
                heading,
                battery,
                0.0,
                spec.cruise_alt,
                weather.climb_miles,
            )
        legs.append(leg)
        at, origin = leg.end, stop.target
    return tuple(legs)


def leg_index(legs: tuple[Leg, ...], t: float, hint: int = 0) -> int:
    """The index of the leg flown at ``t`` (``len(legs)`` once the route is over)."""
    index = min(max(hint, 0), len(legs))
    while index > 0 and t < legs[index - 1].end:
        index -= 1
    while index < len(legs) and t >= legs[index].end:
        index += 1
    return index


def sample(leg: Leg, t: float) -> Sample:
    """The drone at time ``t`` on ``leg`` (clamped to the leg's start and end)."""
    if leg.mph == 0.0:  # a hold, or a leg of no length
        target = leg.target
        return Sample(target.lat, target.lon, target.alt, 0.0, leg.heading, leg.battery, leg.phase)
    tau = min(max(t - leg.start, 0.0), leg.end - leg.start)
    flown = min(_distance(leg, tau), leg.miles)
    fraction = flown / leg.miles if leg.miles > 0 else 1.0
    origin, target = leg.origin, leg.target
    alt = leg.cruise_alt
    if leg.climb > 0:
        up = origin.alt + (leg.cruise_alt - origin.alt) * flown / leg.climb
        down = target.alt + (leg.cruise_alt - target.alt) * (leg.miles - flown) / leg.climb
        alt = max(min(alt, up, down), min(origin.alt, target.alt))
    return Sample(
        origin.lat + (target.lat - origin.lat) * fraction,
        origin.lon + (target.lon - origin.lon) * fraction,
        alt,
        leg.mph * (1 + leg.gust * math.sin(leg.omega * tau + leg.phi)),
        leg.heading,
        max(0.0, leg.battery - flown * leg.drain),
        leg.phase,
    )


def where(legs: tuple[Leg, ...], t: float) -> Sample:
    """The drone at ``t`` anywhere on a route (at the end of the last leg once it is over)."""
    index = leg_index(legs, t)
    return sample(legs[min(index, len(legs) - 1)], t)
