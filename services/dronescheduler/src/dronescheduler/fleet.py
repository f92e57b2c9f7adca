"""The fleet as configured (the service area's bases, drone classes, drones with deterministic ids)
and trip planning.

Drones are spread evenly over the bases (the first bases take the remainder) and, at each base,
over the classes in proportion to their ``share`` (largest remainder). A drone's id names its
base, class and number at that base and class: ``downtown-standard-00042``. The same settings
always give the same drones, so every replica agrees on the fleet without asking anyone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from dronecommon.area import DEFAULT_BASES
from dronecommon.area import Base as BaseSpec
from dronecommon.domain import Location, PackageSize, distance_miles

from .settings import FleetSettings

SIZE_RANK = {PackageSize.SMALL: 1, PackageSize.MEDIUM: 2, PackageSize.LARGE: 3}


@dataclass(frozen=True, slots=True)
class Base:
    name: str
    location: Location


@dataclass(frozen=True, slots=True)
class DroneClass:
    name: str
    max_size: PackageSize
    max_weight: float
    speed_mph: float
    cruise_altitude: float = 120.0

    def carries(self, size: PackageSize, weight: float) -> bool:
        return SIZE_RANK[size] <= SIZE_RANK[self.max_size] and weight <= self.max_weight


@dataclass(frozen=True, slots=True)
class Drone:
    id: str
    base: Base
    drone_class: DroneClass


@dataclass(frozen=True, slots=True)
class Plan:
    """A trip: base → pickup → drop-off → base, starting at ``start``, planned back at
    ``busy_until``; the drone frees itself at ``free_at`` unless released earlier."""

    start: dt.datetime
    pickup_eta: dt.datetime
    delivery_eta: dt.datetime
    busy_until: dt.datetime
    miles: float
    speed_mph: float
    free_at: dt.datetime


def to_millis(moment: dt.datetime) -> dt.datetime:
    """``moment`` truncated to whole milliseconds (what MongoDB stores)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _split(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder; ties to the first)."""
    whole = sum(weights)
    exact = [total * weight / whole for weight in weights]
    counts = [math.floor(value) for value in exact]
    order = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


class Fleet:
    """Every drone of the configured fleet, and the rules that depend only on configuration."""

    def __init__(self, settings: FleetSettings, bases: Sequence[BaseSpec] = DEFAULT_BASES) -> None:
        self.settings = settings
        self.base_specs = tuple(bases)
        self.bases = tuple(Base(spec.name, spec.location) for spec in self.base_specs)
        self.classes = tuple(
            DroneClass(
                spec.name, spec.max_size, spec.max_weight, spec.speed_mph, spec.cruise_altitude
            )
            for spec in settings.classes
        )
        drones: list[Drone] = []
        per_base = _split(settings.count, [1.0] * len(self.bases))
        shares = [spec.share for spec in settings.classes]
        for base, base_count in zip(self.bases, per_base, strict=True):
            for drone_class, n in zip(self.classes, _split(base_count, shares), strict=True):
                drones.extend(
                    Drone(f"{base.name}-{drone_class.name}-{number:05d}", base, drone_class)
                    for number in range(1, n + 1)
                )
        self.drones = tuple(drones)
        self.by_id = {drone.id: drone for drone in drones}

    def capable_classes(self, size: PackageSize, weight: float) -> list[DroneClass]:
        """Classes that can carry the package, the least capable first (big drones are kept for
        big packages)."""
        capable = [c for c in self.classes if c.carries(size, weight)]
        return sorted(capable, key=lambda c: (c.max_weight, SIZE_RANK[c.max_size], c.name))

    def bases_by_distance(self, location: Location) -> list[Base]:
        return sorted(self.bases, key=lambda b: (distance_miles(b.location, location), b.name))

    def plan(
        self,
        drone: Drone,
        pickup: Location,
        dropoff: Location,
        start: dt.datetime,
        *,
        expedited: bool,
    ) -> Plan:
        speed = drone.drone_class.speed_mph
        if expedited:
            speed *= self.settings.expedited_speed_factor
        home = drone.base.location
        legs = (
            distance_miles(home, pickup),
            distance_miles(pickup, dropoff),
            distance_miles(dropoff, home),
        )
        stop = dt.timedelta(seconds=self.settings.stop_seconds)
        start = to_millis(start)
        pickup_eta = start + dt.timedelta(hours=legs[0] / speed)
        delivery_eta = pickup_eta + stop + dt.timedelta(hours=legs[1] / speed)
        busy_until = to_millis(delivery_eta + stop + dt.timedelta(hours=legs[2] / speed))
        return Plan(
            start=start,
            pickup_eta=to_millis(pickup_eta),
            delivery_eta=to_millis(delivery_eta),
            busy_until=busy_until,
            miles=sum(legs),
            speed_mph=speed,
            free_at=self.free_at(start, busy_until),
        )

    def free_at(self, start: dt.datetime, busy_until: dt.datetime) -> dt.datetime:
        """When a trip planned from ``start`` to ``busy_until`` frees its drone by itself: the
        fallback when no release comes (see ``FleetSettings.self_release_*``)."""
        trip = busy_until - start
        margin = trip * self.settings.self_release_factor + dt.timedelta(
            seconds=self.settings.self_release_seconds
        )
        return to_millis(busy_until + margin)

    def definition(self) -> dict[str, Any]:
        """Bases and classes as stored with the fleet (the drones are documents of their own)."""
        return {
            "count": len(self.drones),
            "bases": [spec.model_dump(mode="json") for spec in self.base_specs],
            "classes": [spec.model_dump(mode="json") for spec in self.settings.classes],
        }

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever the drones, bases or classes do."""
        text = json.dumps(
            {"definition": self.definition(), "drones": [d.id for d in self.drones]},
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()
