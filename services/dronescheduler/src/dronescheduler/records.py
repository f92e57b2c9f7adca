"""Stored records (leases and assignments) and their MongoDB documents.

``leases`` — one document per change of a drone's state, never updated or deleted::

    {_id: "<droneId>:<gen>", droneId, gen, deliveryId, kind: "assign"|"replan"|"release",
     busyUntil: date, at: date}

``assignments`` — one document per delivery, keyed by its id, as first planned::

    {_id: deliveryId, ownerId, droneId, base, droneClass, leaseGen,
     pickup: {latitude, longitude, altitude}, dropoff: {...},
     packageDetail: {id, size, weight}, expedited, speedMph, miles,
     assignedAt, pickupETA, deliveryETA, busyUntil}

``plans`` — each re-plan of a delivery, numbered from 1 (the latest one is in force)::

    {_id: "<deliveryId>:<n>", deliveryId, n, leaseGen, pickup, dropoff, miles,
     pickupETA, deliveryETA, busyUntil, at}

``releases`` — a delivery's release, at most one (the first one is final)::

    {_id: deliveryId, releasedAt, at}

Nothing is ever updated: every change is an insert with a unique ``_id`` (see ``repository.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dronecommon.domain import Location, PackageSize

Document = dict[str, Any]


class LeaseKind(StrEnum):
    ASSIGN = "assign"
    REPLAN = "replan"
    RELEASE = "release"


def lease_id(drone_id: str, gen: int) -> str:
    return f"{drone_id}:{gen}"


@dataclass(frozen=True, slots=True)
class Lease:
    """Generation ``gen`` of a drone's state: who holds it and until when it is busy."""

    drone_id: str
    gen: int
    delivery_id: str
    kind: LeaseKind
    busy_until: dt.datetime
    at: dt.datetime

    def document(self) -> Document:
        return {
            "_id": lease_id(self.drone_id, self.gen),
            "droneId": self.drone_id,
            "gen": self.gen,
            "deliveryId": self.delivery_id,
            "kind": self.kind.value,
            "busyUntil": self.busy_until,
            "at": self.at,
        }

    @classmethod
    def from_document(cls, doc: Document) -> Lease:
        return cls(
            drone_id=doc["droneId"],
            gen=int(doc["gen"]),
            delivery_id=doc["deliveryId"],
            kind=LeaseKind(doc["kind"]),
            busy_until=doc["busyUntil"],
            at=doc["at"],
        )


def _location(doc: Document) -> Location:
    return Location(
        latitude=doc["latitude"], longitude=doc["longitude"], altitude=doc.get("altitude", 0.0)
    )


def _location_doc(location: Location) -> Document:
    return {
        "latitude": location.latitude,
        "longitude": location.longitude,
        "altitude": location.altitude,
    }


@dataclass(frozen=True, slots=True)
class AssignmentRecord:
    delivery_id: str
    owner_id: str
    drone_id: str
    base: str
    drone_class: str
    lease_gen: int
    pickup: Location
    dropoff: Location
    package_id: str
    package_size: PackageSize
    package_weight: float
    expedited: bool
    speed_mph: float
    miles: float
    assigned_at: dt.datetime
    pickup_eta: dt.datetime
    delivery_eta: dt.datetime
    busy_until: dt.datetime
    plan_no: int = 0
    released_at: dt.datetime | None = None

    @property
    def released(self) -> bool:
        return self.released_at is not None

    def replace(self, **changes: Any) -> AssignmentRecord:
        return dataclasses.replace(self, **changes)

    def used_hours(self) -> float:
        """Busy time, cut short by a release."""
        end = self.busy_until
        if self.released_at is not None and self.released_at < end:
            end = self.released_at
        return max(0.0, (end - self.assigned_at).total_seconds() / 3600)

    def used_miles(self) -> float:
        """The route's miles, in proportion to the busy time used when released early."""
        planned = (self.busy_until - self.assigned_at).total_seconds() / 3600
        if planned <= 0:
            return self.miles
        return self.miles * min(1.0, self.used_hours() / planned)

    def document(self) -> Document:
        return {
            "_id": self.delivery_id,
            "ownerId": self.owner_id,
            "droneId": self.drone_id,
            "base": self.base,
            "droneClass": self.drone_class,
            "leaseGen": self.lease_gen,
            "pickup": _location_doc(self.pickup),
            "dropoff": _location_doc(self.dropoff),
            "packageDetail": {
                "id": self.package_id,
                "size": self.package_size.value,
                "weight": self.package_weight,
            },
            "expedited": self.expedited,
            "speedMph": self.speed_mph,
            "miles": self.miles,
            "assignedAt": self.assigned_at,
            "pickupETA": self.pickup_eta,
            "deliveryETA": self.delivery_eta,
            "busyUntil": self.busy_until,
        }

    def plan_document(self, at: dt.datetime) -> Document:
        """This record's route as re-plan number ``plan_no``."""
        return {
            "_id": f"{self.delivery_id}:{self.plan_no}",
            "deliveryId": self.delivery_id,
            "n": self.plan_no,
            "leaseGen": self.lease_gen,
            "pickup": _location_doc(self.pickup),
            "dropoff": _location_doc(self.dropoff),
            "miles": self.miles,
            "pickupETA": self.pickup_eta,
            "deliveryETA": self.delivery_eta,
            "busyUntil": self.busy_until,
            "at": at,
        }

    def with_plan(self, doc: Document) -> AssignmentRecord:
        """This record with a stored re-plan in force."""
        return self.replace(
            plan_no=int(doc["n"]),
            lease_gen=int(doc["leaseGen"]),
            pickup=_location(doc["pickup"]),
            dropoff=_location(doc["dropoff"]),
            miles=float(doc["miles"]),
            pickup_eta=doc["pickupETA"],
            delivery_eta=doc["deliveryETA"],
            busy_until=doc["busyUntil"],
        )

    @classmethod
    def from_document(cls, doc: Document) -> AssignmentRecord:
        package = doc["packageDetail"]
        return cls(
            delivery_id=doc["_id"],
            owner_id=doc["ownerId"],
            drone_id=doc["droneId"],
            base=doc["base"],
            drone_class=doc["droneClass"],
            lease_gen=int(doc["leaseGen"]),
            pickup=_location(doc["pickup"]),
            dropoff=_location(doc["dropoff"]),
            package_id=package["id"],
            package_size=PackageSize(package["size"]),
            package_weight=float(package["weight"]),
            expedited=bool(doc["expedited"]),
            speed_mph=float(doc["speedMph"]),
            miles=float(doc["miles"]),
            assigned_at=doc["assignedAt"],
            pickup_eta=doc["pickupETA"],
            delivery_eta=doc["deliveryETA"],
            busy_until=doc["busyUntil"],
        )
