"""The telemetry fix: where a drone is, how fast, which way, how much battery, in which phase.

On the wire (JSON, camelCase)::

    {"droneId": "downtown-standard-00042", "deliveryId": "3fa8…", "at": "2030-01-01T10:00:00.000Z",
     "seq": 1893492000000, "location": {"latitude": 47.61, "longitude": -122.33, "altitude": 120.0},
     "speedMph": 41.3, "headingDeg": 271.5, "batteryPct": 87.2, "phase": "ToDropoff"}

``seq`` increases with every fix of a drone: of two fixes of one drone the one with the larger
``seq`` is the newer (:meth:`Fix.newer_than`), whatever order they arrive in. ``deliveryId`` is the
delivery the drone is flying for (when returning: the one it has just finished; null only for a
flight with no delivery). ``phase`` is one of :class:`Phase`.

:class:`Fix` is a plain slotted dataclass and :func:`encode_fixes` writes JSON with orjson without
building intermediate models: publishers make tens of thousands a second. :func:`decode_fix`
checks every field (types, ranges, the phase), so a consumer never stores a malformed fix.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from dronecommon.domain import CaseInsensitiveEnum, Location, format_utc


class Phase(CaseInsensitiveEnum):
    TO_PICKUP = "ToPickup"
    AT_PICKUP = "AtPickup"
    TO_DROPOFF = "ToDropoff"
    AT_DROPOFF = "AtDropoff"
    RETURNING = "Returning"


class FixDecodeError(ValueError):
    """Bytes or a mapping that are not a valid fix."""


@dataclass(frozen=True, slots=True)
class Fix:
    drone_id: str
    delivery_id: str | None
    at: dt.datetime
    seq: int
    latitude: float
    longitude: float
    altitude: float
    speed_mph: float
    heading_deg: float
    battery_pct: float
    phase: Phase

    @property
    def location(self) -> Location:
        return Location.model_construct(
            latitude=self.latitude, longitude=self.longitude, altitude=self.altitude
        )

    def newer_than(self, other: Fix) -> bool:
        """Whether this fix comes after ``other`` (of the same drone)."""
        return self.seq > other.seq

    def wire(self, at: str | None = None) -> dict[str, Any]:
        """The fix as a JSON-ready dict; ``at``: its time already formatted (shared by a tick)."""
        return _wire(self, format_utc(self.at) if at is None else at)


def _wire(fix: Fix, at: str) -> dict[str, Any]:
    return {
        "droneId": fix.drone_id,
        "deliveryId": fix.delivery_id,
        "at": at,
        "seq": fix.seq,
        "location": {
            "latitude": fix.latitude,
            "longitude": fix.longitude,
            "altitude": fix.altitude,
        },
        "speedMph": fix.speed_mph,
        "headingDeg": fix.heading_deg,
        "batteryPct": fix.battery_pct,
        "phase": fix.phase.value,
    }


def wire_list(fixes: Iterable[Fix]) -> list[dict[str, Any]]:
    """The fixes as JSON-ready dicts (a time shared by consecutive fixes is formatted once)."""
    out: list[dict[str, Any]] = []
    last: dt.datetime | None = None
    text = ""
    for fix in fixes:
        if fix.at is not last:
            last, text = fix.at, format_utc(fix.at)
        out.append(_wire(fix, text))
    return out


def encode_fix(fix: Fix) -> bytes:
    return orjson.dumps(fix.wire())


def encode_fixes(fixes: Iterable[Fix]) -> bytes:
    """A JSON array of fixes."""
    return orjson.dumps(wire_list(fixes))


def _number(value: Any, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FixDecodeError(f"{name} must be a number")
    number = float(value)
    if not (low <= number <= high) or math.isnan(number):
        raise FixDecodeError(f"{name} out of range: {value!r}")
    return number


def fix_from_wire(data: Any) -> Fix:
    """A fix from its JSON object (raises :class:`FixDecodeError`)."""
    if not isinstance(data, Mapping):
        raise FixDecodeError("a fix is a JSON object")
    try:
        drone_id = data["droneId"]
        delivery_id = data.get("deliveryId")
        location = data["location"]
        at_text = data["at"]
        seq = data["seq"]
        phase = Phase(data["phase"])
    except (KeyError, ValueError, TypeError) as exc:
        raise FixDecodeError(f"missing or invalid field: {exc}") from exc
    if not isinstance(drone_id, str) or not drone_id:
        raise FixDecodeError("droneId must be a non-empty string")
    if delivery_id is not None and not isinstance(delivery_id, str):
        raise FixDecodeError("deliveryId must be a string or null")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise FixDecodeError("seq must be an integer")
    if not isinstance(location, Mapping) or not isinstance(at_text, str):
        raise FixDecodeError("location must be an object and at a string")
    try:
        at = dt.datetime.fromisoformat(at_text)
    except ValueError as exc:
        raise FixDecodeError(f"at: {exc}") from exc
    at = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    return Fix(
        drone_id=drone_id,
        delivery_id=delivery_id,
        at=at,
        seq=seq,
        latitude=_number(location.get("latitude"), "location.latitude", -90, 90),
        longitude=_number(location.get("longitude"), "location.longitude", -180, 180),
        altitude=_number(location.get("altitude", 0.0), "location.altitude"),
        speed_mph=_number(data.get("speedMph"), "speedMph", 0),
        heading_deg=_number(data.get("headingDeg"), "headingDeg", 0, 360),
        battery_pct=_number(data.get("batteryPct"), "batteryPct", 0, 100),
        phase=phase,
    )


def decode_fix(raw: bytes | str) -> Fix:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FixDecodeError(f"not JSON: {exc}") from exc
    return fix_from_wire(data)
